"""The controls under each message, in a real browser: every one is clicked.

Copy puts the message's own Markdown on the clipboard (read back through
``navigator.clipboard``), and neither it, the whole chat's copy nor the
message's accessible name carries the footer; Regenerate takes a model from
its picker; the branch arrows, Continue, Edit and Delete (which asks first)
work; the header's model picker applies to the next answer; two failed
questions stay two bubbles and the error is told once, in words, its detail
folded; a hostile model name is shown as text. Screenshots: desktop and mobile
(tests/artifacts/actions-*.png).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from chatui.ui.render import BAR, split_bars
from tests.apiharness import open_test_runtime
from tests.conftest import CHROMIUM_ARGS, serve_app
from tests.fakebackend import DEFAULT_MODEL, FakeBackend, Script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
ARTIFACTS = Path(__file__).parent / "artifacts"
OTHER_MODEL = "other-model"
ANSWER = "Answer **one**:\n\n```python\nx = 1\n```"


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend(models=[DEFAULT_MODEL, OTHER_MODEL]) as fake:
        yield fake


@pytest.fixture
def app(chromium_path: str, backend: FakeBackend, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with (open_test_runtime(backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url, sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser, url, runtime
        finally:
            browser.close()


def open_page(app: Any, width: int = 1280, height: int = 900) -> Any:
    from playwright.sync_api import expect

    browser, url, _ = app
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#chatui-backend-status")).to_contain_text("answers", timeout=WAIT_MS)
    return page


def send(page: Any, text: str) -> None:
    page.locator("#chatui-message textarea").click()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def bar(page: Any, role: str) -> Any:
    """The bar under the last message of ``role`` ("user" or "bot")."""
    return page.locator(f"#chatui-chat .chatui-bar-{role}").last


def answered(page: Any) -> Any:
    """The last answer's bar once the answer has ended."""
    from playwright.sync_api import expect

    last = bar(page, "bot")
    expect(last).to_contain_text("TTFT", timeout=WAIT_MS)
    expect(last.locator("[data-act=regen]")).to_be_enabled(timeout=WAIT_MS)
    return last


def clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_copy_and_the_accessible_name_hold_the_message_only(app: Any, backend: FakeBackend
                                                            ) -> None:
    from playwright.sync_api import expect

    backend.enqueue(Script.text_answer(ANSWER))
    page = open_page(app)
    send(page, "Show *me* code")
    last = answered(page)
    copy = last.locator("[data-act=copy]")
    expect(copy).to_have_attribute("aria-label", "Copy")
    expect(copy).to_have_attribute("title", "Copy this message as Markdown")
    box = copy.bounding_box()
    assert box["width"] >= 24 and box["height"] >= 24
    copy.click()
    expect(copy).to_contain_text("Copied")
    assert clipboard(page) == ANSWER
    bar(page, "user").locator("[data-act=copy]").click()
    assert clipboard(page) == "Show *me* code"
    # One copy control per message: Gradio's own per-message copy is off.
    answer_row = page.locator('#chatui-chat [data-testid="bot"]').last
    group = page.locator("#chatui-chat .bot-row").last
    expect(group.get_by_role("button", name="Copy message")).to_have_count(0)
    expect(group.locator("[data-act=copy]")).to_have_count(1)
    assert group.locator("button.copy_code_button").count() == 1  # Gradio draws one, hidden
    for code_copy in group.locator("button.copy_code_button").all():
        expect(code_copy).to_be_hidden()
    # Neither the accessible name nor the whole chat's copy carries the footer.
    name = answer_row.get_attribute("aria-label")
    assert name == f"bot's message: {ANSWER}"
    page.get_by_role("button", name="Copy conversation").click()
    whole = clipboard(page)
    assert "Show *me* code" in whole and ANSWER in whole
    for footer in ("tok/s", "tokens", DEFAULT_MODEL, "Regenerate", "chatui"):
        assert footer not in whole and footer not in name
    expect(last).to_contain_text(DEFAULT_MODEL)  # the footer is still shown, beside
    details = last.locator("details.chatui-made")
    details.locator("summary").click()
    expect(details).to_contain_text("Model asked for")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "actions-desktop.png"))


