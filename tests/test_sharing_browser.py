"""A shared demo in real browsers: each visitor has their own chats, limits and a full queue
are explained, and hostile answers and documents run nothing.

The real app is served on 127.0.0.1 on a scripted model server (``FakeBackend``), and each
visitor is a separate Chromium context (own cookies and storage), as separate people are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from chatui.embedded import free_port
from chatui.runtime import Runtime
from chatui.ui import handlers
from chatui.ui.screen import View
from chatui.uploads import DocumentUploads
from chatui.visitors import COOKIE
from tests.apiharness import open_test_runtime
from tests.conftest import serve_app
from tests.fakebackend import DEFAULT_ANSWER, FakeBackend, Script
from tests.gradioevents import Forger
from tests.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WAIT_MS = 30_000
USERS = {"alice": "pw-alice", "bob": "pw-bob"}
TOKENS = {"alice": "token-alice-0123456789", "bob": "token-bob-0123456789"}
ALICE = "Alice asks about the harbour lighthouse"
BOB = "Bob asks about the mountain cabin"


@contextmanager
def serving(fake_backend: FakeBackend, tmp_path: Path, **config: Any) -> Iterator[tuple[str, Runtime]]:
    with (open_test_runtime(fake_backend.base_url, tmp_path / "data", **config) as runtime,
          serve_app(runtime, free_port()) as url):
        yield url, runtime


def visit(browser: Browser, url: str, login: str | None = None) -> Page:
    """A new visitor (own browser context) on the app, logged in as ``login`` if given."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    if login is not None:
        page.get_by_label("username").fill(login)
        page.get_by_label("password").fill(USERS[login])
        page.get_by_role("button", name="Login").click()
    loaded(page)
    return page


def loaded(page: Page) -> None:
    """Wait for the page to be usable. (Its load event may still be running: a test that
    needs the chat it opens waits for that chat; one that needs none checks after acting.)"""
    expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)


def bot_rows(page: Page) -> Locator:
    return page.locator('#chatui-chat [data-testid="bot"]')


def listed(page: Page) -> Locator:
    return page.locator("#chatui-conversations .chatui-chat-title")


def send(page: Page, text: str) -> None:
    page.locator("#chatui-message textarea").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def ask(page: Page, text: str, answer: str = DEFAULT_ANSWER) -> None:
    """Send ``text`` and wait for the whole answer, which starts with ``answer``."""
    send(page, text)
    expect(bot_rows(page).last).to_contain_text(answer, timeout=WAIT_MS)
    expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
        "Regenerate", timeout=WAIT_MS)  # the answer's bar offers it once the answer ended
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible(timeout=WAIT_MS)


def new_chat(page: Page) -> None:
    page.get_by_role("button", name="+ New chat").click()
    expect(bot_rows(page)).to_have_count(0)


def settled(page: Page) -> None:
    """Wait until handlers set off by what the test did have run, instead of sleeping.

    Probes of the kinds a payload uses (an image that fails to load, a toggled
    ``<details>``, a ``javascript:`` link) are started now; once all three have run,
    anything of those kinds that the test's clicks and hovers set off before would have too.
    """
    page.evaluate("""() => {
        const probe = document.createElement('div');
        probe.id = 'chatui-test-probe';
        probe.innerHTML = '<img src="x" onerror="window.__probe_img = 1">'
            + '<details ontoggle="window.__probe_toggle = 1"><summary>p</summary></details>'
            + '<a href="javascript:window.__probe_link = 1">probe</a>';
        document.body.append(probe);
        probe.querySelector('details').open = true;
        probe.querySelector('a').click();
    }""")
    page.wait_for_function(
        "window.__probe_img === 1 && window.__probe_toggle === 1 && window.__probe_link === 1",
        timeout=WAIT_MS)
    page.evaluate("document.getElementById('chatui-test-probe').remove()")


