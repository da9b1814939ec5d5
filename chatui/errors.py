"""Every error chatui raises on purpose, written for the person who reads it.

    ChatError
     +-- BackendError                  the model server failed us
     |    +-- BackendUnavailable       nothing listens / connection refused / DNS
     |    +-- BackendTimeout           no first byte in time, or the stream stalled
     |    +-- BackendHTTPError         HTTP 4xx/5xx; carries the server's own message
     |    +-- BackendStreamError       an error object sent inside a 200 stream
     |    +-- StreamProtocolError      the stream is not valid SSE/JSON
     +-- StoreError                    the conversation store cannot read or write
     |    +-- StoreCorrupt             a file on disk is not a readable store file
     +-- NotFound                      unknown conversation or message
     +-- ConversationBusy              a generation is already running on this chat
     +-- InvalidRequest                the request itself makes no sense
     +-- LimitExceeded                 a per-user limit (answers at once, per minute, documents)

Translate these to ``gr.Error`` or HTTP status codes only at the edges (UI, REST).
"""

from __future__ import annotations


class ChatError(Exception):
    """Base class; ``str(error)`` is a sentence a user can read."""


class BackendError(ChatError):
    """The model server could not give us an answer."""


class BackendUnavailable(BackendError):
    """The model server cannot be reached at all."""


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
    """One of the user's limits is reached; ``retry_after`` seconds is when to try again, if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
