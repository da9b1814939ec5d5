"""Documents in a chat, end to end: the real embedder, the real embedded model, the UI's handlers.

A document with a fact no model knows is uploaded to a chat through the
Documents panel's handler; the question about it goes to SmolLM2-135M with
"Use documents" on. What is checked is what the app did, not what a 135M model
says: the request's system prompt carried the passage as source [1], the answer
is stored with its sources numbered 1..n pointing at the right file and page,
and they come back, and are shown, after reopening the chat from a fresh store.
A last test does the same through the browser (screenshot: tests/artifacts/documents.png).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_fixtures import minimal_pdf

from chatui import streamloop
from chatui.client import BackendClient
from chatui.documents import DocumentService
from chatui.embedded import MODEL_ALIAS, EmbeddedServer
from chatui.limits import Limits, UserLimits
from chatui.retrieval import LibraryRetriever
from chatui.service import ChatService
from chatui.filestore import FileStore
from chatui.tree import Message, Settings, active_path
from chatui.ui import documents, generation, handlers
from chatui.ui.documents import THIS_CHAT
from chatui.ui.screen import Screen, View, settings_to_form
from chatui.uploads import DocumentUploads
from rag_index import Embedder, Library

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OWNER = "local"
ARTIFACTS = Path(__file__).parent / "artifacts"
ZORBLAT = "The Zorblat festival is held every year in the town of Quendor on the 14th of March."
ZORBLAT_FILE = (
    "# Local customs\n\n"
    "Bakers in the northern valleys bake rye bread with caraway seeds.\n\n"
    f"{ZORBLAT}\n\n"
    "Fishermen on the coast mend their nets during the winter storms.\n"
)
PDF_PAGES = [
    "The glassworks of Vellmar make green bottles for the wine trade.",
    "The Quibbet bridge in Ostrava was painted purple in 1911 by order of the mayor.",
]
# "Use documents" on, short and repeatable answers (the form's values, in its order)
FORM = settings_to_form(
    Settings(model=MODEL_ALIAS, temperature=0.0, max_tokens=48, seed=1, rag_enabled=True))


class Recorder:
    """Keeps the body of every chat request the backend client sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app_parts(tmp_path: Path, rag_embedder: Embedder, embedded_server: EmbeddedServer,
              recorder: Recorder) -> Iterator[tuple[ChatService, DocumentUploads]]:
    http = httpx.AsyncClient(event_hooks={"request": [recorder]})
    backend = BackendClient(embedded_server.base_url, stream_http=http)
    store = FileStore(tmp_path / "data")
    library = Library(tmp_path / "data" / "documents", rag_embedder)
    service = ChatService(store, backend, retriever=LibraryRetriever(library),
                          context_tokens=2048, defaults=Settings())
    uploads = DocumentUploads(library, Limits(UserLimits.none()), upload_folder=tmp_path / "up")
    try:
        yield service, uploads
    finally:
        store.close()
        backend.close()
        streamloop.run(http.aclose())


def gradio_upload(folder: Path, name: str, data: bytes) -> str:
    path = folder / hashlib.sha256(data).hexdigest()[:16] / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return str(path)


def ask(service: ChatService, view: View, question: str) -> Screen:
    *_, last = generation.send(service, OWNER, view, question, FORM)
    assert last.notice == "", last.notice
    return last


def last_answer(service: ChatService, chat_id: str) -> Message:
    answer = active_path(service.conversation(chat_id, OWNER))[-1]
    assert answer.role == "assistant" and answer.status == "complete"
    return answer


def sources_block(screen: Screen) -> str:
    assert screen.chat is not None
    blocks = [row for row in screen.chat if row.get("metadata", {}).get("title") == "Sources"]
    assert blocks, "no Sources block"
    return str(blocks[-1]["content"]["text"])