def forged_open(forger: Forger, chat_id: str) -> str:
    """The notice the sidebar's open event shows for ``chat_id``, sent over raw HTTP."""
    opening = forger.event("chatui-conversations", "click", "open")
    done = forger.send(opening, {"id": chat_id})
    assert done["success"], done
    chat = forger.output_of(opening, "chatui-chat", done["output"]["data"])
    assert not chat  # nothing of the chat is shown
    return str(forger.output_of(opening, "chatui-notice", done["output"]["data"]))


def sees_only(page: Page, mine: str, theirs: str) -> None:
    expect(listed(page)).to_have_count(1, timeout=WAIT_MS)
    expect(listed(page)).to_contain_text([mine])
    expect(page.locator("#chatui-conversations")).not_to_contain_text(theirs)


# ----- who sees what -------------------------------------------------------------------


def test_logged_in_users_each_see_only_their_own_chats(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path, auth=tuple(USERS.items()),
                 api_tokens=tuple(TOKENS.items())) as (url, runtime):
        alice, bob = visit(browser, url, "alice"), visit(browser, url, "bob")
        ask(alice, ALICE)
        ask(bob, BOB)
        sees_only(alice, "harbour lighthouse", "mountain")
        sees_only(bob, "mountain cabin", "harbour")

        # Searching for the other's words finds nothing; for one's own, one's own chat.
        search = alice.get_by_placeholder("Search titles and messages")
        search.fill("mountain cabin")
        expect(listed(alice)).to_have_count(0)
        search.fill("lighthouse")
        expect(listed(alice)).to_have_count(1)

        # After a reload, and in a second browser, a user finds their own chat again.
        bob.reload()
        expect(bob.locator('#chatui-chat [data-testid="user"]').first).to_contain_text(
            BOB, timeout=WAIT_MS)
        sees_only(bob, "mountain cabin", "harbour")
        sees_only(visit(browser, url, "alice"), "harbour lighthouse", "mountain")

        # Someone who has the id of another's chat still cannot open it:
        (alices,) = runtime.service.conversations("alice")
        (bobs,) = runtime.service.conversations("bob")
        # ... through the UI's handlers (what every UI event calls),
        screen = handlers.open_conversation(runtime.service, "bob", View(), alices.id)
        assert screen.notice == "There is no such conversation." and screen.chat == ()
        assert screen.conversations and screen.conversations.pairs() == ((bobs.title, bobs.id),)
        # ... through the UI's own endpoints, as bob,
        with Forger(url, login=("bob", USERS["bob"])) as as_bob:
            assert "There is no such conversation" in forged_open(as_bob, alices.id)
        # ... or through the REST API with bob's token.
        headers = {"Authorization": f"Bearer {TOKENS['bob']}"}
        response = httpx.get(f"{url}/api/v1/chats/{alices.id}/history", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
        listing = httpx.get(f"{url}/api/v1/chats", headers=headers).json()
        assert [chat["id"] for chat in listing] == [bobs.id]


def test_anonymous_browsers_each_keep_their_own_chats(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path, anonymous_users=True) as (url, runtime):
        first, second = visit(browser, url), visit(browser, url)
        ask(first, ALICE)
        ask(second, BOB)
        sees_only(first, "harbour lighthouse", "mountain")
        sees_only(second, "mountain cabin", "harbour")
        owners = {summary.owner for summary in runtime.service.store.list()}
        assert len(owners) == 2 and all(owner.startswith("anon:") for owner in owners)

        first.reload()  # the cookie keeps the visitor: their chat is back
        expect(first.locator('#chatui-chat [data-testid="user"]').first).to_contain_text(
            ALICE, timeout=WAIT_MS)
        sees_only(first, "harbour lighthouse", "mountain")

        newcomer = visit(browser, url)  # a new browser starts empty: after one question,
        ask(newcomer, "A newcomer's question")  # it lists its own chat only
        sees_only(newcomer, "newcomer", "harbour")

        # Forging a cookie that names the first visitor gets a new, empty identity.
        (cookie,) = [c for c in first.context.cookies() if c["name"] == COOKIE]
        assert cookie["httpOnly"]
        visitor_id = cookie["value"].partition(".")[0]
        forger = browser.new_context()
        forger.add_cookies([{"name": COOKIE, "value": f"{visitor_id}.{'0' * 32}", "url": url}])
        page = forger.new_page()
        page.goto(url)
        loaded(page)
        ask(page, "A forger's question")
        sees_only(page, "forger", "harbour")
        assert len({s.owner for s in runtime.service.store.list()}) == 4

        # The second visitor, knowing the first one's chat id, cannot open it.
        (firsts,) = [s for s in runtime.service.store.list() if ALICE[:20] in s.title]
        (seconds_cookie,) = [c for c in second.context.cookies() if c["name"] == COOKIE]
        with Forger(url, headers={"Cookie": f"{COOKIE}={seconds_cookie['value']}"}) as forger:
            assert "There is no such conversation" in forged_open(forger, firsts.id)
        seconds_owner = next(iter(owners - {firsts.owner}))
        screen = handlers.open_conversation(runtime.service, seconds_owner, View(), firsts.id)
        unknown = handlers.open_conversation(runtime.service, seconds_owner, View(), "x" * 32)
        assert screen.notice == unknown.notice == "There is no such conversation."
        assert screen.chat == ()


def test_a_single_local_user_needs_no_login_and_shares_chats_with_the_api(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path) as (url, runtime):
        made = httpx.post(f"{url}/api/v1/chats/new", json={"title": "Made through the API"})
        page = visit(browser, url)  # no login page
        expect(listed(page)).to_contain_text(["Made through the API"], timeout=WAIT_MS)
        ask(page, ALICE)
        assert {s.owner for s in runtime.service.store.list()} == {"local"}
        assert made.json()["id"] in {s.id for s in runtime.service.conversations("local")}
        assert COOKIE not in {c["name"] for c in page.context.cookies()}


# ----- limits and a full queue ------------------------------------------------------------


def test_a_user_at_the_limit_is_told_so_while_others_are_answered(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path, auth=tuple(USERS.items()),
                 user_concurrency=1) as (url, runtime):
        fake_backend.enqueue(Script.stall(after_chunks=1, seconds=60, text="Once upon a time"))
        first_tab = visit(browser, url, "alice")
        send(first_tab, "Tell me a long story")
        expect(bot_rows(first_tab).last).to_contain_text("Once", timeout=WAIT_MS)
        wait_until(lambda: runtime.service.limits.running("alice") == 1)

        second_tab = first_tab.context.new_page()  # the same user, another tab
        second_tab.goto(url)
        loaded(second_tab)
        expect(listed(second_tab)).to_have_count(1, timeout=WAIT_MS)  # loaded: the held chat
        new_chat(second_tab)
        send(second_tab, "And a poem meanwhile")
        expect(second_tab.locator("#chatui-notice")).to_contain_text(
            "You already have 1 answer being generated", timeout=WAIT_MS)
        expect(second_tab.get_by_text("You already have 1 answer being generated").first
               ).to_be_visible()
        expect(second_tab.locator("#chatui-message textarea")).to_have_value(
            "And a poem meanwhile")  # the text is given back to try again

        bob = visit(browser, url, "bob")  # meanwhile, someone else is served as usual
        ask(bob, BOB)

        first_tab.get_by_role("button", name="Stop", exact=True).click()
        expect(first_tab.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
            "stopped", timeout=WAIT_MS)
        second_tab.get_by_role("button", name="Send", exact=True).click()
        expect(bot_rows(second_tab).last).to_contain_text(DEFAULT_ANSWER, timeout=WAIT_MS)


def test_a_full_queue_tells_the_visitor_to_wait_and_nothing_hangs(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path, concurrency_limit=1, max_queue=1) as (url, _):
        fake_backend.enqueue(Script.stall(after_chunks=1, seconds=60, text="Held answer"))
        running, waiting, late = visit(browser, url), visit(browser, url), visit(browser, url)

        def queued() -> int:
            return int(httpx.get(f"{url}/gradio_api/queue/status").json()["queue_size"])

        send(running, "first")
        expect(bot_rows(running).last).to_contain_text("Held", timeout=WAIT_MS)
        new_chat(waiting)
        send(waiting, "second")  # the one answer slot is taken: this one waits
        wait_until(lambda: queued() == 1)

        send(late, "third")  # the queue is full: told to wait, not left hanging
        expect(late.get_by_text("This application is currently busy. Please try again.").first
               ).to_be_visible(timeout=WAIT_MS)
        expect(late.locator("#chatui-message textarea")).to_have_value("third")
        assert queued() == 1

        # Stop still works with a full queue; then the waiting answer runs, and more can come.
        running.get_by_role("button", name="Stop", exact=True).click()
        expect(running.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
            "stopped", timeout=WAIT_MS)
        expect(bot_rows(waiting).last).to_contain_text(DEFAULT_ANSWER, timeout=WAIT_MS)
        wait_until(lambda: queued() == 0)
        late.reload()
        loaded(late)
        new_chat(late)
        ask(late, "third, again")


# ----- hostile content ------------------------------------------------------------------

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    "[a javascript link](javascript:window.__xss=3)",
    '<a href="javascript:window.__xss=4">an html link</a>',
    '<svg onload="window.__xss=5"></svg>',
    '<details open ontoggle="window.__xss=6">details</details>',
    '<iframe srcdoc="<script>parent.__xss=7</script>"></iframe>',
    ('<button class="chatui-act chatui-do-regen chatui-id-x" onclick="document.title=8">'
     "fake button</button>"),
    '$$<img src=x onerror="window.__xss=9">$$',
    "\\<img src=x onerror=\"window.__xss=10\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=11>",
]
HOSTILE = "Harbour safety rules. " + " ".join(PAYLOADS)


