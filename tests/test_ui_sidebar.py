"""The sidebar's chat list: in a real browser (clicks, keys, a phone's screen) and by forged events.

- the list shows a page of the newest chats, grouped by date, and more on scroll;
  search answers from the store's index, old chats included;
- rename in place (double-click or the pencil; Enter saves, Esc cancels), delete
  after a question in the row, the answering mark while an answer runs;
- on a phone (390x844) the sidebar is closed at load and closes after a pick;
- a title is text, never markup; events forged over raw HTTP reach only the
  sender's own chats.

Screenshots go to tests/artifacts/sidebar-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from chatui.runtime import Runtime
from chatui.tree import add_message, make_message, new_conversation
from chatui.ui import sidebar_actions
from chatui.ui.chatlist import PAGE_SIZE, ChatList, list_chats, render_list
from chatui.ui.screen import View
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import FakeBackend, Script
from tests.gradioevents import Forger
from tests.polling import FOREVER, wait_until

WAIT_MS = 30_000
ARTIFACTS = Path(__file__).parent / "artifacts"
DAY = 86400.0
OPEN = re.compile(r"\bopen\b")
HOSTILE = '<img src=x onerror="window.__pwned = 1">"><b>bold</b>'


def seed(runtime: Runtime, title: str, *, owner: str = "local", age_days: float = 0.0,
         text: str = "") -> str:
    """A stored chat last updated ``age_days`` ago, with one question if ``text``."""
    conversation = new_conversation(title, owner=owner)
    if text:
        conversation = add_message(conversation, make_message("user", text, None))
    when = time.time() - age_days * DAY
    conversation = replace(conversation, created_at=when, updated_at=when)
    runtime.service.store.save(conversation)
    return conversation.id


@contextmanager
def app(fake_backend: FakeBackend, tmp_path: Path, **config: Any
        ) -> Iterator[tuple[str, Runtime]]:
    with (open_test_runtime(fake_backend.base_url, tmp_path / "data", **config) as runtime,
          serve_app(runtime, free_port()) as url):
        yield url, runtime


@contextmanager
def browser_page(chromium_path: str, url: str, width: int = 1280, height: int = 800
                 ) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          has_touch=width < 768)
            page = context.new_page()
            page.goto(url)
            expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
            yield page
        finally:
            browser.close()


def settle(page: Any) -> None:
    """Wait for the sidebar's slide (a CSS transition) to end."""
    page.wait_for_function(
        "document.getElementById('chatui-sidebar').getAnimations({subtree: true}).length === 0",
        timeout=WAIT_MS)


def rows(page: Any) -> Any:
    return page.locator("#chatui-conversations li.chatui-chat")


def row(page: Any, title: str) -> Any:
    return rows(page).filter(has_text=title)


# ----- without a browser -------------------------------------------------------------


def test_the_list_escapes_what_it_shows() -> None:
    from chatui.store import ConversationSummary

    item = ConversationSummary(id="a" * 32, title=HOSTILE, owner="local", created_at=1.0,
                               updated_at=1.0, message_count=1, preview='"><script>x</script>')
    html = render_list(ChatList(items=(item,)), "a" * 32)
    assert "<img" not in html and "<b>" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=&quot;window.__pwned = 1&quot;&gt;" in html
    assert 'aria-current="true"' in html


def test_the_list_reads_one_page_and_more_on_request(fake_backend: FakeBackend,
                                                     tmp_path: Path) -> None:
    with open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime:
        for number in range(PAGE_SIZE + 20):
            seed(runtime, f"Chat {number}", age_days=number / 100,
                 text="about zebras" if number == PAGE_SIZE + 15 else "about cats")
        seed(runtime, "Not mine", owner="someone else", text="about zebras")
        first = list_chats(runtime.service, "local")
        assert len(first.items) == PAGE_SIZE and first.more
        assert first.items[0].title == "Chat 0"
        more = sidebar_actions.act(runtime.service, "local", View(), {"action": "more"})
        assert more.conversations is not None and not more.conversations.more
        assert len(more.conversations.items) == PAGE_SIZE + 20
        assert more.view.listed == 2 * PAGE_SIZE
        # the store's index answers the search, the old chat and only the owner's
        found = list_chats(runtime.service, "local", "zebras")
        assert found.pairs() == ((f"Chat {PAGE_SIZE + 15}", found.items[0].id),)


