"""The real app (``chatui.server.build_app``) in a real browser (Debian's Chromium).

The chat itself runs on the real embedded model (SmolLM2-135M): send, stop
mid-stream, change a setting, regenerate, move between branches, edit a
question, reload the page, restart the server; each step checks what is on the
screen. The sidebar (new chat, search, open, rename, delete) runs on the
scripted FakeBackend. A screenshot of the chat goes to tests/artifacts/ui.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from chatui.embedded import EmbeddedServer
from chatui.tree import Settings
from tests.fakebackend import FakeBackend
from tests.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


ARTIFACTS = Path(__file__).parent / "artifacts"
STORY = "Tell me a long story about a brave little dragon who learns to fly."
POEM = "Write a short poem about the sea."
WAIT_MS = 60_000


@pytest.fixture
def browser_page(chromium_path: str) -> Iterator[Page]:
    from tests.conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            yield page
        finally:
            browser.close()


def bot_rows(page: Page) -> Locator:
    return page.locator('#chatui-chat [data-testid="bot"]')


def user_rows(page: Page) -> Locator:
    return page.locator('#chatui-chat [data-testid="user"]')


def text_of(row: Locator) -> str:
    """A message's text as shown (its bar is beside it, not in it)."""
    return str(row.evaluate("e => e.innerText.trim()"))


def last_footer(page: Page) -> Locator:
    """The bar under the last answer: model, tokens, state, branch arrows, actions."""
    return page.locator("#chatui-chat .chatui-bar-bot").last


def first_question_bar(page: Page) -> Locator:
    return page.locator("#chatui-chat .chatui-bar-user").first


def shown(page: Page) -> list[str]:
    rows = page.locator('#chatui-chat [data-testid="user"], #chatui-chat [data-testid="bot"]')
    return [row.inner_text().strip() for row in rows.all()]


def wait_idle(page: Page) -> None:
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_hidden()
    expect(last_footer(page)).not_to_contain_text("generating", timeout=WAIT_MS)


def saved_settings(url: str) -> dict[str, object]:
    """The settings stored with the only chat, read through the REST API."""
    (chat,) = httpx.get(f"{url}/api/v1/chats").json()
    return dict(httpx.get(f"{url}/api/v1/chats/{chat['id']}/history").json()["settings"])


def sidebar_still(page: Page) -> None:
    """Wait until the sidebar is open and done sliding in (no transition running)."""
    page.wait_for_function("""() => {
        const bar = document.querySelector('.sidebar.open');
        const parent = document.querySelector('.sidebar-parent');
        return bar !== null && bar.getBoundingClientRect().left >= 0
            && [bar, parent].every(e => e === null || e.getAnimations().length === 0);
    }""", timeout=WAIT_MS)


