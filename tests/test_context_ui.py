"""The gauge under the message box in a real browser: prompt progress, then the context used.

The scripted server plays a llama-server (``/props`` with ``n_ctx``, progress chunks
with ``return_progress``, ``timings`` with ``cache_n``); keys are pressed, not simulated.
Screenshots: tests/artifacts/context-*.png (desktop 1280x800, mobile 390x844).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import FakeBackend, Script
from tests.polling import Hold

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMINGS = {"prompt_n": 300, "cache_n": 1200, "prompt_ms": 50.0, "predicted_n": 100,
           "predicted_ms": 500.0, "predicted_per_second": 200.0}


def _progress(processed: int) -> str:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
             "prompt_progress": {"processed": processed, "cache": 100, "total": 1100,
                                 "time_ms": 250.0}}
    return f"data: {json.dumps(chunk)}\n\n"


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend(props={"default_generation_settings": {"n_ctx": 4000}}) as server:
        yield server


@pytest.fixture
def browser(chromium_path: str, backend: FakeBackend, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with (open_test_runtime(backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url, sync_playwright() as playwright):
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched, url
        finally:
            launched.close()


def _open(browser: Any, width: int, height: int) -> Any:
    from playwright.sync_api import expect

    launched, url = browser
    page = launched.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
    return page


def test_progress_then_the_gauge_then_the_overflow_warning(browser: Any, backend: FakeBackend
                                                           ) -> None:
    from playwright.sync_api import expect

    hold = Hold(after=1)  # one progress chunk (half the prompt read), then wait
    answer = Script.text_answer("Fine, thanks.", timings=TIMINGS)
    backend.enqueue(Script(chunks=hold([(0.0, _progress(600)), *answer.chunks])))
    page = _open(browser, 1280, 800)
    gauge = page.locator("#chatui-gauge")
    try:
        page.locator("#chatui-message textarea").click()
        page.keyboard.type("How are you?")
        page.keyboard.press("Enter")
        expect(gauge).to_contain_text("Reading the prompt: 50% of 1,000 tokens", timeout=WAIT_MS)
        expect(gauge.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "50.0")
        expect(gauge).to_contain_text("2,000 tokens/s")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "context-progress-desktop.png"))
    finally:
        hold.release()
    expect(page.locator('#chatui-chat [data-testid="bot"]').last).to_contain_text(
        "Fine, thanks.", timeout=WAIT_MS)
    # prompt 300 + cached 1,200 + answer 100 tokens, of the server's n_ctx
    expect(gauge).to_contain_text("Context: 1,600 of 4,000 tokens (40%)", timeout=WAIT_MS)
    page.screenshot(path=str(ARTIFACTS / "context-gauge-desktop.png"))
    page.locator("#chatui-message textarea").click()
    page.keyboard.insert_text("word " * 2000)  # about 3,300 tokens more: it will not fit
    expect(gauge).to_contain_text("will not fit", timeout=WAIT_MS)
    expect(gauge.locator(".chatui-gauge")).to_have_attribute("data-level", "full")
    page.screenshot(path=str(ARTIFACTS / "context-warning-desktop.png"))
    page.locator("#chatui-message textarea").fill("")
    expect(gauge).not_to_contain_text("will not fit", timeout=WAIT_MS)
    expect(gauge).to_contain_text("1,600 of 4,000")


def test_the_gauge_on_a_phone(browser: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    backend.enqueue(Script.text_answer("Short.", timings=TIMINGS))
    page = _open(browser, 390, 844)
    page.locator("#chatui-message textarea").click()
    page.keyboard.type("Hi")
    page.keyboard.press("Enter")
    gauge = page.locator("#chatui-gauge")
    expect(gauge).to_contain_text("1,600 of 4,000", timeout=WAIT_MS)
    box = gauge.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "context-gauge-mobile.png"))
