"""Anonymous visitors at the web edge: a signed cookie that Gradio reads as the user name.

When visitors are kept apart without logins (``users.identity_mode`` is
"anonymous"), ``VisitorCookies`` (ASGI middleware) makes sure every request to
the web UI carries a valid ``chatui_visitor`` cookie: a browser without one, or
with a forged one, gets a fresh id, in the same request (so the page it asked
for is already theirs) and in a ``Set-Cookie`` for the next. ``visitor_owner(ids)`` is
passed to ``gr.mount_gradio_app(auth_dependency=...)``, so every Gradio event
sees the visitor as ``gr.Request.username`` ("anon:..."), the same way a login
name arrives with ``--auth``.

Why a cookie rather than ``gr.BrowserState``: a BrowserState value is written
by the page's JavaScript (its "secret" is sent to the browser) and reaches
only the events that list it as an input, so every handler would have to take
it, and a restarted server would not know an open page. A cookie comes with
every request, HttpOnly (no script reads it) and SameSite=Lax (no other site
sends it). Both live in the visitor's browser and survive a reload.

The REST API (/api/...) is left alone: API callers are known by their tokens.

Where a visitor comes from matters too: anyone can drop the cookie and be a
new visitor, so ``limits.Limits`` also counts an anonymous visitor's answers
against the network address (``gr.Request.client.host``). Behind a reverse
proxy every connection comes from the proxy; ``ClientAddresses`` (installed
only with ``--trusted-proxies``) then names the client the proxy reports in
``X-Forwarded-For``. Without it that header is ignored: anyone can write it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import HTTPConnection, cookie_parser

from chatui.config import Config
from chatui.network import TrustedProxies
from chatui.runtime import identity_of
from chatui.users import VisitorIds, load_secret

COOKIE = "chatui_visitor"
MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie
API_PREFIX = "/api/"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def visitor_owner(ids: VisitorIds) -> Callable[[HTTPConnection], str | None]:
    """Gradio's ``auth_dependency``: the visitor a request comes from."""

    def owner(connection: HTTPConnection) -> str | None:
        return ids.owner(connection.cookies.get(COOKIE))

    return owner


class VisitorCookies:
    """ASGI middleware: each browser of the web UI is one anonymous visitor."""

    def __init__(self, app: ASGIApp, ids: VisitorIds) -> None:
        self.app = app
        self.ids = ids

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        cookie_header = b"; ".join(value for name, value in headers if name == b"cookie")
        if self.ids.owner(cookie_parser(cookie_header.decode("latin-1")).get(COOKIE)):
            await self.app(scope, receive, send)
            return
        value = self.ids.new()
        # The last one wins when a header names the cookie twice (a forged one first).
        fresh = (cookie_header + b"; " if cookie_header else b"") + f"{COOKIE}={value}".encode()
        scope = dict(scope)
        scope["headers"] = [(n, v) for n, v in headers if n != b"cookie"] + [(b"cookie", fresh)]
        set_cookie = (f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = dict(message)
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", set_cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class ClientAddresses:
    """ASGI middleware: a request through a trusted proxy comes from the client it names.

    Rewrites ``scope["client"]`` to ``TrustedProxies.client`` (the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy), so everything
    downstream (Gradio's ``gr.Request.client``, Starlette's ``request.client``)
    sees the visitor, not the proxy. A connection from anywhere else keeps its
    own address whatever headers it sends.
    """

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer:
            forwarded = [value.decode("latin-1") for name, value in scope.get("headers", [])
                         if name == b"x-forwarded-for"]
            client = self.proxies.client(peer[0], forwarded)
            if client is not None and client != peer[0]:
                scope = dict(scope)
                scope["client"] = (client, 0)
        await self.app(scope, receive, send)


def trusted_proxies(config: Config) -> TrustedProxies | None:
    """The proxies whose ``X-Forwarded-For`` is believed, or None (the header is ignored)."""
    proxies = TrustedProxies(config.trusted_proxies)
    return proxies if proxies else None


def anonymous_visitors(config: Config) -> VisitorIds | None:
    """The signer of visitor cookies when browsers are kept apart without logins, else None."""
    if identity_of(config) != "anonymous":
        return None
    return VisitorIds(load_secret(config.data_dir))
