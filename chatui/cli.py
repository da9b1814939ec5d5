"""The ``chatui`` command: parse the configuration, check, start the runtime, serve or chat.

Start-up is ordered so that a wrong start fails fast and a right one answers
soon:

1. flags (``config.parse_config``): ``ConfigError`` before anything is loaded;
2. what ``serve`` needs from the machine: the port is free, the data folder
   can be read and written (``PortInUse``, ``DataFolderError``);
3. the runtime: the store (a second chatui on the same data folder is a
   ``StoreError``), the model server, the service. Meanwhile ``serve`` imports
   Gradio in a thread (the main thread mostly waits for the model server).
   The document model is not loaded here: ``serve`` starts loading it in the
   background once the page answers, and ``chat`` only when a document is used.

Every error meant for a person (``ChatError``, ``RagError``, an ``OSError`` of
the data folder) is printed as one line, ``chatui: <what is wrong>``, with exit
status 1 (2 for a ``ConfigError``, as argparse does for bad flags); never a
traceback. Ctrl-C exits with 130.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chatui.config import parse_config
from chatui.errors import ChatError, ConfigError, DataFolderError, PortInUse, StartupError
from chatui.runtime import Runtime, exit_on_sigterm, open_runtime
from rag_index import RagError
import contextlib

log = logging.getLogger("chatui")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per model request
    try:
        config = parse_config(argv)
    except ConfigError as error:
        return _say(error, status=2)
    except SystemExit as refusal:  # a check elsewhere that words its refusal itself
        if isinstance(refusal.code, str):
            return _say(refusal.code, status=2)
        raise  # argparse: its usage line is already printed
    exit_on_sigterm()
    try:
        if config.command == "serve":
            check_port(config.host, config.port)
        check_data_folder(config.data_dir)
        if config.command == "serve":
            _import_in_background("chatui.server")  # Gradio, while the model server starts
        with open_runtime(config) as runtime:
            if config.command == "chat":
                from chatui.terminal import run_terminal_chat

                return run_terminal_chat(runtime.service)
            from chatui.server import serve

            when_listening(config.host, config.port, lambda: _load_documents(runtime))
            return serve(runtime)
    except (ChatError, RagError) as error:
        return _say(error)
    except OSError as error:  # the data folder, mostly: a sentence, not a traceback
        where = f" ({error.filename})" if error.filename else ""
        return _say(f"{error.strerror or error}{where}.")
    except KeyboardInterrupt:
        return 130


def _import_in_background(module: str) -> None:
    """Import ``module`` in a thread; whoever imports it next waits for it, or retries it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name="chatui-import", daemon=True).start()


def _say(problem: object, status: int = 1) -> int:
    print(f"chatui: {problem}", file=sys.stderr, flush=True)
    return status


def check_port(host: str, port: int) -> None:
    """``PortInUse`` if a server could not listen on ``host:port`` now (as uvicorn binds)."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        infos = socket.getaddrinfo(address or None, port, family, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise StartupError(f"chatui cannot listen on {host!r}: {error.strerror}.") from None
    with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(infos[0][4])
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"Port {port} on {host} is already in use by another program "
                    "(another chatui?); stop it or choose another port with --port."
                ) from None
            raise StartupError(
                f"chatui cannot listen on {host} port {port}: {error.strerror}."
            ) from None


def check_data_folder(data_dir: Path) -> None:
    """``DataFolderError`` unless ``data_dir`` is (or can be made) a folder we read and write."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataFolderError(
            f"The data folder {data_dir} is a file, not a folder; choose another with --data-dir."
        ) from None
    except OSError as error:
        raise DataFolderError(
            f"The data folder {data_dir} cannot be created: {error.strerror}; "
            "choose another with --data-dir."
        ) from None
    if not data_dir.is_dir():
        raise DataFolderError(
            f"The data folder {data_dir} is a file, not a folder; choose another with --data-dir."
        )
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise DataFolderError(
            f"The data folder {data_dir} cannot be read and written by this user; "
            "fix its permissions or choose another with --data-dir."
        )


def when_listening(host: str, port: int, then: Callable[[], None], timeout: float = 600) -> None:
    """Run ``then`` in a thread once something accepts connections on ``host:port``."""
    address = host.strip("[]")
    target = "::1" if address == "::" else "127.0.0.1" if address in ("", "0.0.0.0") else address

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((target, port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            return
        then()

    threading.Thread(target=wait, name="chatui-after-start", daemon=True).start()


def _load_documents(runtime: Runtime) -> None:
    """Load the document model now that the page answers, if there are documents to search;
    say so if it cannot be. Without any, it loads with the first upload (its 440 MB and
    seconds of CPU are not spent for someone who only chats)."""
    library = runtime.library
    try:
        if library.empty:
            log.info("No documents yet: the document model loads with the first one.")
            return
    except RagError as error:  # the index's manifest is damaged: loading says it in words
        log.warning("Documents are unavailable: %s", error)
        return
    started = time.monotonic()
    try:
        library.load()
    except (RagError, ValueError) as error:
        log.warning("Documents are unavailable: %s", error)
        return
    log.info("The document model is loaded (%.1f s).", time.monotonic() - started)


