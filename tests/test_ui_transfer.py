"""Export and import in a real browser: download the open chat, import other UIs' files.

The buttons are clicked, the file chooser is answered as a person would, and
the downloads are read back: the JSON one imports again (it is the REST
export), the Markdown one is the branch on screen. Imported HTML shows as
text. The handler-level tests below send what a forged event would: a path
that was never uploaded, or someone else's upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui import transfer
from chatui.embedded import free_port
from chatui.runtime import Runtime
from chatui.tree import active_path
from chatui.ui.screen import View
from chatui.ui.transfer import export_file, import_file
from tests.apiharness import open_test_runtime
from tests.conftest import serve_app
from tests.fakebackend import DEFAULT_ANSWER, FakeBackend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_MS = 30_000
SAMPLES = Path(__file__).parent / "transfer_samples"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHAT = "#chatui-chat"


@pytest.fixture
def runtime(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Runtime]:
    with open_test_runtime(fake_backend.base_url, tmp_path / "data") as opened:
        yield opened


def open_page(browser: Any, url: str, width: int = 1280, height: int = 800) -> Any:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    page.goto(url)
    expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
    # The load has answered once the model's status line is written.
    expect(page.locator("#chatui-backend-status")).not_to_be_empty(timeout=WAIT_MS)
    return page


def open_panel(page: Any) -> None:
    from playwright.sync_api import expect

    button = page.locator("#chatui-export-json")
    if not button.is_visible():
        page.locator("#chatui-transfer").get_by_text("Export / import").first.click()
    expect(button).to_be_visible(timeout=WAIT_MS)


def ask(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("#chatui-message textarea")
    box.click()
    page.keyboard.type(text)
    expect(box).to_have_value(text)
    page.keyboard.press("Enter")
    expect(page.locator(f'{CHAT} [data-testid="bot"]').last).to_contain_text(
        DEFAULT_ANSWER, timeout=WAIT_MS)


def download(page: Any, button: str, suffix: str, tmp_path: Path) -> str:
    """Click an export button, then the new file's link; the downloaded file's text."""
    from playwright.sync_api import expect

    page.locator(button).click()
    expect(page.locator("#chatui-export-file")).to_contain_text(suffix, timeout=WAIT_MS)
    link = page.locator("#chatui-export-file a[download]").first
    with page.expect_download(timeout=WAIT_MS) as caught:
        link.click()
    target = tmp_path / caught.value.suggested_filename
    caught.value.save_as(target)
    return target.read_text(encoding="utf-8")


def choose_file(page: Any, path: Path) -> None:
    with page.expect_file_chooser(timeout=WAIT_MS) as chooser:
        page.locator("#chatui-import").click()
    chooser.value.set_files(str(path))


def test_export_downloads_the_json_tree_and_the_markdown_branch(
    runtime: Runtime, browser: Any, tmp_path: Path
) -> None:

    with serve_app(runtime, free_port()) as url:
        page = open_page(browser, url)
        ask(page, "Tell me about llamas")
        open_panel(page)
        exported = download(page, "#chatui-export-json", ".json", tmp_path)
        data = json.loads(exported)
        assert [m["content"] for m in data["messages"]] == ["Tell me about llamas",
                                                            DEFAULT_ANSWER]
        (again,), name = transfer.read_chats(exported.encode(), "local")
        assert name == "chatui" and again.current_leaf_id == data["current_leaf_id"]
        markdown = download(page, "#chatui-export-markdown", ".md", tmp_path)
        assert "## You\n\nTell me about llamas" in markdown
        assert f"## Assistant (fake-model)\n\n{DEFAULT_ANSWER}" in markdown
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "transfer-export-desktop.png"), full_page=True)


def test_import_opens_the_chat_and_shows_html_as_text(
    runtime: Runtime, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with serve_app(runtime, free_port()) as url:
        page = open_page(browser, url)
        open_panel(page)
        choose_file(page, SAMPLES / "openwebui_chat.json")
        report = page.locator("#chatui-import-report")
        expect(report).to_contain_text("Imported 1 chat from Open WebUI", timeout=WAIT_MS)
        bot = page.locator(f'{CHAT} [data-testid="bot"]').last
        expect(bot).to_contain_text("Short blue light is scattered most", timeout=WAIT_MS)
        expect(bot).to_contain_text("<img src=x onerror=alert(1)>")  # shown as text
        assert page.locator(f'{CHAT} img[src="x"]').count() == 0
        expect(page.locator("#chatui-title input, #chatui-title textarea").first).to_have_value(
            "Sky colour", timeout=WAIT_MS)
        expect(page.locator("#chatui-sidebar")).to_contain_text("Sky colour")
        # llama.cpp's JSONL: its branch shown is the second answer.
        choose_file(page, SAMPLES / "llamacpp_session.jsonl")
        expect(report).to_contain_text("Imported 1 chat from llama.cpp", timeout=WAIT_MS)
        expect(bot).to_contain_text("Alpacas are smaller", timeout=WAIT_MS)
        assert page.locator(f"{CHAT} script").count() == 0
        # Its title has HTML in it: the list and the title show the characters.
        sidebar = page.locator("#chatui-sidebar")
        expect(sidebar).to_contain_text("Llamas and <b>alpacas</b>", timeout=WAIT_MS)
        assert sidebar.locator("b").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "transfer-import-desktop.png"), full_page=True)
        # A file that is no chat export: said, nothing opened or stored.
        broken = tmp_path / "broken.json"
        broken.write_text('{"hello": "world"}')
        choose_file(page, broken)
        expect(report).to_contain_text("Nothing was imported", timeout=WAIT_MS)
        expect(bot).to_contain_text("Alpacas are smaller")
        assert len(runtime.service.conversations("local")) == 2


def test_import_on_a_phone(runtime: Runtime, browser: Any) -> None:
    from playwright.sync_api import expect

    with serve_app(runtime, free_port()) as url:
        page = open_page(browser, url, 390, 844)
        open_panel(page)
        choose_file(page, SAMPLES / "llamacpp_legacy.json")
        expect(page.locator("#chatui-import-report")).to_contain_text(
            "Imported 2 chats from llama.cpp", timeout=WAIT_MS)
        expect(page.locator(f'{CHAT} [data-testid="user"]').last).to_contain_text(
            "Bye", timeout=WAIT_MS)
        page.locator("#chatui-transfer").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "transfer-import-mobile.png"))


# ----- what a forged event sends -------------------------------------------------------


def test_import_reads_only_the_callers_own_upload(runtime: Runtime, tmp_path: Path) -> None:
    service, documents = runtime.service, runtime.documents
    assert documents is not None
    uploads = documents.uploads
    # A file outside the upload folder, named in a forged event: not read.
    outside = tmp_path / "secret.json"
    outside.write_bytes((SAMPLES / "openwebui_chat.json").read_bytes())
    done = import_file(service, uploads, "mallory", View(), str(outside))
    assert done.screen is None and "not uploaded here" in done.report
    assert outside.exists()
    # Alice's upload, named by Mallory: not read, still Alice's.
    folder = uploads.upload_folder / "forged-test"
    folder.mkdir(parents=True)
    upload = folder / "chat.json"
    upload.write_bytes(outside.read_bytes())
    uploads.receive("alice", [upload])
    done = import_file(service, uploads, "mallory", View(), str(upload))
    assert done.screen is None and "not uploaded here" in done.report
    assert service.conversations("mallory") == []
    # Alice's own event imports it, and the upload is gone afterwards.
    done = import_file(service, uploads, "alice", View(), str(upload))
    assert done.screen is not None and "Imported 1 chat" in done.report
    assert [c.title for c in service.conversations("alice")] == ["Sky colour"]
    assert not upload.exists()


def test_export_of_another_owners_chat_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    service = runtime.service
    (chat,), _ = transfer.read_chats((SAMPLES / "openwebui_chat.json").read_bytes(), "alice")
    stored = service.import_conversation(chat, "alice")
    path, said = export_file(service, "mallory", View(conversation_id=stored.id), "json",
                             folder=tmp_path)
    assert path is None and said.startswith("Nothing to export")
    path, said = export_file(service, "alice", View(conversation_id=stored.id), "markdown",
                             folder=tmp_path)
    assert path is not None and said == ""
    assert active_path(stored)[-1].content.split(":")[0] in path.read_text()


def test_a_forged_import_event_reads_no_one_elses_file(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw HTTP to Gradio's queue, as in ``test_security_uploads``: Bob names Alice's upload,
    and a file on the server, in the import event; only Alice's own event imports hers."""
    from tests.test_security_uploads import USERS, Visitor, forged, running, said

    with running(fake_backend, tmp_path, monkeypatch, auth=tuple(USERS.items())) as (
            url, runtime, _spool):
        alice, bob = Visitor(url, login="alice"), Visitor(url, login="bob")
        try:
            sample = (SAMPLES / "openwebui_chat.json").read_bytes()
            written = alice.upload_route({"sky.json": sample})
            assert written.status_code == 200, written.text
            (path,) = written.json()

            def import_event(visitor: Visitor, named: str) -> str:
                dependency = visitor.event("chatui-import", "upload")
                data = visitor.defaults(dependency)
                data[1] = forged(named)  # after the session's view
                return said(visitor.join(dependency, data))

            stolen = import_event(bob, path)
            assert "Sky colour" not in stolen and "Rayleigh" not in stolen
            assert runtime.service.conversations("bob") == []
            secret = import_event(bob, str(tmp_path / "tokens.txt"))
            assert "token-alice" not in secret
            assert runtime.service.conversations("bob") == []
            assert Path(path).exists()  # still Alice's to import

            mine = import_event(alice, path)
            assert "Imported 1 chat from Open WebUI" in mine, mine
            assert [c.title for c in runtime.service.conversations("alice")] == ["Sky colour"]
            assert not Path(path).exists()
        finally:
            alice.close()
            bob.close()
