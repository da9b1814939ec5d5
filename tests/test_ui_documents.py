"""The Documents panel's handlers against a real library (real embedder), store and FakeBackend.

Each test drives a handler the way the panel would (files as Gradio leaves them
in its upload folder) and checks what the panel would show, what the chat
stores, and what is left on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rag_fixtures import BAD_FILES, minimal_pdf

from chatui.client import BackendClient
from chatui.documents import DocumentService
from chatui.limits import Limits, UserLimits
from chatui.retrieval import LibraryRetriever
from chatui.service import ChatService
from chatui.filestore import FileStore
from chatui.tree import Settings, active_path
from chatui.ui import documents, generation, handlers
from chatui.ui.documents import MY_LIBRARY, THIS_CHAT, UploadStep
from chatui.ui.screen import View, settings_to_form
from chatui.uploads import DocumentUploads
from rag_index import Embedder, Library
from tests.fakebackend import FakeBackend, Script

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture
pytestmark = pytest.mark.timeout(120)

OWNER = "alice"
FORM = settings_to_form(Settings(model="fake-model"))  # the form's values, in its order
MAX_BYTES = 8192

ZORBLAT = b"The Zorblat festival is held every year in the town of Quendor on the 14th of March."
LLAMAS = b"# Llamas\n\nLlamas are domesticated South American camelids used as pack animals."
ROCKETS = b"Liquid-fuel rockets burn kerosene or hydrogen with liquid oxygen in a chamber."


class Desk:
    """The service, library and uploads one app would share, plus Gradio's upload folder."""

    def __init__(self, tmp_path: Path, embedder: Embedder, backend_url: str,
                 limits: Limits | None = None) -> None:
        self.spool = tmp_path / "gradio"
        self.spool.mkdir()
        self.library = Library(tmp_path / "data" / "documents", embedder, max_file_bytes=MAX_BYTES)
        self.backend = BackendClient(backend_url, first_token_timeout=5, stall_timeout=5)
        self.store = FileStore(tmp_path / "data")
        limits = limits or Limits(UserLimits.none())
        self.service = ChatService(
            self.store, self.backend, default_model="fake-model",
            defaults=Settings(max_tokens=64), retriever=LibraryRetriever(self.library),
            limits=limits,
        )
        self.uploads = DocumentUploads(self.library, limits, upload_folder=self.spool)
        self.documents = DocumentService(self.uploads, self.service)

    def file(self, name: str, data: bytes) -> str:
        """A file where Gradio puts an upload: <upload folder>/<hash>/<name>."""
        folder = self.spool / hashlib.sha256(name.encode() + data).hexdigest()[:20]
        folder.mkdir()
        (folder / name).write_bytes(data)
        self.uploads.receive(OWNER, [folder / name])  # as Gradio's upload route does
        return str(folder / name)

    def upload(self, view: View, files: dict[str, bytes], scope: str = THIS_CHAT,
               progress: list[tuple[float, str]] | None = None) -> list[UploadStep]:
        paths = [self.file(name, data) for name, data in files.items()]
        report = ((lambda fraction, line: progress.append((fraction, line)))
                  if progress is not None else None)
        return list(documents.upload(self.service, self.documents, OWNER, view, paths, scope,
                                     FORM, report))

    def close(self) -> None:
        self.backend.close()
        self.store.close()


@pytest.fixture
def desk(tmp_path: Path, rag_embedder: Embedder, fake_backend: FakeBackend) -> Iterator[Desk]:
    opened = Desk(tmp_path, rag_embedder, fake_backend.base_url)
    yield opened
    opened.close()


def final(steps: list[UploadStep]) -> UploadStep:
    assert steps[-1].done
    return steps[-1]


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# ----- upload ---------------------------------------------------------------------------------


