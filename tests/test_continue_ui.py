"""Continue in a real browser on the real embedded model (the app starts its own SmolLM2).

The first answer is cut by its token limit in the middle of a list; pressing the
answer's Continue control must extend that same list, in the same bubble, in order
(before issue 13 the embedded server closed the answer and the model began again
with "1, 2, ..."). Screenshot: tests/artifacts/continue-desktop.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatui import tree
from chatui.config import Config
from chatui.embedded import free_port
from chatui.runtime import open_runtime
from chatui.tree import Settings
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def _counts_up(text: str) -> bool:
    """1, 2, 3, ... in order; the last may be cut by the token limit ("1" of "11")."""
    numbers = _numbers(text)
    if not numbers or numbers[:-1] != list(range(1, len(numbers))):
        return False
    return str(len(numbers)).startswith(str(numbers[-1]))


def test_continue_goes_on_with_the_same_list(chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    config = Config(data_dir=tmp_path / "data", context=2048,
                    defaults=Settings(temperature=0.0, seed=1, max_tokens=16))
    with (open_runtime(config) as runtime, serve_app(runtime, free_port()) as url,
          sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            # The question and its cut answer (16 tokens) as the service stores them...
            chat = runtime.service.create("local")
            first = runtime.service.start_send(
                chat.id, "List the numbers 1 to 50 separated by commas.", owner="local").result
            assert first is not None and first.message.status == "complete"
            cut = first.message.content
            assert len(_numbers(cut)) > 2
            assert _counts_up(cut)
            # ... then opened in the page, where Continue is pressed.
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#chatui-backend-status")).to_contain_text(
                "running", timeout=WAIT_MS)  # the page's load and what follows it are done
            page.locator("#chatui-conversations").get_by_text("List the numbers").first.click()
            expect(page.locator("#chatui-title textarea, #chatui-title input").first).to_have_value(
                re.compile("List the numbers"), timeout=WAIT_MS)
            answer = page.locator('#chatui-chat [data-testid="bot"]').last
            bar = page.locator("#chatui-chat .chatui-bar-bot").last
            expect(answer).to_have_text(cut, timeout=WAIT_MS)
            expect(page.locator("#chatui-gauge")).to_contain_text("Context:", timeout=WAIT_MS)
            expect(bar.locator("[data-act=cont]")).to_be_enabled(timeout=WAIT_MS)
            bar.locator("[data-act=cont]").click()
            expect(answer).not_to_have_text(cut, timeout=WAIT_MS)
            wait_until(lambda: not runtime.service.is_generating(chat.id, "local"),
                       message="the continuation did not end")
            stored = tree.active_path(runtime.service.conversation(chat.id, "local"))[-1]
            expect(answer).to_have_text(stored.content, timeout=WAIT_MS)
            whole = answer.inner_text()
            assert stored.content.startswith(cut)
            numbers = _numbers(whole)
            assert len(numbers) > len(_numbers(cut))
            assert _counts_up(whole), whole  # one list, not "1, 2, 3" begun again
            assert len(page.locator('#chatui-chat [data-testid="bot"]').all()) == 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "continue-desktop.png"))
        finally:
            browser.close()