def test_forged_list_events_reach_only_the_senders_chats(fake_backend: FakeBackend,
                                                         tmp_path: Path) -> None:
    users = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
    with app(fake_backend, tmp_path, auth=tuple(users.items())) as (url, runtime):
        alices = seed(runtime, "Alice's plans", owner="alice", text="the plans")
        bobs = seed(runtime, "Bob's notes", owner="bob", text="the notes")
        with Forger(url, login=("bob", users["bob"])) as bob:
            opening = bob.event("chatui-conversations", "click", "open")
            acting = bob.event("chatui-conversations", "submit", "sidebar")

            def notice(dependency: dict[str, Any], data: Any) -> str:
                done = bob.send(dependency, data)
                assert done["success"], done
                return str(bob.output_of(dependency, "chatui-notice", done["output"]["data"]))

            for dependency, data in [
                    (opening, {"id": alices}),
                    (acting, {"action": "rename", "id": alices, "title": "Mine"}),
                    (acting, {"action": "delete", "id": alices})]:
                assert "There is no such conversation" in notice(dependency, data)
            for data in [{"action": "rename", "id": "../" + alices, "title": "x"},
                         {"action": "rename", "id": bobs, "title": "x" * 10_000},
                         {"action": "drop tables", "id": bobs}, ["not", "a", "dict"], None]:
                assert notice(acting, data).startswith("⚠️"), data
            done = bob.send(acting, {"action": "rename", "id": bobs,
                                     "title": "Bob's  <b>own</b>"})
            listed = bob.output_of(acting, "chatui-conversations", done["output"]["data"])
            assert "Bob&#x27;s &lt;b&gt;own&lt;/b&gt;" in listed and "Alice" not in listed
        assert runtime.service.conversation(alices, "alice").title == "Alice's plans"
        assert runtime.service.conversation(bobs, "bob").title == "Bob's <b>own</b>"


# ----- in a real browser ---------------------------------------------------------------