def ask(page: Page, text: str) -> None:
    box = page.locator("#chatui-message textarea")
    box.fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def test_a_whole_chat_in_the_browser(
    embedded_server: EmbeddedServer,
    running_app: Callable[..., AbstractContextManager[str]],
    browser_page: Page,
) -> None:
    page = browser_page
    defaults = Settings(max_tokens=400, temperature=0.8, seed=7)
    with running_app(embedded_server.base_url, context=2048, defaults=defaults) as url:
        page.goto(url)
        expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)

        # Send, and stop once the first tokens are on the screen.
        ask(page, STORY)
        expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
        expect(last_footer(page)).to_contain_text("generating", timeout=WAIT_MS)
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(last_footer(page)).to_contain_text("stopped", timeout=WAIT_MS)
        wait_idle(page)
        stopped_text = text_of(bot_rows(page).last)
        assert stopped_text
        expect(page.locator("#chatui-conversations")).to_contain_text("brave little dragon")

        # A shorter answer from now on: the setting is saved with the chat.
        page.get_by_text("Settings (saved with the chat)").click()
        max_tokens = page.get_by_label("Max tokens")
        max_tokens.click()
        max_tokens.press("Control+a")
        max_tokens.press_sequentially("24")  # typed, as a person does (fill sets it at once)
        expect(max_tokens).to_have_value("24")
        max_tokens.press("Tab")
        wait_until(lambda: saved_settings(url)["max_tokens"] == 24,
                   message="the new Max tokens was not saved with the chat")

        # Regenerate: a second version; the stopped one stays.
        last_footer(page).locator("[data-act=regen]").click()
        expect(last_footer(page)).to_contain_text("2/2", timeout=WAIT_MS)
        wait_idle(page)
        regenerated_text = text_of(bot_rows(page).last)
        assert regenerated_text != stopped_text

        # One click moves between the versions.
        last_footer(page).locator("[data-act=prev]").click()
        expect(last_footer(page)).to_contain_text("1/2")
        expect(last_footer(page)).to_contain_text("stopped")
        assert text_of(bot_rows(page).last) == stopped_text
        last_footer(page).locator("[data-act=next]").click()
        expect(last_footer(page)).to_contain_text("2/2")
        assert text_of(bot_rows(page).last) == regenerated_text

        # Edit the question: a new version with a fresh answer; the original stays.
        first_question_bar(page).locator("[data-act=edit]").click()
        edit_box = page.locator("textarea.edit-textarea").first
        expect(edit_box).to_have_value(STORY)
        edit_box.fill(POEM)
        page.get_by_label("Submit").first.click()
        expect(first_question_bar(page)).to_contain_text("2/2", timeout=WAIT_MS)
        wait_idle(page)
        assert text_of(user_rows(page).first) == POEM

        # Editing again shows the text only, not the "◀ 2/2 ▶" footer.
        first_question_bar(page).locator("[data-act=edit]").click()
        expect(page.locator("textarea.edit-textarea").first).to_have_value(POEM)
        page.get_by_label("Cancel").first.click()

        # Back to the original question, shown down to its newest answer.
        first_question_bar(page).locator("[data-act=prev]").click()
        expect(first_question_bar(page)).to_contain_text("1/2")
        assert text_of(user_rows(page).first) == STORY
        expect(last_footer(page)).to_contain_text("2/2")
        assert text_of(bot_rows(page).last) == regenerated_text
        before_reload = shown(page)

        # A reload shows the same chat, from the server.
        page.reload()
        expect(user_rows(page).first).to_contain_text(STORY, timeout=WAIT_MS)
        assert shown(page) == before_reload

    # A server restart too: the browser remembers which chat was open.
    with running_app(embedded_server.base_url, context=2048, defaults=defaults):
        page.reload()
        expect(user_rows(page).first).to_contain_text(STORY, timeout=WAIT_MS)
        assert shown(page) == before_reload
        expect(page.locator("#chatui-title input, #chatui-title textarea")).to_have_value(
            re.compile("brave little dragon"))
        sidebar_still(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui.png"), full_page=True)


def test_the_sidebar_in_the_browser(
    fake_backend: FakeBackend,
    running_app: Callable[..., AbstractContextManager[str]],
    browser_page: Page,
) -> None:
    page = browser_page
    listing = page.locator("#chatui-conversations .chatui-chat-title")
    title = page.locator("#chatui-title input, #chatui-title textarea")
    with running_app(fake_backend.base_url) as url:
        page.goto(url)
        expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
        ask(page, "Apples are red")
        wait_idle(page)
        page.get_by_role("button", name="+ New chat").click()
        expect(user_rows(page)).to_have_count(0, timeout=WAIT_MS)
        expect(title).to_have_value("", timeout=WAIT_MS)
        ask(page, "Bananas are yellow")
        wait_idle(page)
        expect(listing).to_have_text(["Bananas are yellow", "Apples are red"], timeout=WAIT_MS)

        search = page.get_by_placeholder("Search titles and messages")
        search.press_sequentially("apples")
        expect(listing).to_have_text(["Apples are red"], timeout=WAIT_MS)
        listing.first.click()
        expect(user_rows(page).first).to_contain_text("Apples are red", timeout=WAIT_MS)
        search.press("Control+a")
        search.press("Backspace")
        expect(listing).to_have_count(2, timeout=WAIT_MS)

        title.fill("Fruit")
        page.get_by_role("button", name="Rename", exact=True).click()
        expect(listing).to_have_text(["Fruit", "Bananas are yellow"], timeout=WAIT_MS)

        # the chat's Delete, above it (each message's own Delete comes after it)
        page.get_by_role("button", name="Delete", exact=True).first.click()
        page.get_by_role("button", name="Yes, delete").click()
        expect(listing).to_have_text(["Bananas are yellow"], timeout=WAIT_MS)
        expect(user_rows(page).first).to_contain_text("Bananas are yellow", timeout=WAIT_MS)

        page.reload()
        expect(user_rows(page).first).to_contain_text("Bananas are yellow", timeout=WAIT_MS)
        expect(listing).to_have_text(["Bananas are yellow"], timeout=WAIT_MS)
