"""The page catches up with an answer in one step (``ui.coalesce``).

In a real browser: while the page's main thread is held busy, the answer's frames
pile up; once free, the page shows the newest text at once instead of stepping
through every frame it missed (Gradio alone rendered each of them, one task apiece).
Every text shown is a prefix of the answer, and the answer is whole at the end:
merged frames apply the same edits. Then the merging itself, on Gradio's message
shapes, with what it must leave alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from chatui.ui.coalesce import COALESCE_JS
from tests.apiharness import open_test_runtime
from tests.conftest import serve_app
from tests.fakebackend import FakeBackend, Script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
WORDS = " ".join(f"w{number}" for number in range(300))
BUSY_MS = 1500

WATCH = """() => {
  const chat = document.querySelector('#chatui-chat');
  window.__texts = [];
  const last = () => { const bots = chat.querySelectorAll('[data-testid="bot"]');
                       return bots.length ? bots[bots.length - 1].innerText : ''; };
  new MutationObserver(() => window.__texts.push([performance.now(), last()]))
    .observe(chat, { subtree: true, childList: true, characterData: true });
}"""
BUSY = f"""() => {{
  const start = performance.now();
  while (performance.now() - start < {BUSY_MS}) {{}}
  window.__free = performance.now();
}}"""


def test_a_page_that_was_busy_shows_the_newest_text_in_one_step(
        browser: Any, fake_backend: FakeBackend, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    fake_backend.enqueue(Script.text_answer(WORDS, delay=0.01))  # 300 words in 3 s
    with (open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        box = page.locator("#chatui-message textarea")
        expect(box).to_be_visible(timeout=WAIT_MS)
        box.click()
        page.keyboard.type("Count for me")
        page.evaluate(WATCH)
        page.keyboard.press("Enter")
        bot = page.locator('#chatui-chat [data-testid="bot"]').last
        expect(bot).to_contain_text("w5 ", timeout=WAIT_MS)
        page.evaluate(BUSY)  # frames arrive meanwhile; none is rendered
        expect(bot).to_contain_text("w299", timeout=WAIT_MS)
        texts = page.evaluate("() => window.__texts")
        free = page.evaluate("() => window.__free")

    shown = [(at, _words(text)) for at, text in texts if _words(text)]
    for _, words in shown:  # never anything but the answer so far, in order
        assert words == list(range(len(words))), words
    assert len(shown[-1][1]) == 300  # whole at the end
    busy = max(at for at, _ in shown if at < free - BUSY_MS + 50)
    before = len(next(words for at, words in shown if at == busy))
    # The page was busy 1.5 s while about 150 words came. Gradio alone steps through
    # every frame it missed (one render each, 20 a second); merged, it shows the newest
    # text at once: at most a few renders until it is 100 words further on.
    caught_up = [len(words) for at, words in shown if at >= free]
    steps = next(index for index, count in enumerate(caught_up) if count >= before + 100)
    assert len(set(caught_up[:steps + 1])) <= 3, caught_up[:steps + 1]


def _words(text: str) -> list[int]:
    return [int(number) for number in re.findall(r"\bw(\d+)\b", text)]


# ----- the merging, on Gradio's message shapes ------------------------------------------


def _message(msg: str, event: str, data: list[Any] | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"msg": msg, "event_id": event, **extra}
    if data is not None:
        body.update(success=True, output={"data": data, "is_generating": True})
    return "data: " + json.dumps(body) + "\n\n"


def _apply(value: Any, edits: list[list[Any]]) -> Any:
    """Gradio's page applying a frame's edits (its ``apply_diff``), for strings and lists."""
    for action, path, item in edits:
        if not path:
            value = item if action == "replace" else value + item
            continue
        target = value
        for key in path[:-1]:
            target = target[key]
        if action == "replace":
            target[path[-1]] = item
        elif action == "append":
            target[path[-1]] += item
        elif action == "add":
            target.insert(path[-1], item)
        elif action == "delete":
            del target[path[-1]]
    return value


def _shown(stream: str) -> dict[str, list[Any]]:
    """Each event's outputs after applying the stream's frames in order."""
    values: dict[str, list[Any]] = {}
    for block in filter(None, stream.split("\n\n")):
        message = json.loads(block.removeprefix("data: "))
        if message["msg"] != "process_generating":
            continue
        data, event = message["output"]["data"], message["event_id"]
        if event not in values:
            values[event] = json.loads(json.dumps(data))
        else:
            values[event] = [_apply(old, edits) for old, edits in zip(values[event], data,
                                                                        strict=True)]
    return values


@pytest.fixture
def coalesce(browser: Any) -> Any:
    page = browser.new_page()
    page.evaluate(COALESCE_JS)
    return lambda text: page.evaluate("(text) => window.__chatuiCoalesce.coalesce(text)", text)


def test_frames_of_one_event_merge_and_show_the_same(coalesce: Any) -> None:
    first = _message("process_generating", "a", [[["user", "Hi"]], "", "Stop"])
    frames = [_message("process_generating", "a",
                       [[["append", [0, 1], " more"]], [["append", [], "x"]], []])
              for _ in range(5)]
    grow = _message("process_generating", "a", [[["add", [1], ["assistant", ""]]], [], []])
    stream = _message("estimation", "a") + first + frames[0] + grow + "".join(frames[1:])
    out = coalesce(stream)
    blocks = list(filter(None, out.split("\n\n")))
    kinds = [json.loads(b.removeprefix("data: "))["msg"] for b in blocks]
    assert kinds == ["estimation", "process_generating", "process_generating"]  # first alone
    assert blocks[1] + "\n\n" == first
    assert _shown(out) == _shown(stream)
    assert _shown(out)["a"][1] == "xxxxx"


def test_what_is_not_a_plain_frame_goes_through_untouched(coalesce: Any) -> None:
    frame = _message("process_generating", "a", [[["append", [], "x"]]])
    other = _message("process_generating", "b", [[["append", [], "y"]]])
    completed = "data: " + json.dumps({"msg": "process_completed", "event_id": "a",
                                       "success": True, "output": {"data": ["whole"]}}) + "\n\n"
    failed = "data: " + json.dumps({"msg": "process_generating", "event_id": "a",
                                    "success": False, "output": {"error": "no"}}) + "\n\n"
    broken = "data: {not json\n\n"
    # a, b interleaved: nothing consecutive to merge; an event's first frames pass whole
    stream = frame + other + frame + other + frame + failed + frame + broken + frame + completed
    out = coalesce(stream)
    assert out == stream  # nothing merged here
    # after the first frames, two consecutive frames of a merge; the others stay as sent
    later = frame + frame + other + completed
    out = coalesce(frame + other + later)
    assert out.count('"process_generating"') == 4
    assert out.endswith(completed)