def test_an_uploaded_fact_reaches_the_model_as_source_1_and_stays_with_the_answer(
    app_parts: tuple[ChatService, DocumentUploads], recorder: Recorder, tmp_path: Path,
) -> None:
    service, uploads = app_parts
    spool = tmp_path / "up"
    paths = [gradio_upload(spool, "customs.md", ZORBLAT_FILE.encode()),
             gradio_upload(spool, "towns.pdf", minimal_pdf(PDF_PAGES))]
    uploads.receive(OWNER, paths)  # as Gradio's upload route does
    steps = list(documents.upload(service, DocumentService(uploads, service), OWNER, View(),
                                  paths, THIS_CHAT, FORM))
    assert steps[0].screen is not None
    view = steps[0].screen.view
    chat_id = view.conversation_id
    assert chat_id is not None and service.conversation(chat_id, OWNER).settings.rag_enabled
    assert [o.error for o in steps[-1].outcomes] == [None, None]
    assert [p for p in spool.rglob("*") if p.is_file()] == []

    # The text file's fact: source [1] in the system prompt, and on the stored answer.
    ask(service, view, "When and where is the Zorblat festival held?")
    system = recorder.bodies[-1]["messages"][0]
    assert system["role"] == "system"
    assert "[1] (customs.md)\n" in system["content"]
    numbered = system["content"].split("[1] (customs.md)\n", 1)[1]
    assert ZORBLAT in numbered.split("\n[2] (", 1)[0]
    answer = last_answer(service, chat_id)
    assert answer.content.strip()
    assert [s.number for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert (answer.sources[0].document, answer.sources[0].page) == ("customs.md", None)
    assert ZORBLAT in answer.sources[0].snippet
    for source in answer.sources:  # every source in the answer was in the prompt, numbered alike
        assert f"[{source.number}] ({source.document}" in system["content"]

    # The PDF's fact: the right file and its page.
    ask(service, view, "What colour was the Quibbet bridge painted in 1911?")
    system = recorder.bodies[-1]["messages"][0]["content"]
    assert "[1] (towns.pdf, page 2)\n" in system
    pdf_answer = last_answer(service, chat_id)
    assert (pdf_answer.sources[0].document, pdf_answer.sources[0].page) == ("towns.pdf", 2)
    assert "Quibbet bridge" in pdf_answer.sources[0].snippet

    # Reopened from a fresh store (as after a restart): the same sources, shown again.
    service.store.close()  # one store per data folder at a time
    fresh_store = FileStore(tmp_path / "data")
    try:
        fresh = ChatService(fresh_store, service.backend)
        path = active_path(fresh.conversation(chat_id, OWNER))
        assert [m.sources for m in path if m.role == "assistant"] == [
            answer.sources, pdf_answer.sources]
        shown = handlers.open_conversation(fresh, OWNER, View(), chat_id)
        block = sources_block(shown)
        assert block.startswith("- [1] **towns.pdf**, page 2 — ")
        assert "Quibbet bridge" in block
    finally:
        fresh_store.close()


def test_without_documents_on_the_prompt_has_no_sources(
    app_parts: tuple[ChatService, DocumentUploads], recorder: Recorder, tmp_path: Path,
) -> None:
    service, uploads = app_parts
    path = gradio_upload(tmp_path / "up", "customs.md", ZORBLAT_FILE.encode())
    uploads.receive(OWNER, [path])  # as Gradio's upload route does
    list(documents.upload(service, DocumentService(uploads, service), OWNER, View(), [path],
                          documents.MY_LIBRARY, FORM))
    off = FORM[:-1] + (False,)
    *_, last = generation.send(service, OWNER, View(), "Where is the Zorblat festival?", off)
    messages = recorder.bodies[-1]["messages"]
    assert all("Zorblat festival is held" not in m["content"] for m in messages[:-1])
    assert last.view.conversation_id is not None
    assert last_answer(service, last.view.conversation_id).sources == ()


# ----- the same through the browser ---------------------------------------------------------------


def test_upload_in_the_browser_and_see_the_sources(
    embedded_server: EmbeddedServer,
    running_app: Callable[..., AbstractContextManager[str]],
    chromium_path: str,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    wait_ms = 90_000
    notes = tmp_path / "customs.md"
    notes.write_text(ZORBLAT_FILE)
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 8)
    tags = tmp_path / "tags.md"
    tags.write_text('<img src=x onerror="window.__pwned=1"> Zorblat lanterns are made of paper.')
    defaults = Settings(max_tokens=40, temperature=0.0, seed=1)
    with (running_app(embedded_server.base_url, context=2048, defaults=defaults) as url,
          sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url)
            expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=wait_ms)
            page.get_by_text("Documents", exact=True).click()
            page.locator("#chatui-upload input[type=file]").set_input_files([notes, junk, tags])
            report = page.locator("#chatui-upload-report")
            expect(report).to_contain_text("✓ customs.md:", timeout=wait_ms)
            expect(report).to_contain_text("junk.txt: the file contains binary data")
            expect(page.locator("#chatui-document-list")).to_contain_text("customs.md")
            expect(page.locator("#chatui-conversations li.chatui-chat")).to_have_count(1)

            page.get_by_text("Settings (saved with the chat)").click()
            expect(page.locator("#chatui-rag input[type=checkbox]")).to_be_checked()

            page.locator("#chatui-message textarea").fill("Where is the Zorblat festival held?")
            page.get_by_role("button", name="Send", exact=True).click()
            bot = page.locator('#chatui-chat [data-testid="bot"]')
            expect(page.locator("#chatui-chat")).to_contain_text("Sources", timeout=wait_ms)
            expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible(
                timeout=wait_ms)
            cited = bot.first.get_by_text("customs.md")
            expect(cited).to_be_hidden()  # the Sources block starts closed
            page.locator("#chatui-chat").get_by_text("Sources").first.click()
            expect(cited).to_be_visible()
            expect(bot.first).to_contain_text("[1] customs.md — # Local customs")
            expect(bot.first).to_contain_text("Zorblat festival is held every year")

            page.reload()  # from the server: the sources were stored with the answer
            expect(page.locator("#chatui-chat")).to_contain_text("Sources", timeout=wait_ms)
            page.locator("#chatui-chat").get_by_text("Sources").first.click()
            expect(cited).to_be_visible()

            page.get_by_text("Documents", exact=True).click()  # closed again after the reload
            expect(page.locator("#chatui-document-list")).to_contain_text("customs.md")
            page.locator("#chatui-document-query textarea, #chatui-document-query input").fill(
                "Zorblat Quendor")
            page.get_by_role("button", name="Search documents").click()
            hits = page.locator("#chatui-document-hits")
            expect(hits).to_contain_text("customs.md", timeout=wait_ms)
            expect(hits).to_contain_text('<img src=x onerror="window.__pwned=1">')  # as text
            assert page.evaluate("window.__pwned") is None
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "documents.png"), full_page=True)
        finally:
            browser.close()