def test_several_files_at_once_one_outcome_each_and_the_bad_ones_named(desk: Desk) -> None:
    good = {"zorblat.txt": ZORBLAT, "llamas.md": LLAMAS, "report.pdf": minimal_pdf(
        ["Page one is about rockets.", "Page two: " + ROCKETS.decode()])}
    bad = {**{name: BAD_FILES[name] for name in ("empty.txt", "junk.txt", "corrupt.pdf",
                                                 "program.exe")},
           "huge.txt": b"word " * (MAX_BYTES // 4)}
    progress: list[tuple[float, str]] = []
    steps = desk.upload(View(), {**good, **bad}, THIS_CHAT, progress)
    done = final(steps)

    # Each file has its outcome, in order; the good ones are in, the bad ones say why.
    assert [o.name for o in done.outcomes] == [*good, *bad]
    assert all(o.error is None and o.chunks > 0 for o in done.outcomes[:3])
    for outcome in done.outcomes[3:]:
        assert outcome.error is not None and outcome.error.startswith(outcome.name + ":")
    assert "encrypted" not in done.report
    for name in bad:
        assert f"✗ {name}:" in done.report
    assert "Not added (5 of 8)" in done.report
    assert "✓ zorblat.txt: 1 chunk\n" in done.report

    # Progress per file: it only goes forward, and each file's chunk count shows as it ends.
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(line.startswith("zorblat.txt: 1 chunk (1 of 8 files)") for _, line in progress)
    assert any(line.startswith("junk.txt: refused (5 of 8 files)") for _, line in progress)

    # A chat was created for them, with "Use documents" on, and opened.
    opened = steps[0].screen
    assert opened is not None and opened.view.conversation_id is not None
    assert opened.settings is not None and opened.settings.rag_enabled
    chat = desk.service.conversation(opened.view.conversation_id, OWNER)
    assert chat.settings.rag_enabled
    assert "Use documents* is now on" in done.report

    # The listing: the three documents of this chat, with pages and chunks.
    assert done.shelf is not None
    rows = {row[0]: row for row in done.shelf.rows}
    assert set(rows) == set(good)
    assert rows["report.pdf"][1:] == (2, rows["report.pdf"][2], "this chat")
    assert rows["zorblat.txt"] == ("zorblat.txt", 1, 1, "this chat")
    # The index holds only the good files' chunks; every upload is gone.
    assert desk.library.chunk_count == sum(o.chunks for o in done.outcomes)
    assert files_in(desk.spool) == []


def test_a_file_too_many_is_refused_by_name_and_the_others_go_in(
        tmp_path: Path, rag_embedder: Embedder, fake_backend: FakeBackend) -> None:
    desk = Desk(tmp_path, rag_embedder, fake_backend.base_url, Limits(UserLimits(max_documents=2)))
    try:
        done = final(desk.upload(View(), {"a.txt": ZORBLAT, "b.md": LLAMAS, "c.txt": ROCKETS},
                                 MY_LIBRARY))
        assert [o.error is None for o in done.outcomes] == [True, True, False]
        assert done.report.count("✗ c.txt: You have 2 documents stored") == 1
        assert desk.library.document_count(OWNER) == 2
        assert files_in(desk.spool) == []
    finally:
        desk.close()


def test_the_same_file_again_is_not_stored_twice(desk: Desk) -> None:
    first = desk.upload(View(), {"zorblat.txt": ZORBLAT})[0].screen
    assert first is not None
    again = final(desk.upload(first.view, {"copy.txt": ZORBLAT}))
    assert "✓ copy.txt: 1 chunk (already there)" in again.report
    assert desk.library.document_count(OWNER) == 1


def test_no_files_and_an_unknown_chat_say_so(desk: Desk) -> None:
    assert final(desk.upload(View(), {})).report == "Choose one or more files first."
    gone = final(desk.upload(View(conversation_id="not-a-chat"), {"a.txt": ZORBLAT}))
    assert gone.report == "Nothing was added: There is no such conversation."
    assert desk.library.document_count(OWNER) == 0
    assert files_in(desk.spool) == []


def test_a_path_that_was_not_uploaded_is_refused_by_name_and_the_others_go_in(
        desk: Desk, tmp_path: Path) -> None:
    secret = tmp_path / "tokens.txt"
    secret.write_text("alice:token-alice-0123456789\nbob:token-bob-0123456789\n")
    stray = desk.spool / "f00d" / "stray.md"  # in the upload folder, never handed out
    stray.parent.mkdir()
    stray.write_bytes(LLAMAS)
    forged = [str(secret), f"{desk.spool}/x/../../tokens.txt", str(stray)]
    genuine = desk.file("zorblat.txt", ZORBLAT)
    done = final(list(documents.upload(desk.service, desk.documents, OWNER, View(),
                                       [*forged, genuine], MY_LIBRARY, FORM)))
    assert [o.error is None for o in done.outcomes] == [False, False, False, True]
    for name in ("tokens.txt", "stray.md"):
        assert f"✗ {name}: was not uploaded through this page" in done.report
    assert done.shelf is not None and [row[0] for row in done.shelf.rows] == ["zorblat.txt"]
    rows, _ = documents.search(desk.documents, OWNER, View(), "token alice bob", "bm25")
    assert "tokens.txt" not in {row[2] for row in rows}
    assert secret.exists() and files_in(desk.spool) == []


def test_a_hostile_name_is_shown_as_text(desk: Desk) -> None:
    done = final(desk.upload(View(), {"<img src=x onerror=alert(1)>.txt": ZORBLAT}))
    assert "<img" not in done.report and "&lt;img src=x onerror=alert(1)>.txt" in done.report


# ----- scope: this chat or my library ------------------------------------------------------------


def test_attachments_belong_to_their_chat_and_the_library_to_all_chats(desk: Desk) -> None:
    first = desk.service.create(OWNER)
    second = desk.service.create(OWNER)
    in_first = View(conversation_id=first.id)
    library_upload = desk.upload(in_first, {"llamas.md": LLAMAS}, MY_LIBRARY)
    assert all(step.screen is None for step in library_upload)  # the chat is left as it is
    assert not desk.service.conversation(first.id, OWNER).settings.rag_enabled
    assert "Turn on *Use documents*" in final(library_upload).report
    attached = final(desk.upload(in_first, {"zorblat.txt": ZORBLAT}, THIS_CHAT))
    assert attached.shelf is not None
    assert [(r[0], r[3]) for r in attached.shelf.rows] == [
        ("llamas.md", "my library"), ("zorblat.txt", "this chat")]

    in_second = View(conversation_id=second.id)
    assert [r[0] for r in documents.shelf(desk.documents, OWNER, in_second).rows] == ["llamas.md"]
    assert [r[0] for r in documents.shelf(desk.documents, OWNER, View()).rows] == ["llamas.md"]
    for mode in documents.SEARCH_MODES:
        rows, _ = documents.search(desk.documents, OWNER, in_second, "Zorblat festival", mode)
        assert "zorblat.txt" not in {row[2] for row in rows}
    rows, _ = documents.search(desk.documents, OWNER, in_first, "Zorblat festival Quendor", "bm25")
    assert rows[0][2] == "zorblat.txt"
    # Someone else sees none of it.
    assert documents.shelf(desk.documents, "bob", in_first).rows == ()


# ----- list, delete -----------------------------------------------------------------------------


def test_delete_a_document_from_the_list(desk: Desk) -> None:
    steps = desk.upload(View(), {"zorblat.txt": ZORBLAT, "llamas.md": LLAMAS})
    assert steps[0].screen is not None
    view = steps[0].screen.view
    listed = documents.shelf(desk.documents, OWNER, view)
    label, document_id = listed.choices[0]
    assert label == "zorblat.txt (this chat)"
    after, said = documents.delete_document(desk.documents, OWNER, view, document_id)
    assert said == "Deleted zorblat.txt."
    assert [row[0] for row in after.rows] == ["llamas.md"]
    _, said = documents.delete_document(desk.documents, OWNER, view, document_id)
    assert "There is no document" in said
    _, said = documents.delete_document(desk.documents, "bob", View(), listed.choices[1][1])
    assert "There is no document" in said  # not bob's
    _, said = documents.delete_document(desk.documents, "bob", view, listed.choices[1][1])
    assert said == "There is no such conversation."  # nor is the chat
    assert [row[0] for row in documents.shelf(desk.documents, OWNER, view).rows] == ["llamas.md"]
    assert documents.delete_document(desk.documents, OWNER, view, None)[1].startswith("Pick")


def test_a_document_of_another_chat_cannot_be_deleted_from_this_one(desk: Desk) -> None:
    first, second = desk.service.create(OWNER), desk.service.create(OWNER)
    in_first, in_second = View(conversation_id=first.id), View(conversation_id=second.id)
    desk.upload(in_first, {"zorblat.txt": ZORBLAT}, THIS_CHAT)
    desk.upload(in_second, {"llamas.md": LLAMAS}, MY_LIBRARY)
    [(_, first_doc)] = [c for c in documents.shelf(desk.documents, OWNER, in_first).choices
                        if c[0].startswith("zorblat")]
    # The page open on the second chat is sent the first chat's document id (issue 12).
    after, said = documents.delete_document(desk.documents, OWNER, in_second, first_doc)
    assert said.startswith("There is no document") and "this chat or your library" in said
    assert [row[0] for row in after.rows] == ["llamas.md"]
    # Nor from the library alone (no chat open); from its own chat it goes.
    _, said = documents.delete_document(desk.documents, OWNER, View(), first_doc)
    assert said.startswith("There is no document")
    assert sorted(d.name for d in desk.library.documents(OWNER, first.id)) == [
        "llamas.md", "zorblat.txt"]
    _, said = documents.delete_document(desk.documents, OWNER, in_first, first_doc)
    assert said == "Deleted zorblat.txt."
    assert [d.name for d in desk.library.documents(OWNER, first.id)] == ["llamas.md"]


def test_deleting_a_chat_deletes_its_attachments_not_the_library(desk: Desk) -> None:
    chat = desk.service.create(OWNER)
    view = View(conversation_id=chat.id)
    desk.upload(view, {"llamas.md": LLAMAS}, MY_LIBRARY)
    desk.upload(view, {"zorblat.txt": ZORBLAT}, THIS_CHAT)
    assert desk.library.document_count(OWNER) == 2
    handlers.delete(desk.service, OWNER, view)
    assert [d.name for d in desk.library.documents(OWNER)] == ["llamas.md"]
    assert desk.library.document_count(OWNER) == 1


# ----- search view -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_shows_the_best_passages_with_scores_file_and_page(desk: Desk, mode: str) -> None:
    pdf = minimal_pdf(["Page one is about llamas and their wool.", ROCKETS.decode()])
    desk.upload(View(), {"zorblat.txt": ZORBLAT, "manual.pdf": pdf}, MY_LIBRARY)
    rows, said = documents.search(desk.documents, OWNER, View(), "rockets burn kerosene", mode)
    assert said == ""
    number, score, file, page, passage = rows[0]
    assert (number, file, page) == (1, "manual.pdf", "2")
    assert "kerosene" in passage and isinstance(score, float) and score > 0
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
    assert [row[1] for row in rows] == sorted((row[1] for row in rows), reverse=True)


def test_search_with_nothing_to_find_says_so(desk: Desk) -> None:
    assert documents.search(desk.documents, OWNER, View(), "  ", "hybrid") == (
        (), "Type something to search for.")
    assert documents.search(desk.documents, OWNER, View(), "anything", "hybrid") == (
        (), "Nothing found in the documents this chat can use.")


# ----- the "Use documents" setting and the answer's sources -------------------------------------


def test_use_documents_is_saved_with_the_chat(desk: Desk) -> None:
    chat = desk.service.create(OWNER)
    view = View(conversation_id=chat.id)
    handlers.save_settings(desk.service, OWNER, view, (*FORM[:-1], True))
    reopened = handlers.open_conversation(desk.service, OWNER, View(), chat.id)
    assert reopened.settings is not None and reopened.settings.rag_enabled
    assert settings_to_form(reopened.settings)[-1] is True
    handlers.save_settings(desk.service, OWNER, view, FORM)
    assert not desk.service.conversation(chat.id, OWNER).settings.rag_enabled


def test_an_upload_to_the_open_chat_turns_documents_on_and_shows_it(desk: Desk) -> None:
    chat = desk.service.create(OWNER, settings=replace(Settings(), system_prompt="Be kind."))
    steps = desk.upload(View(conversation_id=chat.id), {"zorblat.txt": ZORBLAT})
    first = steps[0].screen
    assert first is not None and first.settings is not None
    assert first.settings.rag_enabled and first.settings.system_prompt == "Be kind."
    assert first.view.conversation_id == chat.id
    assert desk.service.conversation(chat.id, OWNER).settings.rag_enabled


def test_the_answer_cites_the_uploaded_document(desk: Desk, fake_backend: FakeBackend) -> None:
    steps = desk.upload(View(), {"zorblat.txt": ZORBLAT, "llamas.md": LLAMAS})
    view = steps[0].screen.view if steps[0].screen else View()
    fake_backend.enqueue(Script.text_answer("It is held in Quendor [1]."))
    form: tuple[Any, ...] = (*FORM[:-1], True)
    *_, shown = generation.send(desk.service, OWNER, view, "Where is the Zorblat festival held?",
                                form)
    system = fake_backend.requests[-1]["messages"][0]
    assert system["role"] == "system"
    assert "[1] (zorblat.txt)\n" + ZORBLAT.decode() in system["content"]
    answer = active_path(desk.service.conversation(view.conversation_id or "", OWNER))[-1]
    assert [s.number for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert answer.sources[0].document == "zorblat.txt"
    assert shown.chat is not None
    sources = [row for row in shown.chat if row.get("metadata", {}).get("title") == "Sources"]
    assert len(sources) == 1
    text = sources[0]["content"]["text"]
    assert text.startswith("- [1] **zorblat.txt** — The Zorblat festival is held every year")


# ----- the chips by the message box, and the question before a delete ----------------------


def test_chips_name_this_chats_files_only_and_as_text() -> None:
    found = documents.Shelf(
        rows=(('<img src=x onerror="alert(1)">.md', 1, 2, "this chat"),
              ("library.md", 1, 1, "my library")),
        choices=(('<img src=x onerror="alert(1)">.md (this chat)', "doc-a"),
                 ("library.md (my library)", "doc-b")),
    )
    chips = documents.attachment_chips(found)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.md" in chips
    assert "<img" not in chips and "library.md" not in chips
    assert documents.attachment_chips(documents.Shelf()) == ""
    question = documents.delete_question(found, "doc-b")
    assert question is not None and "library.md (my library)" in question
    assert "<img" not in (documents.delete_question(found, "doc-a") or "")
    # An id the panel does not list (another chat's document, a forged event): no question.
    assert documents.delete_question(found, "someone-elses") is None
    assert documents.delete_question(found, None) is None
