"""The page keeps one stream open (``ui.held``): no event waits for another one to reopen it.

Counted in a real browser: after the page's load, sending, answering and opening new
chats open no new ``/queue/data`` stream (without the held event, three questions opened
17). The queue has room for the held events beside the running ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import DEFAULT_ANSWER, FakeBackend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000


@pytest.fixture
def page(chromium_path: str, fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    with (open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url, sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            streams: list[str] = []
            page.on("request", lambda request: streams.append(request.url)
                    if "/queue/data" in request.url else None)
            page.goto(url)
            expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
            page.streams = streams  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def test_every_event_of_the_page_goes_through_its_first_stream(page: Any) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    bots = page.locator('#chatui-chat [data-testid="bot"]')
    page.wait_for_timeout(1000)  # the load's own events have run
    opened = len(page.streams)
    assert opened >= 1  # the page's stream
    for number in range(3):
        box.click()
        page.keyboard.type(f"Question {number}")  # each key: the gauge's draft event
        page.keyboard.press("Enter")
        expect(bots.last).to_contain_text(DEFAULT_ANSWER, timeout=WAIT_MS)
        page.locator("#chatui-new-chat").click()
        expect(bots).to_have_count(0, timeout=WAIT_MS)
    page.wait_for_timeout(500)
    assert len(page.streams) == opened, page.streams[opened:]


def test_the_queue_has_room_for_the_pages_beside_the_events(fake_backend: FakeBackend,
                                                            tmp_path: Path) -> None:
    from chatui.server import build_app
    from chatui.ui.held import RUNNING_JOBS

    with open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime:
        app = build_app(runtime)
    blocks = next(route.app.get_blocks() for route in app.routes
                  if hasattr(route, "app") and hasattr(route.app, "get_blocks"))
    assert blocks._queue.max_thread_count == RUNNING_JOBS  # Gradio's name for the job slots
    assert blocks.max_threads == 40  # its threads: unchanged
