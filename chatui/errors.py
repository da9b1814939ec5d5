"""Every error chatui raises on purpose, written for the person who reads it.

    ChatError
     +-- BackendError                  the model server failed us
     |    +-- BackendUnavailable       nothing listens / connection refused / DNS
     |    |    +-- DocumentsUnavailable  the document model is loading or cannot load
     |    +-- BackendTimeout           no first byte in time, or the stream stalled
     |    +-- BackendHTTPError         HTTP 4xx/5xx; carries the server's own message
     |    +-- BackendStreamError       an error object sent inside a 200 stream
     |    +-- StreamProtocolError      the stream is not valid SSE/JSON
     |    +-- BackendDown              the embedded model crashed: restarting, or gave up
     |    +-- EmbeddedServerError      the embedded model server could not be started
     +-- StoreError                    the conversation store cannot read or write
     |    +-- StoreCorrupt             a file on disk is not a readable store file
     +-- NotFound                      unknown conversation or message
     +-- ConversationBusy              a generation is already running on this chat
     +-- InvalidRequest                the request itself makes no sense
     +-- LimitExceeded                 a per-user limit (answers at once, per minute, documents)
     +-- StartupError                  chatui cannot start as configured
     |    +-- ConfigError              a flag or variable is wrong (or unsafe); nothing loaded yet
     |    +-- PortInUse                something else already listens on --host/--port
     |    +-- DataFolderError          the data folder cannot be created, read or written
     +-- Unauthorized                  (chatui.api.errors) no bearer token, or a wrong one
     +-- AnswerStopped                 (chatui.api.errors) stopped before its first token

Translate these to ``gr.Error`` or HTTP status codes only at the edges (UI, REST;
``chatui.api.errors`` keeps the table of statuses). At start-up ``chatui.cli``
prints ``str(error)`` as one line and exits with 1 (2 for a ``ConfigError``),
never a traceback; a second chatui on the same data folder is a ``StoreError``
(the store holds a lock on the folder).

Documents have their own tree, ``rag_index.RagError`` (``rag_index/errors.py``),
because ``rag_index`` knows nothing of chatui. It meets this one at the edges:
the upload and search handlers show a ``RagError`` per file or search;
``retrieval.LibraryRetriever`` turns one raised during an answer into a
``ChatError`` ("Searching your documents failed: ..."); and ``chatui.cli``
prints one that stops start-up the way it prints a ``ChatError``. The one
``RagError`` chatui raises itself is ``uploads.NotUploaded``, a ``DocumentError``,
so a refused upload is reported like any file that cannot be read.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base class; ``str(error)`` is a sentence a user can read."""


class BackendError(ChatError):
    """The model server could not give us an answer."""


class BackendUnavailable(BackendError):
    """The model server cannot be reached at all."""


class DocumentsUnavailable(BackendUnavailable):
    """The document model is still loading, or cannot be loaded (a 503 at the REST edge)."""


class BackendTimeout(BackendError):
    """The model server was reached but did not answer in time."""


class BackendHTTPError(BackendError):
    """The model server answered with an HTTP error status."""

    def __init__(self, status_code: int, server_message: str) -> None:
        self.status_code = status_code
        self.server_message = server_message
        super().__init__(
            f"The model server answered with HTTP {status_code}: {server_message}"
        )


class BackendStreamError(BackendError):
    """The model server reported an error in the middle of its stream."""


class StreamProtocolError(BackendError):
    """The model server sent something that is not a valid event stream."""


class BackendDown(BackendError):
    """The embedded model is not running: it crashed and is being restarted, or gave up."""


class StoreError(ChatError):
    """The conversation store could not read or write."""


class StoreCorrupt(StoreError):
    """A store file on disk cannot be read; it has been set aside."""


class NotFound(ChatError):
    """The conversation or message does not exist (or is not yours)."""


class ConversationBusy(ChatError):
    """An answer is already being generated in this conversation."""


class InvalidRequest(ChatError):
    """The request cannot be carried out as asked."""


class LimitExceeded(ChatError):
    """One of the user's limits is reached; try again in ``retry_after`` seconds, if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class EmbeddedServerError(BackendError):
    """The embedded model server could not be started (the message ends with its log)."""


class StartupError(ChatError):
    """chatui cannot start as configured; nothing is served."""


class ConfigError(StartupError):
    """A flag or environment variable is wrong, missing or unsafe (found before loading)."""


class PortInUse(StartupError):
    """Another program already listens on the address and port chatui should serve on."""


class DataFolderError(StartupError):
    """The data folder cannot be created, read or written."""
