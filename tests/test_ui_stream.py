"""Answers stream into the page and keep going when the page leaves them (real browser).

A generation belongs to the server: reloading, closing the tab, opening another
chat or a new one does not stop it; the answer is stored as it ends, and a page
that opens its chat again shows it live (re-attach). Stop works from any tab of
the same user. A page that goes away leaves no reader behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import EmbeddedServer, free_port
from chatui.runtime import Runtime
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import FakeBackend, Script
from tests.polling import Hold, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
WORDS = " ".join(f"w{number}" for number in range(1, 41))
ARTIFACTS = Path(__file__).parent / "artifacts"
BOT = '#chatui-chat [data-testid="bot"]'


@dataclass
class App:
    url: str
    runtime: Runtime
    browser: Any

    def open_page(self, width: int = 1280, height: int = 800) -> Any:
        from playwright.sync_api import expect

        page = self.browser.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.goto(self.url)
        expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#chatui-backend-status")).to_contain_text("Model", timeout=WAIT_MS)
        return page

    def only_answer(self) -> Any:
        """The one live answer of the local user (the service's own record of it)."""
        service = self.runtime.service
        running = wait_until(lambda: service.answering("local"), message="no answer runs")
        (cid,) = running
        return service._running[cid]  # the answer, to count its readers


def _serve(api_base: str, data: Path, chromium_path: str) -> Iterator[App]:
    from playwright.sync_api import sync_playwright

    with (open_test_runtime(api_base, data) as runtime,
          serve_app(runtime, free_port()) as url, sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield App(url, runtime, browser.new_context())
        finally:
            browser.close()


@pytest.fixture
def app(chromium_path: str, fake_backend: FakeBackend, tmp_path: Path) -> Iterator[App]:
    yield from _serve(fake_backend.base_url, tmp_path / "data", chromium_path)


def _send(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    box.click()
    page.keyboard.type(text)
    expect(box).to_have_value(text)
    page.keyboard.press("Enter")
    expect(box).to_have_value("", timeout=WAIT_MS)  # taken


def _pick(page: Any, title: str) -> Any:
    """The chat list's entry for ``title`` (``ui.chatlist``)."""
    return page.locator("#chatui-conversations button.chatui-pick", has_text=title)


def _held(fake_backend: FakeBackend, after: int = 4) -> Hold:
    hold = Hold(after=after)
    fake_backend.enqueue(Script(chunks=hold(Script.text_answer(WORDS).chunks)))
    return hold


def _stored_answer(app: App) -> Any:
    service = app.runtime.service
    (summary,) = service.conversations("local")
    conversation = service.conversation(summary.id, "local")
    return [m for m in conversation.messages.values() if m.role == "assistant"]


def test_reloading_the_page_keeps_the_answer_and_shows_it_live(
        app: App, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    hold = _held(fake_backend)
    try:
        page = app.open_page()
        _send(page, "Count for me")
        expect(page.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        page.reload()
        # The reloaded page opens the chat and follows its answer: text so far and Stop.
        expect(page.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        expect(page.locator("#chatui-stop")).to_be_visible(timeout=WAIT_MS)
        assert app.runtime.service.answering("local")
        assert fake_backend.disconnects == 0  # the reload did not stop the model
        hold.release()
        expect(page.locator(BOT).last).to_contain_text("w40", timeout=WAIT_MS)  # live, no click
        expect(page.locator("#chatui-send")).to_be_visible(timeout=WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "stream-reattached-desktop.png"))
    finally:
        hold.release()
    (answer,) = _stored_answer(app)
    assert answer.status == "complete" and answer.content.endswith("w40")


def test_a_closed_page_leaves_no_reader_and_the_answer_is_stored(
        app: App, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    hold = _held(fake_backend)
    try:
        page = app.open_page()
        _send(page, "Count for me")
        expect(page.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        answer = app.only_answer()
        assert answer.readers == 1
        page.close()
        wait_until(lambda: answer.readers == 0, message="the closed page still reads")
        assert not answer.ended, (answer.stopped, answer._final, answer._error)
        assert fake_backend.disconnects == 0
        hold.release()
        assert answer.wait(60)
    finally:
        hold.release()
    (stored,) = _stored_answer(app)
    assert stored.status == "complete" and stored.content.endswith("w40")


def test_switching_chats_keeps_the_answer_and_coming_back_follows_it(
        app: App, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    page = app.open_page()
    _send(page, "First chat")  # a finished chat to switch to
    wait_until(lambda: fake_backend.requests, message="nothing was sent")
    expect(page.locator(BOT).last).to_contain_text("fake backend", timeout=WAIT_MS)
    page.locator("#chatui-new-chat").click()
    hold = _held(fake_backend)
    try:
        _send(page, "Second chat counts")
        expect(page.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        expect(_pick(page, "Second chat")).to_be_visible(timeout=WAIT_MS)
        _pick(page, "First chat").click()
        expect(page.locator(BOT).last).to_contain_text("fake backend", timeout=WAIT_MS)
        page.locator("#chatui-new-chat").click()  # and a new chat: still going
        expect(page.locator(BOT)).to_have_count(0, timeout=WAIT_MS)
        answer = app.only_answer()
        wait_until(lambda: answer.readers == 0, message="a page that left still reads")
        assert not answer.ended
        _pick(page, "Second chat").click()
        expect(page.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        expect(page.locator("#chatui-stop")).to_be_visible(timeout=WAIT_MS)
        hold.release()
        expect(page.locator(BOT).last).to_contain_text("w40", timeout=WAIT_MS)
        expect(page.locator("#chatui-send")).to_be_visible(timeout=WAIT_MS)
    finally:
        hold.release()
    assert fake_backend.disconnects == 0


def test_stop_works_from_another_tab_of_the_same_user(
        app: App, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    hold = _held(fake_backend)
    try:
        first = app.open_page()
        _send(first, "Count for me")
        expect(first.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        second = app.open_page(390, 844)  # the same browser (user), another tab, a phone's size
        expect(second.locator(BOT).last).to_contain_text("w3", timeout=WAIT_MS)
        second.screenshot(path=str(ARTIFACTS / "stream-other-tab-mobile.png"))
        second.locator("#chatui-stop").click()
        for page in (first, second):  # both tabs see the end: Send is back
            expect(page.locator("#chatui-send")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#chatui-stop")).to_be_hidden(timeout=WAIT_MS)
        assert not app.runtime.service.answering("local")
    finally:
        hold.release()
    (stored,) = _stored_answer(app)
    assert stored.status == "stopped" and "w3" in stored.content and "w40" not in stored.content


@pytest.mark.timeout(600)
def test_the_embedded_model_answers_through_a_reload(
        chromium_path: str, embedded_server: EmbeddedServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    for app in _serve(embedded_server.base_url, tmp_path / "data", chromium_path):
        page = app.open_page()
        _send(page, "Write a long story about a cat who travels the world.")
        answer = app.only_answer()
        expect(page.locator(BOT).last).not_to_be_empty(timeout=WAIT_MS)  # tokens are showing
        assert not answer.ended  # 512 tokens take seconds: the reload comes mid-answer
        page.reload()
        assert answer.wait(300)
        expect(page.locator("#chatui-send")).to_be_visible(timeout=WAIT_MS)
        (stored,) = _stored_answer(app)
        assert stored.status == "complete" and stored.content  # not "stopped" by the reload
        expect(page.locator(BOT).last).to_contain_text(stored.content[:20], timeout=WAIT_MS)
