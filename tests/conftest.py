"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import EmbeddedServer
from chatui.runtime import Runtime
from tests.fakebackend import FakeBackend


@pytest.fixture
def fake_backend() -> Iterator[FakeBackend]:
    """A running scripted OpenAI-compatible server; see ``tests/fakebackend.py``."""
    backend = FakeBackend()
    try:
        yield backend
    finally:
        backend.close()


# ----- the embedded model (added with the REST API tests) ---------------------------


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedServer]:
    """The real SmolLM2-135M server, started once per session (about a second)."""
    with EmbeddedServer(context=2048) as server:
        yield server


# ----- the whole app in a real browser (added with the Gradio UI tests) ----------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; missing, the browser tests skip (and fail in CI, where CI=true)."""
    import os

    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Chromium launched once per test module (Playwright's ``Browser``); tests open pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def serve_app(runtime: Runtime, port: int) -> Iterator[str]:
    """``chatui.server.build_app(runtime)`` on 127.0.0.1:``port`` in a thread, served as
    ``chatui.server.serve`` serves it (``web_server``: X-Forwarded-For is not trusted).

    Unlike ``apiharness.serving`` the lifespan runs: Gradio starts its queue there.
    """
    import threading

    from chatui.server import build_app, web_server
    from tests.polling import wait_until

    server = web_server(build_app(runtime), "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="uvicorn-ui-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), message="the app did not start")
    if not server.started:
        raise RuntimeError("the app did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # Gradio's heartbeat streams would hold a graceful exit
        thread.join(timeout=15)


@pytest.fixture
def running_app(tmp_path: Path) -> Callable[..., AbstractContextManager[str]]:
    """Start the real app on a model server: ``with running_app(api_base, port=...) as url``.

    Each start opens a fresh runtime on the same ``tmp_path / "data"``, so
    starting again after the first one ended is a server restart.
    """
    from chatui.embedded import free_port
    from tests.apiharness import open_test_runtime

    chosen = free_port()

    @contextmanager
    def start(api_base: str, port: int | None = None, **config_fields: Any) -> Iterator[str]:
        with (open_test_runtime(api_base, tmp_path / "data", **config_fields) as runtime,
              serve_app(runtime, port or chosen) as url):
            yield url

    return start