@pytest.mark.slow
@pytest.mark.timeout(300)
def test_chats_are_grouped_by_date_and_open_on_click(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        seed(runtime, "Old question", age_days=40, text="An old question")
        seed(runtime, "Last week", age_days=3.2, text="A question from last week")
        seed(runtime, "Yesterday's", age_days=1.05, text="A question from yesterday")
        seed(runtime, HOSTILE, age_days=0.0, text="A hostile title")
        with browser_page(chromium_path, url) as page:
            expect(rows(page)).to_have_count(4, timeout=WAIT_MS)
            groups = page.locator("#chatui-conversations li.chatui-group")
            # "Yesterday" counts from the browser's midnight: early in the day, a chat
            # 1.05 days old may be older still; the order of the headings is fixed.
            expect(groups.first).to_have_text("Today")
            expect(groups.last).to_have_text("Older")
            texts = groups.all_text_contents()
            order = ["Today", "Yesterday", "Previous 7 days", "Older"]
            assert texts == sorted(texts, key=order.index) and len(set(texts)) == len(texts)
            expect(rows(page).nth(1)).to_contain_text("Yesterday's")
            assert page.evaluate("window.__pwned") is None  # the title is text
            expect(rows(page).first).to_contain_text('<img src=x onerror="window.__pwned')
            row(page, "Last week").locator(".chatui-pick").click()
            expect(page.locator("#chatui-title input, #chatui-title textarea")).to_have_value(
                "Last week", timeout=WAIT_MS)
            expect(page.locator('#chatui-chat [data-testid="user"]')).to_contain_text(
                "A question from last week")
            expect(row(page, "Last week")).to_have_class("chatui-chat chatui-open")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "sidebar-desktop.png"))
            assert page.evaluate("window.__pwned") is None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rename_in_place_enter_saves_escape_cancels(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        other = seed(runtime, "Another chat", age_days=0.01, text="Something else")
        opened = seed(runtime, "Open chat", text="A question")
        with browser_page(chromium_path, url) as page:
            title_box = page.locator("#chatui-title input, #chatui-title textarea")
            expect(title_box).to_have_value("Open chat", timeout=WAIT_MS)
            # the pencil of another chat, type, Esc: nothing changes, nothing opens
            row(page, "Another chat").hover()
            row(page, "Another chat").locator(".chatui-rename").click()
            box = page.locator("#chatui-conversations .chatui-title-edit")
            expect(box).to_be_focused()
            page.keyboard.type("Not this")
            page.keyboard.press("Escape")
            expect(box).to_have_count(0)
            expect(row(page, "Another chat")).to_have_count(1)
            # the pencil again, type, Enter: stored and shown; the open chat stays open
            row(page, "Another chat").hover()
            row(page, "Another chat").locator(".chatui-rename").click()
            expect(box).to_be_focused()
            page.keyboard.press("Control+A")
            page.keyboard.type("Renamed <i>chat</i>")
            page.keyboard.press("Enter")
            expect(row(page, "Renamed <i>chat</i>")).to_have_count(1, timeout=WAIT_MS)
            wait_until(lambda: runtime.service.conversation(other, "local").title
                       == "Renamed <i>chat</i>", message="the new title was not stored")
            expect(title_box).to_have_value("Open chat")
            # a double-click opens the chat (first click) and edits its title: the
            # title above the chat changes too
            row(page, "Open chat").locator(".chatui-pick").dblclick()
            expect(box).to_be_focused()
            page.keyboard.press("Control+A")
            page.keyboard.type("Open, renamed")
            page.keyboard.press("Enter")
            expect(title_box).to_have_value("Open, renamed", timeout=WAIT_MS)
            assert runtime.service.conversation(opened, "local").title == "Open, renamed"
            expect(page.locator("#chatui-conversations i")).to_have_count(0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_delete_asks_in_the_row_first(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        doomed = seed(runtime, "Doomed chat", age_days=0.01, text="Delete me")
        seed(runtime, "Kept chat", text="Keep me")
        with browser_page(chromium_path, url) as page:
            expect(rows(page)).to_have_count(2, timeout=WAIT_MS)
            row(page, "Doomed chat").hover()
            row(page, "Doomed chat").locator(".chatui-delete").click()
            question = row(page, "Doomed chat").locator(".chatui-confirm")
            expect(question).to_contain_text("Delete “Doomed chat”?")
            question.get_by_role("button", name="Cancel").click()
            expect(question).to_have_count(0)
            assert runtime.service.store.exists(doomed)
            row(page, "Doomed chat").hover()
            row(page, "Doomed chat").locator(".chatui-delete").click()
            row(page, "Doomed chat").get_by_role("button", name="Delete", exact=True).click()
            expect(rows(page)).to_have_count(1, timeout=WAIT_MS)
            expect(rows(page)).to_contain_text(["Kept chat"])
            wait_until(lambda: not runtime.service.store.exists(doomed),
                       message="the chat was not deleted")
            expect(page.locator('#chatui-chat [data-testid="user"]')).to_contain_text("Keep me")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_more_chats_on_scroll_and_search_finds_old_ones(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        total = 2 * PAGE_SIZE + 10
        for number in range(total):
            seed(runtime, f"Chat number {number}", age_days=number / 10,
                 text="the aardvark question" if number == total - 1 else "a question")
        with browser_page(chromium_path, url) as page:
            expect(rows(page)).to_have_count(PAGE_SIZE, timeout=WAIT_MS)
            more = page.locator("#chatui-conversations .chatui-more")
            expect(more).not_to_be_in_viewport()
            rows(page).first.hover()
            for _ in range(20):  # the wheel scrolls the sidebar down to "More chats":
                page.mouse.wheel(0, 1000)  # once it is in view, the next page comes
                loading = more.is_visible() and more.evaluate("b => b.disabled")
                if loading or rows(page).count() > PAGE_SIZE:
                    break  # one page asked for (a further wheel would ask for the next)
            expect(rows(page)).to_have_count(2 * PAGE_SIZE, timeout=WAIT_MS)
            for _ in range(30):  # and again, for the last 10
                page.mouse.wheel(0, 1000)
                try:
                    expect(rows(page)).to_have_count(total, timeout=1000)
                    break
                except AssertionError:
                    continue
            expect(rows(page)).to_have_count(total)
            expect(more).to_have_count(0)
            page.keyboard.press("Control+k")
            page.keyboard.type("aardvark")
            expect(rows(page)).to_have_count(1, timeout=WAIT_MS)
            expect(rows(page)).to_contain_text([f"Chat number {total - 1}"])
            page.keyboard.type("zzz")
            expect(page.locator("#chatui-conversations .chatui-empty")).to_have_text(
                "No chat matches.", timeout=WAIT_MS)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_answering_mark_follows_the_answer(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        seed(runtime, "A quiet chat", age_days=0.5, text="Nothing runs here")
        with browser_page(chromium_path, url) as page:
            fake_backend.enqueue(Script.stall(after_chunks=1, seconds=FOREVER, text="Held on"))
            page.get_by_role("button", name="+ New chat").click()
            page.locator("#chatui-message textarea").fill("A long question")
            page.keyboard.press("Enter")
            busy = row(page, "A long question")
            expect(busy.locator(".chatui-mark")).to_have_count(1, timeout=WAIT_MS)
            expect(row(page, "A quiet chat").locator(".chatui-mark")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "sidebar-answering.png"))
            page.get_by_role("button", name="Stop").click()
            expect(busy.locator(".chatui-mark")).to_have_count(0, timeout=WAIT_MS)
            assert runtime.service.answering("local") == frozenset()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_on_a_phone_the_sidebar_is_closed_and_closes_after_a_pick(
    chromium_path: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with app(fake_backend, tmp_path) as (url, runtime):
        seed(runtime, "Older chat", age_days=2, text="The older question")
        seed(runtime, "Newest chat", text="The newest question")
        with browser_page(chromium_path, url, 390, 844) as page:
            sidebar = page.locator("#chatui-sidebar")
            expect(sidebar).to_have_class(re.compile(r"\bsidebar\b"))
            expect(sidebar).not_to_have_class(OPEN, timeout=WAIT_MS)
            settle(page)
            edge = sidebar.bounding_box()
            assert edge is not None and edge["x"] + edge["width"] <= 1  # off the screen
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "sidebar-mobile-closed.png"))
            toggle = sidebar.locator(":scope > .toggle-button")
            box = toggle.bounding_box()
            assert box is not None and box["y"] > 844 / 2  # low, where a thumb reaches
            assert box["width"] >= 44 and box["height"] >= 44
            toggle.tap()
            expect(sidebar).to_have_class(OPEN)
            expect(row(page, "Older chat")).to_be_in_viewport(timeout=WAIT_MS)
            settle(page)
            page.screenshot(path=str(ARTIFACTS / "sidebar-mobile-open.png"))
            row(page, "Older chat").locator(".chatui-pick").tap()
            expect(page.locator('#chatui-chat [data-testid="user"]')).to_contain_text(
                "The older question", timeout=WAIT_MS)
            expect(row(page, "Older chat")).not_to_be_in_viewport()
            expect(sidebar).not_to_have_class(OPEN)
            settle(page)
            page.screenshot(path=str(ARTIFACTS / "sidebar-mobile-picked.png"))
            toggle.tap()  # New chat closes it too
            expect(sidebar).to_have_class(OPEN)
            page.get_by_role("button", name="+ New chat").tap()
            expect(sidebar).not_to_have_class(OPEN)
            expect(page.locator('#chatui-chat [data-testid="user"]')).to_have_count(0)
