"""The branch map in a real browser: a 3-level tree (regenerations and an edit, built over
REST on the fake backend), opened, jumped through, two answers compared, a branch pruned
(asked first) and a path forked. A hostile answer and model name show as text.
Screenshots: tests/artifacts/branchmap-desktop.png, -compare.png, -mobile.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.embedded import free_port
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import DEFAULT_MODEL, FakeBackend, Script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
ARTIFACTS = Path(__file__).parent / "artifacts"
OTHER = "other-model"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend(models=[DEFAULT_MODEL, OTHER]) as fake:
        yield fake


@pytest.fixture
def app(chromium_path: str, backend: FakeBackend, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with (open_test_runtime(backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url, sync_playwright() as playwright,
          httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser, url, http
        finally:
            browser.close()


def post(http: httpx.Client, path: str, body: dict[str, Any], status: int = 200
         ) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def build_tree(http: httpx.Client, backend: FakeBackend) -> str:
    """Question one -> {Answer one A, Answer one B (other model)}; under A: Question two ->
    {Answer two A, Answer two B}, and Question two edited -> the hostile answer (shown)."""
    chat = post(http, "/chats/new", {"title": "Tree"}, 201)["id"]
    backend.enqueue(Script.text_answer("Answer one A"),
                    Script.text_answer("Answer one B", model=OTHER),
                    Script.text_answer("Answer two A"), Script.text_answer("Answer two B"),
                    Script.text_answer(HOSTILE, model=HOSTILE))
    a1 = post(http, f"/chats/{chat}/message", {"content": "Question one"})
    post(http, f"/chats/{chat}/message", {"regenerate_id": a1["id"], "model": OTHER})
    post(http, f"/chats/{chat}/branch", {"message_id": a1["id"]})
    a2 = post(http, f"/chats/{chat}/message", {"content": "Question two"})
    post(http, f"/chats/{chat}/message", {"regenerate_id": a2["id"]})
    post(http, f"/chats/{chat}/message", {"content": "Question two edited",
                                          "parent_id": a1["id"]})
    return chat


def node(page: Any, text: str) -> Any:
    """The map's row whose first words are exactly ``text``."""
    exact = page.locator(".chatui-map-text", has_text=re.compile(f"^{re.escape(text)}$"))
    return page.locator("#chatui-branchmap li.chatui-map-node").filter(has=exact)