def test_hostile_answers_and_documents_are_shown_as_text_and_run_nothing(
    browser: Browser, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with serving(fake_backend, tmp_path) as (url, runtime):
        document = tmp_path / "spool" / "upload" / "rules.txt"  # as Gradio's upload route left it
        document.parent.mkdir(parents=True)
        document.write_text(HOSTILE + "\n\nThe harbour safety rules say: wear a life vest.")
        uploads = DocumentUploads(runtime.library, runtime.service.limits,
                                  upload_folder=tmp_path / "spool")
        uploads.receive("local", [document])
        uploads.add(document, '<img src=x onerror="window.__xss=12">.txt', "local")
        httpx.post(f"{url}/api/v1/chats/new", json={"title": "Rules", "rag_enabled": True})
        fake_backend.enqueue(Script.text_answer(HOSTILE, tokens_per_chunk=3))

        page = visit(browser, url)
        page.on("dialog", lambda dialog: dialog.dismiss())
        expect(page.locator("#chatui-title input, #chatui-title textarea")).to_have_value("Rules")
        title = page.title()
        ask(page, "What are the harbour safety rules?", answer="Harbour safety rules.")
        answer = bot_rows(page).last
        sources = bot_rows(page).filter(has_text="Sources")
        expect(sources).to_have_count(1)
        sources.get_by_text("Sources").click()  # open the collapsed block
        expect(sources).to_contain_text("The harbour safety rules say")

        # Tags are shown as the characters they are made of ...
        for row in (answer, sources):
            for shown in ('<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>",
                          '<svg onload="window.__xss=5">', "fake button</button>"):
                expect(row).to_contain_text(shown)
        expect(sources).to_contain_text('<img src=x onerror="window.__xss=12">.txt')
        chat = page.locator("#chatui-chat")
        # (the bars' own "Details" folds are the app's, drawn as text nodes: not counted)
        assert chat.locator("img, script, iframe, svg[onload], details:not(.chatui-bar details), "
                            "math").count() == 0
        assert chat.locator("button", has_text="fake button").count() == 0

        # ... and nothing runs, whatever the visitor clicks or hovers.
        for link in chat.locator(".message-content a").all():
            # Chromium ignores a javascript: href on an Alt-click: look at the href itself.
            assert link.evaluate("a => a.protocol") != "javascript:"
            link.click(modifiers=["Alt"], timeout=WAIT_MS)  # Alt: not into a new tab
        for row in (answer, sources):
            row.hover()
        settled(page)
        assert page.evaluate("window.__xss") is None
        assert page.title() == title
        expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
            "Regenerate")  # the app's own controls under the answer still work
