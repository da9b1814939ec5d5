"""One process, one port: the REST API under /api/v1 and the Gradio UI at /.

Both sit on the same ``ChatService`` (and document library), so a chat created
through one is visible through the other. Gradio's queue is configured so that
one user's stream never blocks another's (``concurrency_limit`` streams at
once, ``max_queue`` waiting).

Who a visitor is (``users.identity_mode``): the login name with ``--auth``; a
signed anonymous cookie (``visitors.py``, read through Gradio's
``auth_dependency``) when browsers are kept apart without logins; else the
one local user. ``data_dir`` is blocked from Gradio's file route.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import gradio as gr
import uvicorn
from fastapi import FastAPI

from chatui.api import build_api
from chatui.runtime import Runtime
from chatui.ui import build_ui
from chatui.visitors import VisitorCookies, anonymous_visitors, visitor_owner

log = logging.getLogger("chatui")


def build_app(runtime: Runtime) -> FastAPI:
    config = runtime.config
    app = FastAPI(
        title="chatui",
        version="1.0",
        description="Chat with local or remote OpenAI-compatible models, with branches and documents.",
        docs_url="/docs",
    )
    app.include_router(build_api(runtime), prefix="/api/v1")
    blocks = build_ui(runtime)
    blocks.queue(default_concurrency_limit=config.concurrency_limit, max_size=config.max_queue)
    visitors = anonymous_visitors(config)  # None unless each browser is its own user
    app = gr.mount_gradio_app(
        app, blocks, path="/",
        auth=list(config.auth) or None,
        auth_dependency=visitor_owner(visitors) if visitors else None,
        auth_message="Log in to chatui.",
        allowed_paths=[],
        blocked_paths=[str(config.data_dir)],
        max_file_size=f"{config.max_upload_mb:g}mb",
        footer_links=[],
        ssr_mode=False,
    )
    if visitors is not None:
        app.add_middleware(VisitorCookies, ids=visitors)
    return app


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
    server = uvicorn.Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_level="warning")
    )
    print(f"chatui is running on http://{config.host}:{config.port}", flush=True)
    if config.share:
        threading.Thread(target=_open_share_link, args=(server, runtime), daemon=True).start()
    server.run()
    return 0
