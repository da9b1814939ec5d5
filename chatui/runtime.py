"""Start and stop what the app runs on: the backend (embedded or external) and the service.

``open_runtime(config)`` is a context manager: on exit (normal, Ctrl-C or
SIGTERM, which it turns into SystemExit) the embedded model server is stopped.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from chatui.cache import CachedStore
from chatui.client import BackendClient
from chatui.config import Config
from chatui.embedded import EmbeddedServer
from chatui.errors import BackendError
from chatui.service import ChatService
from chatui.store import ConversationStore

log = logging.getLogger("chatui")


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    backend: BackendClient
    service: ChatService
    embedded: EmbeddedServer | None


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def pick_default_model(config: Config, backend: BackendClient) -> str | None:
    """The configured model, else the first one the server lists (None if it lists none)."""
    if config.model:
        return config.model
    try:
        models = backend.list_models()
    except BackendError as error:
        log.warning("Could not list the server's models (%s); sending no model name.", error)
        return None
    return models[0] if models else None


@contextmanager
def open_runtime(config: Config) -> Iterator[Runtime]:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    embedded: EmbeddedServer | None = None
    api_base = config.api_base
    if config.embedded:
        print("Starting the embedded model (SmolLM2-135M-Instruct)...", file=sys.stderr, flush=True)
        embedded = EmbeddedServer(context=config.context).start()
        api_base = embedded.base_url
    assert api_base is not None
    backend = BackendClient(
        api_base, config.api_key,
        connect_timeout=config.connect_timeout,
        first_token_timeout=config.first_token_timeout,
        stall_timeout=config.stall_timeout,
    )
    try:
        store = CachedStore(ConversationStore(config.data_dir))
        for problem in store.problems:
            log.warning(problem)
        service = ChatService(
            store, backend, default_model=pick_default_model(config, backend),
            defaults=config.defaults, context_tokens=config.context,
        )
        yield Runtime(config, backend, service, embedded)
    finally:
        backend.close()
        if embedded is not None:
            embedded.stop()
