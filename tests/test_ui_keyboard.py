"""The keyboard in a real browser: Enter sends, Shift+Enter breaks the line, Esc stops,
Ctrl+K goes to search, Ctrl+Shift+O opens a new chat, ↑ in the empty box edits the last
question. Keys are pressed, not simulated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import DEFAULT_ANSWER, FakeBackend, Script
from tests.polling import FOREVER

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
            page.goto(url)
            expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
            yield page
        finally:
            browser.close()



def test_enter_sends_and_shift_enter_breaks_the_line(page: Any, fake_backend: FakeBackend
                                                     ) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    box.click()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert fake_backend.requests == []  # Shift+Enter sent nothing
    page.keyboard.press("Enter")
    bot = page.locator('#chatui-chat [data-testid="bot"]').last
    expect(bot).to_contain_text(DEFAULT_ANSWER, timeout=WAIT_MS)
    user = page.locator('#chatui-chat [data-testid="user"]').last
    expect(user).to_contain_text("second line")
    expect(box).to_have_value("")
    sent = fake_backend.requests[-1]["messages"][-1]["content"]
    assert sent == "first line\nsecond line"


def test_enter_in_an_empty_box_sends_nothing(page: Any, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    page.locator("#chatui-message textarea").click()
    page.keyboard.press("Enter")
    page.keyboard.type("now")
    page.keyboard.press("Enter")
    expect(page.locator('#chatui-chat [data-testid="bot"]').last).to_contain_text(
        DEFAULT_ANSWER, timeout=WAIT_MS)
    assert len(fake_backend.requests) == 1


def test_escape_stops_the_answer(page: Any, fake_backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    fake_backend.enqueue(Script.stall(after_chunks=1, seconds=FOREVER, text="Held answer"))
    page.locator("#chatui-message textarea").click()
    page.keyboard.type("Tell me everything")
    page.keyboard.press("Enter")
    bot = page.locator('#chatui-chat [data-testid="bot"]').last
    expect(bot).to_contain_text("Held", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
        "stopped", timeout=WAIT_MS)
    expect(page.locator("#chatui-send")).to_be_visible(timeout=WAIT_MS)


def test_ctrl_k_goes_to_search_and_ctrl_shift_o_opens_a_new_chat(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator("#chatui-message textarea").click()
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    expect(page.locator('#chatui-chat [data-testid="bot"]').last).to_contain_text(
        DEFAULT_ANSWER, timeout=WAIT_MS)
    page.keyboard.press("Control+k")
    expect(page.locator("#chatui-search textarea, #chatui-search input").first).to_be_focused()
    page.keyboard.press("Control+Shift+O")
    expect(page.locator('#chatui-chat [data-testid="bot"]')).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#chatui-title textarea, #chatui-title input").first).to_have_value("")


def test_arrow_up_in_the_empty_box_edits_the_last_question(page: Any, fake_backend: FakeBackend
                                                           ) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    expect(box).to_have_attribute("placeholder", re.compile("↑ edits the last question"))
    box.click()
    for question in ("First question", "Second question"):
        page.keyboard.type(question)
        page.keyboard.press("Enter")
        expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
            "TTFT", timeout=WAIT_MS)
        expect(page.locator("#chatui-chat .chatui-bar-bot")).to_have_count(
            1 if question.startswith("First") else 2)
    box.click()
    page.keyboard.type("x")
    page.keyboard.press("ArrowUp")  # not empty: the caret moves, nothing opens
    expect(page.locator("textarea.edit-textarea")).to_have_count(0)
    page.keyboard.press("End")  # ↑ moved the caret to the start
    page.keyboard.press("Backspace")
    expect(box).to_have_value("")
    page.keyboard.press("ArrowUp")
    edit_box = page.locator("textarea.edit-textarea")
    expect(edit_box).to_be_focused(timeout=WAIT_MS)
    expect(edit_box).to_have_value("Second question")
    edit_box.fill("Second question, edited")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#chatui-chat .chatui-bar-user").last).to_contain_text(
        "2/2", timeout=WAIT_MS)
    assert fake_backend.requests[-1]["messages"][-1]["content"] == "Second question, edited"
