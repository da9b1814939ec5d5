"""Library storage: ingest, errors that change nothing, duplicates, delete, reload, owners."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from rag_fixtures import BAD_FILES, docx_bytes, encrypted_pdf, minimal_pdf

from rag_index import (
    DocumentError,
    DocumentNotFound,
    DocumentTooLarge,
    Embedder,
    EncryptedDocument,
    IndexStoreError,
    IngestFailure,
    IngestProgress,
    Library,
    ModelUnavailable,
    SearchMode,
)
from rag_index.storage import LibraryStore

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture

LLAMAS = (
    b"Llamas are domesticated South American camelids.\n\n"
    b"They are used as pack animals by Andean cultures."
)
ZEBRAS = b"Zebras are African equines with distinctive black-and-white striped coats."
ROCKETS = b"Liquid-fuel rockets burn kerosene or hydrogen with liquid oxygen in a chamber."

MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


def disk_state(data_dir: Path) -> dict[str, bytes]:
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in files}


@pytest.fixture
def library(tmp_path: Path, rag_embedder: Embedder) -> Library:
    return Library(tmp_path / "rag", rag_embedder, max_file_bytes=100_000)


def names(hits: list) -> list[str]:
    return [hit.document_name for hit in hits]


def test_ingest_then_search_finds_the_document(library: Library) -> None:
    result = library.ingest(LLAMAS, "llamas.txt", "alice")
    assert (result.name, result.chunk_count, result.duplicate) == ("llamas.txt", 1, False)
    [hit] = library.search("pack animals in the Andes", "alice", k=1)
    assert (hit.citation, hit.document_name) == (1, "llamas.txt")
    assert hit.document_id == result.document_id
    assert hit.text == LLAMAS.decode()


def test_pdf_and_docx_hits_carry_names_and_pages(library: Library) -> None:
    manual = minimal_pdf(["Intro page about nothing much.", "The warranty lasts five years."])
    library.ingest(manual, "manual.pdf", "alice")
    minutes = docx_bytes("Minutes", ["The board approved the new budget."])
    library.ingest(minutes, "minutes.docx", "alice")
    [hit] = library.search("how long is the warranty", "alice", k=1)
    assert (hit.document_name, hit.page) == ("manual.pdf", 2)
    assert hit.text == "The warranty lasts five years."
    [hit] = library.search("board approved budget", "alice", k=1)
    assert (hit.document_name, hit.page) == ("minutes.docx", None)
    [info] = [d for d in library.documents("alice") if d.name == "manual.pdf"]
    assert info.pages == 2


@pytest.mark.parametrize("name", sorted(BAD_FILES) + ["locked.pdf", "huge.txt"])
def test_a_bad_file_raises_a_named_error_and_changes_nothing(
    library: Library, tmp_path: Path, name: str
) -> None:
    library.ingest(LLAMAS, "llamas.txt", "alice")
    before = disk_state(tmp_path / "rag")
    extra = {"locked.pdf": encrypted_pdf(["secret"]), "huge.txt": b"x" * 100_001}
    data = extra[name] if name in extra else BAD_FILES[name]
    with pytest.raises(DocumentError) as raised:
        library.ingest(data, name, "alice")
    assert str(raised.value).startswith(f"{name}: ")
    assert [d.name for d in library.documents("alice")] == ["llamas.txt"]
    assert library.chunk_count == 1
    assert disk_state(tmp_path / "rag") == before


def test_specific_error_types_reach_the_caller(library: Library, tmp_path: Path) -> None:
    with pytest.raises(EncryptedDocument):
        library.ingest(encrypted_pdf(["secret"]), "locked.pdf", "alice")
    big = tmp_path / "big.txt"
    big.write_bytes(b"y" * 200_000)
    with pytest.raises(DocumentTooLarge):
        library.ingest(big, "big.txt", "alice")


def test_ingest_many_goes_on_past_failures_in_order(library: Library) -> None:
    files: list[tuple[Path | str | bytes, str]] = [
        (LLAMAS, "llamas.txt"), (BAD_FILES["junk.txt"], "junk.txt"),
        (ZEBRAS, "zebras.txt"), (b"", "empty.md"),
    ]
    batch = library.ingest_many(files, "alice")
    assert [o.name for o in batch.outcomes] == ["llamas.txt", "junk.txt", "zebras.txt", "empty.md"]
    assert [type(o) is IngestFailure for o in batch.outcomes] == [False, True, False, True]
    assert "junk.txt" in str(batch.failed[0].error)
    assert sorted(d.name for d in library.documents("alice")) == ["llamas.txt", "zebras.txt"]


def test_progress_is_reported_through_to_done(library: Library) -> None:
    seen: list[IngestProgress] = []
    library.ingest_many([(LLAMAS, "a.txt"), (ZEBRAS, "b.txt")], "alice", progress=seen.append)
    assert [p.stage for p in seen][0] == "reading" and seen[-1].stage == "done"
    assert {"embedding", "saving"} <= {p.stage for p in seen}
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_raising_from_progress_cancels_with_nothing_stored(library: Library) -> None:
    def cancel(progress: IngestProgress) -> None:
        if progress.stage == "embedding":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        library.ingest(LLAMAS, "llamas.txt", "alice", progress=cancel)
    assert library.documents("alice") == [] and library.chunk_count == 0


def test_same_content_is_stored_once_and_reported_as_duplicate(
    library: Library, tmp_path: Path
) -> None:
    first = library.ingest(LLAMAS, "llamas.txt", "alice")
    path = tmp_path / "renamed.txt"
    path.write_bytes(LLAMAS)
    again = library.ingest(path, "renamed.txt", "alice")
    assert again.duplicate and again.name == "renamed.txt"
    assert again.document_id == first.document_id
    batch = library.ingest_many([(ZEBRAS, "z1.txt"), (ZEBRAS, "z2.txt")], "alice")
    assert [o.duplicate for o in batch.succeeded] == [False, True]
    assert batch.succeeded[0].document_id == batch.succeeded[1].document_id
    assert len(library.documents("alice")) == 2 and library.chunk_count == 2
    # llamas and zebras, not zebras twice
    assert len(library.search("striped equines", "alice", k=5)) == 2


def test_library_content_is_a_duplicate_in_a_chat_but_not_for_others(library: Library) -> None:
    original = library.ingest(LLAMAS, "llamas.txt", "alice")
    assert library.ingest(LLAMAS, "again.txt", "alice", "chat-1").duplicate
    other = library.ingest(LLAMAS, "llamas.txt", "bob")
    assert not other.duplicate and other.document_id != original.document_id


def test_reload_restores_documents_and_identical_results(
    tmp_path: Path, rag_embedder: Embedder
) -> None:
    first = Library(tmp_path / "rag", rag_embedder)
    first.ingest_many([(LLAMAS, "llamas.txt"), (ZEBRAS, "zebras.txt")], "alice")
    first.ingest(ROCKETS, "rockets.txt", "alice", "chat-9")
    queries = ["pack animals", "striped coats", "rocket fuel"]
    before = [first.search(q, "alice", "chat-9", k=3) for q in queries]
    second = Library(tmp_path / "rag", rag_embedder)
    assert second.documents("alice", "chat-9") == first.documents("alice", "chat-9")
    after = [second.search(q, "alice", "chat-9", k=3) for q in queries]
    for old, new in zip(before, after, strict=True):
        assert [(h.chunk_id, h.text) for h in old] == [(h.chunk_id, h.text) for h in new]
        assert np.allclose([h.score for h in old], [h.score for h in new], atol=1e-5)
    assert second.ingest(ZEBRAS, "z.txt", "alice").duplicate
    new = second.ingest(b"Fresh text about owls.", "owls.txt", "alice")
    assert second.search("owls", "alice", k=1)[0].document_id == new.document_id


def test_delete_removes_vectors_from_search_and_disk(
    library: Library, tmp_path: Path, rag_embedder: Embedder
) -> None:
    keep = library.ingest(LLAMAS, "llamas.txt", "alice")
    gone = library.ingest(ZEBRAS, "zebras.txt", "alice")
    info = library.delete(gone.document_id, "alice")
    assert info.name == "zebras.txt"
    for mode in MODES:
        assert "zebras.txt" not in names(library.search("striped zebras", "alice", k=5, mode=mode))
    assert library.chunk_count == 1 and len(list((tmp_path / "rag" / "segments").iterdir())) == 1
    reloaded = Library(tmp_path / "rag", rag_embedder)
    assert [d.document_id for d in reloaded.documents("alice")] == [keep.document_id]
    assert "zebras.txt" not in names(reloaded.search("striped zebras", "alice", k=5))
    assert not reloaded.ingest(ZEBRAS, "zebras.txt", "alice").duplicate  # may be uploaded again


def test_delete_checks_the_owner(library: Library) -> None:
    result = library.ingest(LLAMAS, "llamas.txt", "alice")
    with pytest.raises(DocumentNotFound):
        library.delete(result.document_id, "bob")
    with pytest.raises(DocumentNotFound):
        library.delete("no-such-id", "alice")
    assert len(library.documents("alice")) == 1


def test_delete_conversation_removes_only_its_attachments(library: Library) -> None:
    library.ingest(LLAMAS, "llamas.txt", "alice")
    library.ingest(ZEBRAS, "zebras.txt", "alice", "chat-1")
    library.ingest(ROCKETS, "rockets.txt", "alice", "chat-2")
    assert library.delete_conversation("alice", "chat-1") == 1
    chat_2 = sorted(d.name for d in library.documents("alice", "chat-2"))
    assert chat_2 == ["llamas.txt", "rockets.txt"]
    assert [d.name for d in library.documents("alice", "chat-1")] == ["llamas.txt"]


def test_owners_and_conversations_are_isolated(library: Library) -> None:
    library.ingest(LLAMAS, "alice-llamas.txt", "alice")
    library.ingest(ZEBRAS, "alice-chat1-zebras.txt", "alice", "chat-1")
    library.ingest(b"Zebras and llamas in Bob's secret zoo.", "bob-zoo.txt", "bob")
    for mode in MODES:
        alice_chat1 = names(library.search("zebras llamas zoo", "alice", "chat-1", k=10, mode=mode))
        assert sorted(alice_chat1) == ["alice-chat1-zebras.txt", "alice-llamas.txt"]
        alice_chat2 = names(library.search("zebras llamas zoo", "alice", "chat-2", k=10, mode=mode))
        assert alice_chat2 == ["alice-llamas.txt"]
        assert names(library.search("zebras llamas zoo", "bob", k=10, mode=mode)) == ["bob-zoo.txt"]
        assert library.search("zebras", "carol", k=10, mode=mode) == []
    assert [d.name for d in library.documents("bob")] == ["bob-zoo.txt"]
    assert [d.name for d in library.documents("alice")] == ["alice-llamas.txt"]


def test_a_failed_save_leaves_memory_and_disk_as_they_were(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library.ingest(LLAMAS, "llamas.txt", "alice")
    before = disk_state(tmp_path / "rag")

    def disk_full(self: LibraryStore, manifest: object) -> None:
        raise IndexStoreError("disk full")

    monkeypatch.setattr(LibraryStore, "write_manifest", disk_full)
    with pytest.raises(IndexStoreError):
        library.ingest(ZEBRAS, "zebras.txt", "alice")
    assert [d.name for d in library.documents("alice")] == ["llamas.txt"]
    assert "zebras.txt" not in names(library.search("zebras", "alice", k=5))
    assert disk_state(tmp_path / "rag") == before


def test_files_left_by_a_crash_are_ignored_and_cleaned(
    tmp_path: Path, rag_embedder: Embedder
) -> None:
    library = Library(tmp_path / "rag", rag_embedder)
    library.ingest(LLAMAS, "llamas.txt", "alice")
    segments = tmp_path / "rag" / "segments"
    (segments / "deadbeef.npz").write_bytes(b"half-written segment of a crashed ingest")
    (tmp_path / "rag" / ".manifest.json.abc.tmp").write_text("{")
    reloaded = Library(tmp_path / "rag", rag_embedder)
    assert [d.name for d in reloaded.documents("alice")] == ["llamas.txt"]
    assert not (segments / "deadbeef.npz").exists()
    assert not (tmp_path / "rag" / ".manifest.json.abc.tmp").exists()


def test_a_damaged_manifest_is_a_clear_store_error(tmp_path: Path, rag_embedder: Embedder) -> None:
    Library(tmp_path / "rag", rag_embedder).ingest(LLAMAS, "llamas.txt", "alice")
    (tmp_path / "rag" / "manifest.json").write_text("{ not json")
    with pytest.raises(IndexStoreError, match="damaged"):
        Library(tmp_path / "rag", rag_embedder)


def test_searches_run_while_another_thread_ingests(library: Library) -> None:
    library.ingest(LLAMAS, "llamas.txt", "alice")
    errors: list[BaseException] = []

    def search_loop() -> None:
        try:
            for _ in range(20):
                assert library.search("llamas", "alice", k=1)[0].document_name == "llamas.txt"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=search_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    files: list[tuple[Path | str | bytes, str]] = [
        (f"Document {i} about topic {i}.".encode(), f"d{i}.txt") for i in range(30)
    ]
    library.ingest_many(files, "alice")
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(library.documents("alice")) == 31


def test_a_missing_model_is_a_clear_error_without_the_network() -> None:
    with pytest.raises(ModelUnavailable, match="could not be loaded from local files"):
        _ = Embedder("sentence-transformers/not-in-the-cache").dimension


def test_chunks_longer_than_the_model_reads_are_refused(
    tmp_path: Path, rag_embedder: Embedder
) -> None:
    with pytest.raises(ValueError, match="chunk_tokens must be at most 254"):
        Library(tmp_path, rag_embedder, chunk_tokens=300)