def test_regenerate_with_another_model_then_step_between_the_versions(
        app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    backend.enqueue(Script.text_answer("First answer."),
                    Script.text_answer("Second answer.", model=OTHER_MODEL))
    page = open_page(app)
    send(page, "Hello")
    last = answered(page)
    picker = last.locator("select.chatui-model")
    expect(picker.locator("option")).to_have_count(3)  # the chat's model, then each model
    picker.select_option(OTHER_MODEL)
    last.locator("[data-act=regen]").click()
    expect(bar(page, "bot")).to_contain_text("2/2", timeout=WAIT_MS)
    answered(page)
    assert backend.requests[-1]["model"] == OTHER_MODEL
    answer = page.locator('#chatui-chat [data-testid="bot"]').last
    expect(answer).to_have_text("Second answer.")
    bar(page, "bot").get_by_role("button", name="Previous version").click()
    expect(bar(page, "bot")).to_contain_text("1/2", timeout=WAIT_MS)
    expect(answer).to_have_text("First answer.")
    expect(bar(page, "bot").get_by_role("button", name="Previous version")).to_be_disabled()
    bar(page, "bot").get_by_role("button", name="Next version").click()
    expect(answer).to_have_text("Second answer.", timeout=WAIT_MS)
    # Retry with the same settings (in Details): as the shown answer was made.
    backend.enqueue(Script.text_answer("Third answer.", model=OTHER_MODEL))
    bar(page, "bot").locator("details.chatui-made summary").click()
    bar(page, "bot").get_by_role("button", name="Retry with the same settings").click()
    expect(bar(page, "bot")).to_contain_text("3/3", timeout=WAIT_MS)
    expect(answer).to_have_text("Third answer.", timeout=WAIT_MS)
    assert backend.requests[-1]["model"] == OTHER_MODEL


def test_continue_edit_and_delete_with_confirmation(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    backend.enqueue(Script.text_answer("The start"), Script.text_answer(" and the rest."),
                    Script.text_answer("About dogs."))
    page = open_page(app)
    send(page, "Tell me about cats")
    answered(page).locator("[data-act=cont]").click()
    answer = page.locator('#chatui-chat [data-testid="bot"]').last
    expect(answer).to_have_text("The start and the rest.", timeout=WAIT_MS)
    answered(page)

    bar(page, "user").locator("[data-act=edit]").click()
    edit_box = page.locator("textarea.edit-textarea")
    expect(edit_box).to_be_focused()
    expect(edit_box).to_have_value("Tell me about cats")  # the text only, no footer
    edit_box.fill("Tell me about dogs")
    page.get_by_role("button", name="Submit").click()
    expect(bar(page, "user")).to_contain_text("2/2", timeout=WAIT_MS)
    expect(answer).to_have_text("About dogs.", timeout=WAIT_MS)
    answered(page)

    # Delete asks first; Cancel keeps everything.
    answered(page).locator("[data-act=delete]").click()
    expect(bar(page, "bot")).to_contain_text("Delete this message and its branch?")
    bar(page, "bot").get_by_role("button", name="Cancel").click()
    expect(bar(page, "bot").locator(".chatui-confirm")).to_have_count(0)
    expect(answer).to_have_text("About dogs.")
    # Deleting the edited question takes its answer along; the first version stays.
    bar(page, "user").locator("[data-act=delete]").click()
    bar(page, "user").get_by_role("button", name="Yes, delete").click()
    expect(page.locator('#chatui-chat [data-testid="user"]')).to_have_text(
        "Tell me about cats", timeout=WAIT_MS)
    expect(answer).to_have_text("The start and the rest.")
    _, _, runtime = app
    [chat] = runtime.service.conversations("local")
    stored = runtime.service.conversation(chat.id, "local")
    assert sorted(m.content for m in stored.messages.values()) == [
        "Tell me about cats", "The start and the rest."]


def test_the_header_model_applies_to_the_next_answer(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    page = open_page(app)
    picker = page.locator("#chatui-model-picker input")
    expect(picker).to_have_value(DEFAULT_MODEL, timeout=WAIT_MS)  # before the first answer
    picker.click()
    page.get_by_role("option", name=OTHER_MODEL).click()
    expect(picker).to_have_value(OTHER_MODEL)
    send(page, "Which model?")
    answered(page)
    assert backend.requests[-1]["model"] == OTHER_MODEL
    send(page, "And now?")
    expect(page.locator('#chatui-chat [data-testid="user"]')).to_have_count(2, timeout=WAIT_MS)
    answered(page)
    assert backend.requests[-1]["model"] == OTHER_MODEL  # saved with the chat


def test_failed_questions_stay_apart_and_the_error_is_told_once(app: Any, backend: FakeBackend
                                                                ) -> None:
    from playwright.sync_api import expect

    refusal = {"error": {"message": "the model crashed at http://10.0.0.9:8080/v1"}}
    backend.enqueue(Script.error(500, refusal), Script.error(500, refusal))
    page = open_page(app)
    notice = page.locator("#chatui-notice")
    send(page, "First try")
    expect(notice).to_contain_text("refused the request (HTTP 500)", timeout=WAIT_MS)
    send(page, "Second try")
    expect(page.locator('#chatui-chat [data-testid="user"]')).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#chatui-chat .user-row")).to_have_count(2)  # two bubbles, not one
    expect(page.locator("#chatui-chat .chatui-bar-bot")).to_have_count(2)
    expect(bar(page, "bot")).to_contain_text("No answer.")
    # Once: the notice, in words; the raw detail folded; no toast.
    expect(notice).to_contain_text("Try again")
    detail = notice.locator("details")
    expect(detail).to_have_count(1)
    expect(detail.locator("code")).to_be_hidden()
    detail.locator("summary").click()
    expect(detail.locator("code")).to_contain_text("http://10.0.0.9:8080/v1")
    expect(page.locator(".toast-body")).to_have_count(0)
    backend.enqueue(Script.text_answer("Better now."))
    bar(page, "bot").locator("[data-act=answer]").click()
    expect(page.locator('#chatui-chat [data-testid="bot"]').last).to_have_text(
        "Better now.", timeout=WAIT_MS)


def test_a_hostile_model_name_is_shown_as_text(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    hostile = "<img src=x onerror=\"document.title='owned'\">"
    backend.enqueue(Script.text_answer("Fine.", model=hostile))
    page = open_page(app)
    title = page.title()
    send(page, "Hi")
    last = answered(page)
    expect(last).to_contain_text(hostile)
    assert page.locator("#chatui-chat img").count() == 0
    assert page.title() == title


def test_mobile_bars_are_thumb_sized(app: Any, backend: FakeBackend) -> None:
    from playwright.sync_api import expect

    page = open_page(app, 390, 844)
    send(page, "Hello from a phone")
    last = answered(page)
    for act in ("copy", "regen", "cont", "delete"):
        control = last.locator(f"[data-act={act}]")
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box["width"] >= 24 and box["height"] >= 24, act
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, act
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "actions-mobile.png"))


def test_split_bars_keeps_the_rows_for_the_chatbot() -> None:
    rows = [{"role": "user", "content": {"type": "text", "text": "q"}, BAR: {"id": "a"}},
            {"role": "assistant", "content": {"type": "text", "text": "r"},
             "metadata": {"title": "Reasoning"}}]
    clean, shown = split_bars(rows, busy=True)
    assert clean == [{"role": "user", "content": {"type": "text", "text": "q"}},
                     {"role": "assistant", "content": {"type": "text", "text": "r"},
                      "metadata": {"title": "Reasoning"}}]
    assert json.loads(shown) == {"rows": [{"id": "a"}, None], "busy": True}
    assert BAR in rows[0]  # the argument is not changed
