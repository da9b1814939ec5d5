"""The Documents panel follows the open chat, in a real browser.

Upload to chat A, open chat B: the panel lists B's documents (the library
only), and the chips by the message box go; back to A, a reload: A's again,
without touching anything. Delete asks first, and Cancel keeps the file.
The handler tests (``test_ui_documents.py``) cover what the service checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from chatui.runtime import Runtime
from tests.apiharness import open_test_runtime
from tests.conftest import serve_app
from tests.fakebackend import DEFAULT_ANSWER, FakeBackend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 90_000  # an upload waits for the embedding model on a loaded machine
ARTIFACTS = Path(__file__).parent / "artifacts"
LISTING = "#chatui-document-list"
CHIPS = "#chatui-attachments"


@pytest.fixture
def served(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    with (open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime,
          serve_app(runtime, free_port()) as url):
        yield runtime, url


def loaded(page: Any, url: str | None = None) -> None:
    from playwright.sync_api import expect

    if url is not None:
        page.goto(url)
    expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#chatui-backend-status")).not_to_be_empty(timeout=WAIT_MS)


def ask(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    box.click()
    page.keyboard.type(text)
    expect(box).to_have_value(text)
    page.keyboard.press("Enter")
    expect(page.locator('#chatui-chat [data-testid="bot"]').last).to_contain_text(
        DEFAULT_ANSWER, timeout=WAIT_MS)


def open_documents(page: Any) -> None:
    from playwright.sync_api import expect

    if not page.locator(LISTING).is_visible():
        page.get_by_text("Documents", exact=True).click()
    expect(page.locator(LISTING)).to_be_visible(timeout=WAIT_MS)


def upload(page: Any, path: Path, scope: str) -> None:
    from playwright.sync_api import expect

    page.locator("#chatui-document-scope").get_by_text(scope).click()
    page.locator("#chatui-upload input[type=file]").set_input_files([path])
    expect(page.locator("#chatui-upload-report")).to_contain_text(
        f"✓ {path.name}", timeout=WAIT_MS)


def pick(page: Any, label: str) -> None:
    page.locator("#chatui-document-picked input").click()
    page.get_by_role("option", name=label).click()


def test_the_panel_follows_the_open_chat_and_delete_asks_first(
    served: tuple[Runtime, str], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _runtime, url = served
    llamas = tmp_path / "llamas.md"
    llamas.write_text("# Llamas\n\nLlamas are camelids used as pack animals in the Andes.")
    rockets = tmp_path / "rockets.md"
    rockets.write_text("# Rockets\n\nLiquid-fuel rockets burn kerosene with liquid oxygen.")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    loaded(page, url)
    ask(page, "Chat A about llamas")
    open_documents(page)
    upload(page, llamas, "This chat")
    upload(page, rockets, "My library")
    listing, chips = page.locator(LISTING), page.locator(CHIPS)
    expect(listing).to_contain_text("llamas.md")
    expect(listing).to_contain_text("rockets.md")
    expect(chips).to_contain_text("llamas.md")  # attached to this chat: a chip
    expect(chips).not_to_contain_text("rockets.md")  # the library: no chip
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "documents-chat-a-desktop.png"), full_page=True)

    # Chat B: the library only.
    page.locator("#chatui-new-chat").click()
    expect(listing).not_to_contain_text("llamas.md", timeout=WAIT_MS)
    expect(listing).to_contain_text("rockets.md")
    expect(chips).not_to_contain_text("llamas.md")
    ask(page, "Chat B about rockets")
    expect(listing).not_to_contain_text("llamas.md")

    # Back to A from the sidebar: its attachment again.
    page.locator("#chatui-sidebar").get_by_text("Chat A about llamas").first.click()
    expect(listing).to_contain_text("llamas.md", timeout=WAIT_MS)
    expect(chips).to_contain_text("llamas.md")

    # A reload opens A again and lists it with nothing clicked.
    page.reload()
    loaded(page)
    expect(chips).to_contain_text("llamas.md", timeout=WAIT_MS)
    open_documents(page)
    expect(listing).to_contain_text("llamas.md", timeout=WAIT_MS)
    expect(listing).to_contain_text("rockets.md")

    # Delete asks first; Cancel keeps it, Yes deletes it.
    pick(page, "llamas.md (this chat)")
    page.locator("#chatui-document-delete").click()
    confirm = page.locator("#chatui-document-confirm")
    expect(confirm).to_be_visible(timeout=WAIT_MS)
    expect(confirm).to_contain_text("Delete llamas.md (this chat)?")
    page.locator("#chatui-document-cancel-delete").click()
    expect(confirm).to_be_hidden(timeout=WAIT_MS)
    expect(listing).to_contain_text("llamas.md")
    page.locator("#chatui-document-delete").click()
    expect(confirm).to_be_visible(timeout=WAIT_MS)
    page.locator("#chatui-document-confirm-delete").click()
    expect(page.locator("#chatui-upload-report")).to_contain_text(
        "Deleted llamas.md", timeout=WAIT_MS)
    expect(listing).not_to_contain_text("llamas.md")
    expect(chips).not_to_contain_text("llamas.md")
    expect(listing).to_contain_text("rockets.md")


def test_the_chips_on_a_phone(served: tuple[Runtime, str], browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _runtime, url = served
    notes = tmp_path / "field-notes.md"
    notes.write_text("# Notes\n\nAlpacas are kept for their fleece.")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    loaded(page, url)
    ask(page, "Notes please")
    open_documents(page)
    upload(page, notes, "This chat")
    chips = page.locator(CHIPS)
    expect(chips).to_contain_text("field-notes.md")
    chips.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "documents-chips-mobile.png"))
