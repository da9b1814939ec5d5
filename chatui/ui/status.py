"""The line under the title that says which model answers and how its server is doing.

Plain words from ``ChatService.backend_health()`` (see ``chatui.supervisor``):
quiet when all is well ("Model: smollm2-135m-instruct · embedded, running"),
a warning when the embedded model was restarted or the server does not
answer, and the last lines of the log when the embedded model gave up. The
message and the log come from outside the app (paths, the child's output), so
they are shown as text: the log in a code block whose fence no line can close.
"""

from __future__ import annotations

import re

from chatui.sanitize import inert_html
from chatui.service import ChatService
from chatui.supervisor import BackendHealth

STATUS_SECONDS = 5.0  # how often an open page refreshes the line

_ICONS = {"ok": "🟢", "unknown": "⚪", "starting": "⏳", "restarting": "⏳",
          "restarted": "⚠️", "down": "🔴", "failed": "🔴"}


def status_line(service: ChatService) -> str:
    """Markdown for the status line: the model's name, then its server's health."""
    health = service.backend_health()
    model = service.default_model
    name = f"Model: **{_plain(model)}**" if model else "Model: the server's default"
    if health is None:
        return name
    where = "embedded" if health.kind == "embedded" else _plain(health.url)
    if health.state == "ok":
        running = "running" if health.kind == "embedded" else "answers"
        return f"{_ICONS['ok']} {name} · {where}, {running}"
    return f"{_ICONS.get(health.state, '')} {name} · {where}: {_message(health)}"


def _message(health: BackendHealth) -> str:
    text = health.message
    if health.log_tail and health.log_tail in text:
        text = text.replace(health.log_tail, "").rstrip()
        return f"{_plain(text)}\n\n{_code_block(health.log_tail)}"
    return _plain(text)


def _plain(text: str) -> str:
    """One line of text with no HTML and no Markdown emphasis or links of its own."""
    flat = " ".join(text.split())
    return inert_html(re.sub(r"([\\`*_\[\]#|])", r"\\\1", flat))


def _code_block(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"