def test_jump_compare_prune_and_fork_from_the_map(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    browser, url, http = app
    chat = build_tree(http, backend)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.locator("#chatui-conversations li.chatui-chat").filter(has_text="Tree").locator(
        ".chatui-pick").click()
    messages = page.locator("#chatui-chat")
    expect(messages).to_contain_text("Question two edited", timeout=WAIT_MS)

    page.get_by_text("Branch map", exact=True).click()
    nodes = page.locator("#chatui-branchmap li.chatui-map-node")
    expect(nodes).to_have_count(8, timeout=WAIT_MS)
    expect(page.locator("#chatui-branchmap .chatui-map-head")).to_contain_text(
        "8 messages · 4 branches")
    hostile = node(page, HOSTILE)  # shown as its text, with its model name as text too
    expect(hostile).to_have_class(re.compile("chatui-map-current"))
    expect(hostile.locator(".chatui-map-model")).to_have_text(HOSTILE)
    assert page.locator("#chatui-branchmap img").count() == 0
    assert page.evaluate("window.__pwned") is None
    expect(node(page, "Answer one B")).to_contain_text("2/2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#chatui-branchmap-fold").screenshot(
        path=str(ARTIFACTS / "branchmap-desktop.png"))

    # jump: the chat follows, the map marks the new path
    node(page, "Answer two A").locator("[data-map=jump]").click()
    expect(messages).to_contain_text("Answer two A", timeout=WAIT_MS)
    expect(messages).not_to_contain_text("Question two edited")
    expect(node(page, "Answer two A")).to_have_class(re.compile("chatui-map-active"))
    expect(node(page, "Question two edited")).not_to_have_class(re.compile("chatui-map-active"))

    # compare two answers to Question one
    compare = page.locator("#chatui-branchmap [data-map=compare]")
    expect(compare).to_be_disabled()
    node(page, "Answer two A").locator("[data-map=pick]").check()
    node(page, "Answer one A").locator("[data-map=pick]").check()
    expect(compare).to_be_enabled()
    node(page, "Answer one B").locator("[data-map=pick]").check()  # a third: the first goes
    expect(node(page, "Answer two A").locator("[data-map=pick]")).not_to_be_checked()
    expect(node(page, "Answer one A").locator("[data-map=pick]")).to_be_checked()
    compare.click()
    sides = page.locator("#chatui-compare .chatui-compare-side")
    expect(sides).to_have_count(2, timeout=WAIT_MS)
    expect(sides.nth(0)).to_contain_text(f"answer 1/2 · {DEFAULT_MODEL}")
    expect(sides.nth(0)).to_contain_text("Answer one A")
    expect(sides.nth(1)).to_contain_text(f"answer 2/2 · {OTHER}")
    expect(sides.nth(1)).to_contain_text("Answer one B")
    expect(sides.nth(1).locator(".chatui-compare-facts")).to_contain_text("tok")
    expect(page.locator("#chatui-compare")).to_contain_text("Question one")
    page.locator("#chatui-compare").screenshot(path=str(ARTIFACTS / "branchmap-compare.png"))

    # prune Question two and its two answers: asked first; nothing else touched
    before = {m["id"]: m for m in http.get(f"/chats/{chat}/history",
                                             params={"tree": "true"}).json()["messages"]}
    node(page, "Question two").locator("[data-map=prune]").click()
    ask = page.locator("#chatui-branchmap .chatui-map-confirm")
    expect(ask).to_contain_text("Delete these 3 messages?")
    ask.get_by_text("Cancel").click()
    expect(ask).to_have_count(0)
    expect(nodes).to_have_count(8)
    node(page, "Question two").locator("[data-map=prune]").click()
    ask.get_by_text("Yes, delete").click()
    expect(nodes).to_have_count(5, timeout=WAIT_MS)
    expect(messages).to_contain_text("Question two edited", timeout=WAIT_MS)  # the sibling
    after = http.get(f"/chats/{chat}/history", params={"tree": "true"}).json()["messages"]
    gone = {i for i, m in before.items() if m["content"] in
            ("Question two", "Answer two A", "Answer two B")}
    assert len(gone) == 3 and after == [m for i, m in before.items() if i not in gone]

    # fork at Answer one B: a new chat with that path, opened; the source stays
    node(page, "Answer one B").locator("[data-map=fork]").click()
    expect(page.locator("#chatui-title input, #chatui-title textarea")).to_have_value(
        "Tree (fork)", timeout=WAIT_MS)
    expect(messages).to_contain_text("Answer one B", timeout=WAIT_MS)
    expect(messages).not_to_contain_text("Answer one A")
    expect(nodes).to_have_count(2, timeout=WAIT_MS)
    chats = {c["title"]: c["id"] for c in http.get("/chats").json()}
    assert set(chats) == {"Tree", "Tree (fork)"}
    forked = http.get(f"/chats/{chats['Tree (fork)']}/history").json()["messages"]
    assert [m["content"] for m in forked] == ["Question one", "Answer one B"]
    assert http.get(f"/chats/{chat}/history", params={"tree": "true"}).json()[
        "messages"] == after

    # with the map open, a message sent in the chat shows on the map once answered
    backend.enqueue(Script.text_answer("Answer three"))
    page.locator("#chatui-message textarea").click()
    page.keyboard.type("Question three")
    page.keyboard.press("Enter")
    expect(nodes).to_have_count(4, timeout=WAIT_MS)
    expect(node(page, "Answer three")).to_have_class(re.compile("chatui-map-current"))
    page.close()


def test_mobile_screenshot(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    browser, url, http = app
    build_tree(http, backend)
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                            has_touch=True)
    page.goto(url)
    expect(page.locator("#chatui-conversations li.chatui-chat")).to_have_count(1, timeout=WAIT_MS)
    page.evaluate("""() => {  // the chat list is a drawer on a phone: pick the chat in it
        document.querySelector('#chatui-conversations li.chatui-chat .chatui-pick').click(); }""")
    expect(page.locator("#chatui-chat")).to_contain_text("Question two edited", timeout=WAIT_MS)
    page.get_by_text("Branch map", exact=True).click()
    expect(page.locator("#chatui-branchmap li.chatui-map-node")).to_have_count(
        8, timeout=WAIT_MS)
    page.locator("#chatui-branchmap-fold").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "branchmap-mobile.png"))
    page.close()


