"""The REST API served for real on 127.0.0.1, for tests and the benchmark.

``running_api(api_base, data_dir)`` builds a runtime on that model server (a
``FakeBackend`` or the embedded model), mounts ``build_api`` on a FastAPI app
as ``chatui.server`` does (without the Gradio UI, which the API does not
need), serves it with uvicorn on a free port in a thread, and yields an
``Api`` with an httpx client whose base URL is ``.../api/v1``. With
``full_app=True`` it serves ``chatui.server.build_app`` instead: the API beside
the Gradio UI, as users get it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from chatui.api import build_api
from chatui.cache import CachedStore
from chatui.config import Config
from chatui.embedded import free_port
from chatui.runtime import Runtime, open_runtime
from chatui.service import ChatService
from tests.polling import wait_until  # also imported from here by the API tests


@dataclass
class Api:
    url: str
    http: httpx.Client
    runtime: Runtime

    @property
    def service(self) -> ChatService:
        return self.runtime.service

    @property
    def store(self) -> CachedStore:
        store = self.runtime.service.store
        assert isinstance(store, CachedStore)
        return store

    def new_chat(self, **fields: Any) -> dict[str, Any]:
        response = self.http.post("/chats/new", json=fields)
        assert response.status_code == 201, response.text
        return response.json()


def api_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="chatui", docs_url="/docs")
    app.include_router(build_api(runtime), prefix="/api/v1")
    return app


@contextmanager
def open_test_runtime(api_base: str, data_dir: Path, **config_fields: Any) -> Iterator[Runtime]:
    """The app's own runtime on an external (usually fake) backend."""
    with open_runtime(Config(api_base=api_base, data_dir=data_dir, **config_fields)) as runtime:
        yield runtime


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free 127.0.0.1 port; yields its root URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        proxy_headers=False,  # as chatui.server.web_server: X-Forwarded-For is not trusted
    ))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), message="uvicorn did not start")
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running_api(
    api_base: str,
    data_dir: Path,
    *,
    headers: dict[str, str] | None = None,
    full_app: bool = False,
    **config_fields: Any,
) -> Iterator[Api]:
    with open_test_runtime(api_base, data_dir, **config_fields) as runtime:
        if full_app:
            from chatui.server import build_app

            app = build_app(runtime)
        else:
            app = api_app(runtime)
        with serving(app) as root:
            url = f"{root}/api/v1"
            with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
                yield Api(url, http, runtime)


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of a whole event-stream text; comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def read_history(api: Api, chat_id: str, **params: Any) -> dict[str, Any]:
    response = api.http.get(f"/chats/{chat_id}/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def send_message(api: Api, chat_id: str, **body: Any) -> dict[str, Any]:
    response = api.http.post(f"/chats/{chat_id}/message", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: Any, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    assert body["error"]["message"]
    return body["error"]["message"]
