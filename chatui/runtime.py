"""Start and stop what the app runs on: the backend (embedded or external) and the service.

``open_runtime(config)`` is a context manager: on exit (normal, Ctrl-C, or
SIGTERM once ``exit_on_sigterm`` is installed) the embedded model server is
stopped and the store closed. The embedded server runs under an
``EmbeddedSupervisor`` (restarted when it crashes; its log in
``<data_dir>/logs``); an external one is watched by an ``ExternalWatch``.
Tests open a runtime the same way.

The store opens first (a data folder held by another chatui stops here, before
the model server starts), and the document library opens without its model:
``runtime.library.start_loading()`` (``chatui.cli`` calls it once the page
answers) or the first document call loads torch and MiniLM. The web UI and
the REST API reach the documents only through ``runtime.documents`` (one
``DocumentService``, over one ``DocumentUploads`` that Gradio's upload route
feeds too).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import cast

from rag_index import Embedder, Library

from chatui.cache import CachedStore
from chatui.client import BackendClient
from chatui.config import Config
from chatui.documents import DocumentService
from chatui.embedded import EmbeddedServer
from chatui.errors import BackendError
from chatui.filestore import FileStore
from chatui.limits import Limits, UserLimits
from chatui.retrieval import LibraryRetriever
from chatui.serverinfo import ContinueMode, ServerFeatures
from chatui.service import ChatService
from chatui.supervisor import BackendWatch, EmbeddedSupervisor, ExternalWatch
from chatui.template import chat_template_of
from chatui.uploads import DocumentUploads
from chatui.users import IdentityMode, identity_mode, is_shared

log = logging.getLogger("chatui")


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    backend: BackendClient
    service: ChatService
    library: Library
    embedded: EmbeddedServer | None
    documents: DocumentService  # the UI's and the REST API's one way to the library


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def pick_default_model(config: Config, backend: BackendClient) -> str | None:
    """The configured model, else the first one the server lists (None if it lists none)."""
    if config.model:
        return config.model
    try:
        models = backend.list_models()
    except BackendError as error:
        log.warning("%s chatui starts anyway; answers fail until the model server is up.",
                    error)
        return None
    return models[0] if models else None


def server_features(
    config: Config, backend: BackendClient, embedded: EmbeddedServer | None
) -> ServerFeatures:
    """How this server continues answers (``chatui.serverinfo``): the embedded model's
    own chat template, read from its GGUF, makes Continue a true prefix fill."""
    template = None
    if embedded is not None and config.continue_mode in ("auto", "completions"):
        try:
            template = chat_template_of(embedded.model_path)
        except (OSError, ValueError) as error:
            log.warning("The embedded model's chat template could not be read (%s); "
                        "Continue sends the history again instead.", error)
    mode = config.continue_mode
    if mode == "completions" and template is None:
        mode = "resend"
    return ServerFeatures(backend, cast(ContinueMode, mode), template,
                          config.context if embedded is not None else None,
                          api_key=config.api_key, timeout=config.connect_timeout)


def identity_of(config: Config) -> IdentityMode:
    """How visitors get an owner (``users.identity_mode``), from the flags."""
    return identity_mode(logins=bool(config.auth), host=config.host, share=config.share,
                         anonymous_users=config.anonymous_users)


def limits_for(config: Config) -> Limits:
    """The configured per-user limits when the app is shared; none for the single local user."""
    if not is_shared(identity_of(config)):
        return Limits(UserLimits.none())
    return Limits(UserLimits(
        concurrent_answers=config.user_concurrency,
        answers_per_minute=config.user_requests_per_minute,
        max_documents=config.user_max_documents,
    ))


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``open_runtime``'s cleanup runs (main thread only)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


@contextmanager
def open_runtime(config: Config) -> Iterator[Runtime]:
    with ExitStack() as cleanup:
        # The store first: a second chatui on this data folder stops here, before anything starts.
        store = CachedStore(cleanup.enter_context(FileStore(config.data_dir)))
        for problem in store.problems:
            log.warning(problem)
        embedded: EmbeddedServer | None = None
        supervisor: EmbeddedSupervisor | None = None
        api_base = config.api_base
        if config.embedded:
            print("Starting the embedded model (SmolLM2-135M-Instruct)...",
                  file=sys.stderr, flush=True)
            embedded = EmbeddedServer(context=config.context, threads=config.model_threads,
                                      log_dir=config.data_dir / "logs")
            supervisor = cleanup.enter_context(EmbeddedSupervisor(embedded))
            api_base = embedded.base_url
        assert api_base is not None
        backend = cleanup.enter_context(BackendClient(
            api_base, config.api_key,
            connect_timeout=config.connect_timeout,
            first_token_timeout=config.first_token_timeout,
            stall_timeout=config.stall_timeout,
        ))
        watch: BackendWatch = (
            supervisor.follow(backend) if supervisor is not None
            else cleanup.enter_context(ExternalWatch(
                api_base, config.api_key, connect_timeout=config.connect_timeout)))
        library = Library(  # instant: the document model loads later (``Library.start_loading``)
            config.data_dir / "documents", Embedder(config.embedding_model),
            max_file_bytes=int(config.max_upload_mb * 1024 * 1024),
            max_text_chars=config.max_document_chars,
            max_chunks_per_file=config.max_document_chunks,
            max_chunks_per_owner=config.user_max_chunks if is_shared(identity_of(config)) else 0,
        )
        service = ChatService(
            store, backend, default_model=pick_default_model(config, backend),
            defaults=config.defaults, context_tokens=config.context,
            retriever=LibraryRetriever(library), limits=limits_for(config), watch=watch,
            features=server_features(config, backend, embedded),
        )
        documents = DocumentService(DocumentUploads(library, service.limits), service)
        yield Runtime(config, backend, service, library, embedded, documents)
