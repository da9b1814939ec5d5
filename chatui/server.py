"""One process, one port: the REST API under /api/v1 and the Gradio UI at /.

Both sit on the same ``ChatService`` (and document library), so a chat created
through one is visible through the other. Gradio's queue is configured so that
one user's stream never blocks another's (``concurrency_limit`` streams at
once, ``max_queue`` waiting).

Who a visitor is (``users.identity_mode``): the login name with ``--auth``; a
signed anonymous cookie (``visitors.py``, read through Gradio's
``auth_dependency``) when browsers are kept apart without logins; else the
one local user. ``data_dir`` is blocked from Gradio's file route.

Where a visitor comes from is the connection's address; ``X-Forwarded-For``
counts only from ``--trusted-proxies`` (``visitors.ClientAddresses``), so
uvicorn's own proxy-header handling (which trusts loopback) is turned off.

Every response carries a Content-Security-Policy that lets images load from
this app (and ``--allowed-image-hosts``) alone (``csp.py``): a second wall
behind ``sanitize.py`` against images that leak a chat to another server.

Uploads (``uploads.py``): a file reaches the documents only if Gradio's upload
route wrote it for the same owner (``upload_route.UploadReceipts`` records
each one). Gradio's own check that an event's files were uploaded is switched
on too (it runs only in a "launched" app, and a mounted one never is). The
route takes files up to ``UPLOAD_HARD_CAP`` times ``--max-upload-mb``: the
browser and the route refuse a whole batch for one file over their limit,
while the library refuses a file over ``--max-upload-mb`` alone, by name.

Stopping the server (Ctrl+C, SIGTERM) stops the answers first, each stored as
"stopped" with what came, so no open answer stream holds the shutdown; other
open responses (Gradio's heartbeats) get ``SHUTDOWN_GRACE_SECONDS``.

Keep-alive (``web_server``): an idle connection is closed after
``KEEP_ALIVE_SECONDS``, longer than HTTP clients keep idle connections in their
pools (httpx and Node 5 s, aiohttp 15 s), so a client does not reuse one just as
the server closes it. And it is never closed while its next request waits
unread (``_KeepAliveProtocol``): under load the event loop can run the idle
timer after that request reached the socket but before reading it, and closing
a socket with unread data sends a reset ("Connection reset by peer", the
kernel's TCPAbortOnClose) to a client that did nothing wrong.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable

import gradio as gr
import uvicorn
from fastapi import FastAPI
from starlette.routing import Mount
from uvicorn.protocols.http.h11_impl import H11Protocol

from chatui.api import build_api
from chatui.csp import ImagePolicy
from chatui.runtime import Runtime
from chatui.ui import build_ui
from chatui.ui.coalesce import coalesce_head
from chatui.ui.held import make_room
from chatui.upload_route import UploadReceipts, gradio_owner
from chatui.uploads import UPLOAD_HARD_CAP
from chatui.visitors import (
    ClientAddresses,
    VisitorCookies,
    anonymous_visitors,
    trusted_proxies,
    visitor_owner,
)

try:
    from fcntl import ioctl
    from termios import FIONREAD
except ImportError:  # Windows: no way to ask; uvicorn's plain behaviour
    ioctl = None  # type: ignore[assignment]

log = logging.getLogger("chatui")

KEEP_ALIVE_SECONDS = 75  # nginx's default; longer than the clients' idle pools
SHUTDOWN_GRACE_SECONDS = 3  # for open responses once the answers are stopped (then cut)


def build_app(runtime: Runtime) -> FastAPI:
    config = runtime.config
    app = FastAPI(
        title="chatui",
        version="1.0",
        description="Chat with local or remote OpenAI-compatible models, "
                    "with branches and documents.",
        docs_url="/docs",
    )
    app.include_router(build_api(runtime), prefix="/api/v1")
    uploads = runtime.documents.uploads  # the UI's and the REST API's uploads alike
    blocks = build_ui(runtime)
    blocks.queue(default_concurrency_limit=config.concurrency_limit, max_size=config.max_queue)
    make_room(blocks)  # each open page holds one running event (``ui.held``)
    visitors = anonymous_visitors(config)  # None unless each browser is its own user
    app = gr.mount_gradio_app(
        app, blocks, path="/",
        auth=list(config.auth) or None,
        auth_dependency=visitor_owner(visitors) if visitors else None,
        auth_message="Log in to chatui.",
        allowed_paths=[],
        blocked_paths=[str(config.data_dir)],
        max_file_size=_upload_route_limit(config.max_upload_mb),
        footer_links=[],
        ssr_mode=False,
        head=coalesce_head(),  # before Gradio's code: the page renders the newest frame
    )
    # Gradio refuses an event's file outside its upload folder only once the Blocks
    # "launched" (processing_utils._check_allowed); mounted, it would copy any file in.
    blocks.has_launched = True
    gradio_app = next(route.app for route in app.routes
                      if isinstance(route, Mount) and isinstance(route.app, gr.routes.App))
    app.add_middleware(UploadReceipts, uploads=uploads, owner_of=gradio_owner(gradio_app))
    if visitors is not None:
        app.add_middleware(VisitorCookies, ids=visitors)
    app.add_middleware(ImagePolicy, allowed_hosts=config.allowed_image_hosts)
    proxies = trusted_proxies(config)
    if proxies is not None:
        app.add_middleware(ClientAddresses, proxies=proxies)
    return app


def web_server(
    app: FastAPI, host: str, port: int, before_shutdown: Callable[[], object] | None = None,
) -> uvicorn.Server:
    """uvicorn serving ``app``; X-Forwarded-For is ``ClientAddresses``' business alone.

    HTTP/1.1 through h11, with the keep-alive of the module docstring. When it is
    told to stop (Ctrl+C, SIGTERM), ``before_shutdown`` runs first, in a thread
    (``serve`` stops the answers there, so their streams end and their partial
    text is stored); then open responses get ``SHUTDOWN_GRACE_SECONDS`` to end.
    """
    return _Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", proxy_headers=False,
        http=_KeepAliveProtocol, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    ), before_shutdown)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], object] | None
                 ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._before_shutdown is not None:
            await asyncio.to_thread(self._before_shutdown)
        await super().shutdown(sockets)


class _KeepAliveProtocol(H11Protocol):
    """uvicorn's h11 protocol, except that an idle connection whose next request has
    already arrived is not closed: the timer starts again, and reading the request
    (``data_received``) cancels it as usual."""

    def timeout_keep_alive_handler(self) -> None:
        if _unread_bytes(self.transport) > 0 and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)
            return
        super().timeout_keep_alive_handler()


def _unread_bytes(transport: object) -> int:
    """Bytes waiting in the connection's socket, not yet read (0 if unknown)."""
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if ioctl is None or sock is None:
        return 0
    try:
        waiting = ioctl(sock.fileno(), FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", waiting)[0])


def _upload_route_limit(max_upload_mb: float) -> int | None:
    """Bytes Gradio's upload route (and the browser) accept per file; None: no limit."""
    if max_upload_mb <= 0:
        return None
    return int(max_upload_mb * 1024 * 1024 * UPLOAD_HARD_CAP)


def _open_share_link(server: uvicorn.Server, runtime: Runtime) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if server.should_exit:
        return
    try:
        url = gr.networking.setup_tunnel(
            "127.0.0.1", runtime.config.port, secrets.token_urlsafe(32), None, None
        )
    except Exception as error:  # the tunnel needs the internet; say so and keep serving
        log.error("Could not create a share link (%s). The app still runs locally.", error)
        return
    print(f"Public share link (login required): {url}", flush=True)


def serve(runtime: Runtime) -> int:
    config = runtime.config
    app = build_app(runtime)
    server = web_server(app, config.host, config.port, runtime.service.stop_all)
    print(f"chatui is running on http://{config.host}:{config.port}", flush=True)
    if config.share:
        threading.Thread(target=_open_share_link, args=(server, runtime), daemon=True).start()
    server.run()
    return 0
