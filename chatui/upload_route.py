"""Gradio's upload route at the web edge: each path it hands out is recorded for its visitor.

``UploadReceipts`` (ASGI middleware) watches ``POST /gradio_api/upload``. When
Gradio answers 200 with the paths it wrote, they go to
``DocumentUploads.receive`` with the owner of the request, the same owner the
page's events act for (``gradio_owner``), before the answer reaches the
browser: so the upload event that follows finds them, and a path posted to the
event by anyone else, or never handed out at all, is refused there. Until an
event takes it, an upload is served (``/gradio_api/file=``) to its owner
only; anyone else gets Gradio's answer for a file that does not exist. Every
request through the web UI also gives ``DocumentUploads`` a chance to delete
uploads that no event claimed (``sweep_due``): cancelled events leave them.

The REST API (/api/...) is passed through untouched: its own upload route
(``api.documents``) writes the parts it receives into the upload folder and
records them for the token's owner itself (``DocumentUploads.write``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gradio.routes import App
from starlette.requests import Request
from starlette.responses import JSONResponse

from chatui.uploads import DocumentUploads
from chatui.users import LOCAL_OWNER

UPLOAD_ROUTE = "/gradio_api/upload"
FILE_ROUTE = "/gradio_api/file="

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
OwnerOf = Callable[[Request], Awaitable[str]]


def gradio_owner(gradio_app: App) -> OwnerOf:
    """The owner Gradio gives a request's events (``gr.Request.username`` or the local user).

    The rule of ``get_current_user`` in ``gradio.routes`` (6.31): the
    ``auth_dependency`` if there is one (anonymous visitors), else the login
    cookie's user (``--auth``); nobody means the one local user, as in
    ``ui.wiring.session_owner``.
    """

    async def owner(connection: Request) -> str:
        user: Any
        if gradio_app.auth_dependency is not None:
            user = gradio_app.auth_dependency(connection)
            if inspect.isawaitable(user):
                user = await user
        else:
            cookie = gradio_app.cookie_id
            token = (connection.cookies.get(f"access-token-{cookie}")
                     or connection.cookies.get(f"access-token-unsecure-{cookie}"))
            user = gradio_app.tokens.get(token) if token else None
        return str(user) if user else LOCAL_OWNER

    return owner


class UploadReceipts:
    """ASGI middleware: the paths Gradio's upload route wrote, recorded for their owner."""

    def __init__(self, app: ASGIApp, uploads: DocumentUploads, owner_of: OwnerOf) -> None:
        self.app = app
        self.uploads = uploads
        self.owner_of = owner_of

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.uploads.sweep_due()
        path: str = scope["path"]
        if path.startswith(FILE_ROUTE) and scope["method"] in ("GET", "HEAD"):
            owner = await self.owner_of(Request(scope))
            wanted = path.removeprefix(FILE_ROUTE)
            if not self.uploads.may_read(wanted, owner):  # Gradio's answer for a missing file
                refused = JSONResponse({"detail": f"File not allowed: {wanted}."}, status_code=403)
                await refused(scope, receive, send)
                return
        if scope["method"] != "POST" or path.rstrip("/") != UPLOAD_ROUTE:
            await self.app(scope, receive, send)
            return
        owner = await self.owner_of(Request(scope))  # reads headers only, not the body
        start: Message | None = None
        body: list[bytes] = []

        async def hold_until_recorded(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            whole = b"".join(body)
            if start["status"] == 200:
                self.uploads.receive(owner, _paths(whole))
            await send(start)
            await send({"type": "http.response.body", "body": whole})

        await self.app(scope, receive, hold_until_recorded)


def _paths(body: bytes) -> list[str]:
    try:
        written = json.loads(body)
    except ValueError:
        return []
    return [p for p in written if isinstance(p, str)] if isinstance(written, list) else []
