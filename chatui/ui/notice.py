"""An error, told once, in words a person reads: what happened, what to try, and the
technical detail (the server's own message, a URL) folded under it.

``explain`` turns a ``ChatError`` into the notice's text: the sentence on the
first line, the detail (if any) after it. ``notice_markdown`` shows such a text
in the notice line under the chat; nothing else repeats it (no toast), and an
error that ended an answer part-way is told on that answer instead
(``screen.show``). Everything in it may come from outside (the model server's
message), so it is shown as text.
"""

from __future__ import annotations

import html

from chatui.errors import (
    BackendDown,
    BackendError,
    BackendHTTPError,
    BackendTimeout,
    BackendUnavailable,
    ChatError,
)
from chatui.sanitize import plain_markdown

_WHAT_TO_TRY: tuple[tuple[type[BackendError], str], ...] = (
    (BackendDown, "The model stopped. It restarts by itself: send again in a moment."),
    (BackendUnavailable, "The model server cannot be reached. Check that it is running, "
                         "then send again."),
    (BackendTimeout, "The model server took too long to answer. Try again, or ask "
                     "something shorter."),
    (BackendError, "The model server could not answer. Try again; if it keeps failing, "
                   "check the model picked above the chat."),
)


def explain(error: ChatError) -> str:
    """The notice for ``error``: one line to read, then the technical detail if any."""
    if not isinstance(error, BackendError):
        return str(error)  # written for the person already (busy, a limit, not found...)
    sentence = next(words for kind, words in _WHAT_TO_TRY if isinstance(error, kind))
    if isinstance(error, BackendHTTPError):
        sentence = f"The model server refused the request (HTTP {error.status_code}). " + (
            sentence.split(". ", 1)[1])
    return f"{sentence}\n{error}"


def notice_markdown(text: str) -> str:
    """The notice line for a notice text: the first line as text, the rest folded."""
    if not text:
        return ""
    sentence, _, detail = text.partition("\n")
    shown = f"⚠️ {plain_markdown(sentence)}"
    if not detail.strip():
        return shown
    folded = html.escape(" ".join(detail.split()), quote=True).replace("$", "&#36;")
    return (f"{shown}\n\n<details class=\"chatui-detail\"><summary>Technical detail</summary>"
            f"<code>{folded}</code></details>")