def seeded(runtime: Any, owner: str, title: str) -> tuple[str, list[str]]:
    """A stored chat of ``owner``: a question with two answers; (chat id, message ids)."""
    from chatui import tree

    chat = tree.new_conversation(title, owner=owner)
    question = tree.make_message("user", f"{title}: the question", None)
    first = tree.make_message("assistant", "one", question.id, model=DEFAULT_MODEL)
    second = tree.make_message("assistant", "two", question.id, model=DEFAULT_MODEL)
    for message in (question, first, second):
        chat = tree.add_message(chat, message)
    runtime.service.store.save(chat)
    return chat.id, [question.id, first.id, second.id]


def test_forged_map_clicks_reach_only_the_senders_chat(backend: FakeBackend,
                                                      tmp_path: Path) -> None:
    """Raw Gradio queue events on the map's bridge, as Bob (logged in) can send them."""
    from tests.gradioevents import Forger

    users = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
    with (open_test_runtime(backend.base_url, tmp_path / "data",
                            auth=tuple(users.items())) as runtime,
          serve_app(runtime, free_port()) as url):
        alices, alice_ids = seeded(runtime, "alice", "Alice's plans")
        bobs, bob_ids = seeded(runtime, "bob", "Bob's notes")
        with Forger(url, login=("bob", users["bob"])) as bob:
            done = bob.send(bob.event("chatui-conversations", "click", "open"), {"id": bobs})
            assert done["success"], done
            clicking = bob.event("chatui-map-bridge", "click")

            def click(value: Any) -> tuple[str, str]:
                done = bob.send(clicking, None, [None, value])
                assert done["success"], done
                data = done["output"]["data"]
                return (str(bob.output_of(clicking, "chatui-notice", data)),
                        str(bob.output_of(clicking, "chatui-branchmap", data)))

            for act in ("prune", "fork", "jump"):  # Alice's message, from Bob's chat
                notice, _ = click(f"{act} {alice_ids[0]} 1")
                assert "no message" in notice, (act, notice)
            click(f"compare {alice_ids[1]},{alice_ids[2]} 1")
            for value in (f"prune ../{bob_ids[1]} 1", f"prune {bob_ids[1]}", "explode x 1",
                          f"compare {bob_ids[1]} 1", ["prune", bob_ids[1]], None, 7,
                          "prune " + "a" * 100_000 + " 1"):
                click(value)
            assert len(runtime.service.conversation(bobs, "bob").messages) == 3
            _, drawn = click(f"prune {bob_ids[2]} 2")  # his own: it goes
            assert drawn.count("chatui-map-node") == 2
        assert len(runtime.service.conversation(bobs, "bob").messages) == 2
        assert len(runtime.service.conversation(alices, "alice").messages) == 3
        assert [c.title for c in runtime.service.conversations("bob")] == ["Bob's notes"]
        assert [c.title for c in runtime.service.conversations("alice")] == ["Alice's plans"]
