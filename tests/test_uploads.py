"""Uploads become their owner's documents: only files uploaded for them, hostile names
neutralised, limits kept, uploads deleted (and nothing outside the upload folder ever is)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatui.errors import LimitExceeded
from chatui.limits import Limits, UserLimits
from chatui.uploads import MAX_WAITING, DocumentUploads, NotUploaded, gradio_upload_folder
from rag_index import Embedder, IngestBatch, IngestFailure, IngestResult, Library
from rag_index.errors import DocumentTooLarge, UnsupportedType
from tests.apiharness import wait_until

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture

HOSTILE_NAMES = {
    "../../etc/passwd.txt": "passwd.txt",
    "/etc/cron.d/evil.md": "evil.md",
    "..\\..\\windows\\win.ini.txt": "win.ini.txt",
    "C:\\Users\\me\\notes.txt": "notes.txt",
    "nul\x00byte.txt": "nulbyte.txt",
    "..": "unnamed",
    "....//....//x.txt": "x.txt",
}
SECRET = b"alice:token-alice-0123456789\nbob:token-bob-0123456789\n"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """Stands in for Gradio's upload folder."""
    folder = tmp_path / "gradio"
    folder.mkdir()
    return folder


def gradio_style_file(spool: Path, data: bytes, name: str = "upload.txt") -> Path:
    """A file where Gradio would put it: <upload folder>/<hash>/<name>."""
    folder = spool / hashlib.sha256(name.encode() + data).hexdigest()
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def uploaded(uploads: DocumentUploads, spool: Path, data: bytes, name: str = "upload.txt",
             owner: str = "alice") -> Path:
    """What Gradio's upload route does for ``owner``: write the file, hand out its path."""
    path = gradio_style_file(spool, data, name)
    uploads.receive(owner, [path])
    return path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def make_uploads(tmp_path: Path, spool: Path, embedder: Embedder, **limits: int) -> DocumentUploads:
    library = Library(tmp_path / "data" / "documents", embedder, max_file_bytes=4096)
    return DocumentUploads(library, Limits(UserLimits(**limits)), upload_folder=spool)


# ----- only what was uploaded for this owner ----------------------------------------------------


def _outside(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    return str(tmp_path / "tokens.txt")


def _dot_dot(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    (spool / "abc").mkdir()
    return f"{spool}/abc/../../tokens.txt"  # starts in the upload folder, ends outside


def _link_to_outside(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    link = spool / "abc" / "notes.txt"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "tokens.txt")
    uploads.receive("bob", [link])  # even a link the route would have handed out
    return str(link)


def _through_linked_folder(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    (spool / "abc").symlink_to(tmp_path, target_is_directory=True)
    return str(spool / "abc" / "tokens.txt")


def _link_to_someone_elses_upload(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    theirs = uploaded(uploads, spool, SECRET, "their-notes.txt", owner="alice")
    link = spool / "mine" / "notes.txt"
    link.parent.mkdir()
    link.symlink_to(theirs)
    return str(link)


def _someone_elses_upload(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    return str(uploaded(uploads, spool, SECRET, "their-notes.txt", owner="alice"))


def _in_the_folder_never_handed_out(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    # What Gradio does with a forged path when its own check is off: copies it in.
    return str(gradio_style_file(spool, SECRET, "tokens.txt"))


def _the_upload_folder_itself(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    uploads.receive("bob", [spool])
    return str(spool)


def _a_folder_inside(tmp_path: Path, spool: Path, uploads: DocumentUploads) -> str:
    (spool / "abc").mkdir()
    uploads.receive("bob", [spool / "abc"])
    return str(spool / "abc")


ATTACKS: dict[str, Callable[[Path, Path, DocumentUploads], str]] = {
    "a file outside the upload folder": _outside,
    "a path with ..": _dot_dot,
    "a symlink to a file outside": _link_to_outside,
    "a symlinked folder": _through_linked_folder,
    "a symlink to someone else's upload": _link_to_someone_elses_upload,
    "someone else's upload": _someone_elses_upload,
    "a file in the folder nobody was handed": _in_the_folder_never_handed_out,
    "the upload folder itself": _the_upload_folder_itself,
    "a folder inside it": _a_folder_inside,
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_path_not_uploaded_for_this_owner_is_refused_by_name_and_not_read(
    tmp_path: Path, spool: Path, rag_embedder: Embedder, attack: str
) -> None:
    secret = tmp_path / "tokens.txt"
    secret.write_bytes(SECRET)
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    path = ATTACKS[attack](tmp_path, spool, uploads)
    alices_before = {p: p.read_bytes() for p in files_under(spool)
                     if p.name == "their-notes.txt"}

    with pytest.raises(NotUploaded) as refused:
        uploads.add(path, "notes.txt", "bob")
    assert str(refused.value) == (
        "notes.txt: was not uploaded through this page, so it was not read.")
    assert uploads.library.chunk_count == 0
    assert uploads.library.search("token alice bob", "bob") == []
    assert secret.read_bytes() == SECRET  # never deleted, never changed
    for theirs, data in alices_before.items():  # someone else's upload is left to them
        assert theirs.read_bytes() == data
        assert uploads.add(theirs, "their-notes.txt", "alice").chunk_count == 1
    if attack == "a file in the folder nobody was handed":
        assert not Path(path).exists()  # a stray copy in the served folder goes


def test_a_refused_file_leaves_the_others_of_its_batch_alone(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    (tmp_path / "tokens.txt").write_bytes(SECRET)
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    good = uploaded(uploads, spool, b"A note about lighthouses.", "good.txt", owner="bob")
    batch = uploads.add_many(
        [(tmp_path / "tokens.txt", "tokens.txt"), (good, "good.txt")], "bob")
    forged, indexed = batch.outcomes
    assert isinstance(forged, IngestFailure) and isinstance(forged.error, NotUploaded)
    assert forged.name == "tokens.txt"
    assert isinstance(indexed, IngestResult) and indexed.name == "good.txt"
    assert [d.name for d in uploads.library.documents("bob")] == ["good.txt"]


def test_an_upload_is_used_once_and_real_paths_are_compared(
    tmp_path: Path, rag_embedder: Embedder
) -> None:
    real_spool = tmp_path / "real-gradio"
    real_spool.mkdir()
    linked_spool = tmp_path / "gradio"
    linked_spool.symlink_to(real_spool, target_is_directory=True)  # like /tmp -> /private/tmp
    uploads = make_uploads(tmp_path, linked_spool, rag_embedder)
    path = uploaded(uploads, linked_spool, b"A note about harbours.", "harbour.txt")
    spelled_otherwise = real_spool / path.relative_to(linked_spool)
    assert uploads.add(spelled_otherwise, "harbour.txt", "alice").chunk_count == 1
    assert files_under(real_spool) == set()
    path.parent.mkdir()
    path.write_bytes(b"Written again at the same place, never handed out again.")
    with pytest.raises(NotUploaded):
        uploads.add(path, "harbour.txt", "alice")


def test_two_owners_uploading_the_same_file_each_get_it(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    alices = uploaded(uploads, spool, b"The same leaflet.", "leaflet.txt", owner="alice")
    bobs = uploaded(uploads, spool, b"The same leaflet.", "leaflet.txt", owner="bob")
    assert alices == bobs  # Gradio names an upload by its content
    uploads.add(alices, "leaflet.txt", "alice")
    assert bobs.exists()  # bob's upload is still waiting for his event
    uploads.add(bobs, "leaflet.txt", "bob")
    assert not bobs.exists()
    assert uploads.library.document_count("alice") == uploads.library.document_count("bob") == 1


def test_uploads_no_event_claimed_are_swept(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    now = [1000.0]
    library = Library(tmp_path / "data" / "documents", rag_embedder, max_file_bytes=4096)
    uploads = DocumentUploads(library, Limits(UserLimits()), upload_folder=spool,
                              stale_after=600, clock=lambda: now[0])
    cancelled = uploaded(uploads, spool, b"An upload whose event was cancelled.", "a.txt")
    now[0] += 599
    fresh = uploaded(uploads, spool, b"An upload about to be indexed.", "b.txt")
    assert uploads.sweep() == 0 and cancelled.exists()
    now[0] += 2
    uploads.sweep_due()  # the last sweep was under a minute ago: nothing yet
    assert cancelled.exists()
    now[0] += 60
    uploads.sweep_due()
    assert not cancelled.exists() and not cancelled.parent.exists()
    assert fresh.exists()
    with pytest.raises(NotUploaded):
        uploads.add(cancelled, "a.txt", "alice")
    assert uploads.add(fresh, "b.txt", "alice").chunk_count == 1
    assert files_under(spool) == set()


def test_one_owners_uploads_wait_for_each_other_not_for_anyone_else(
    tmp_path: Path, spool: Path, rag_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    release = threading.Event()
    started: list[str] = []
    ingest_many = uploads.library.ingest_many

    def slow_for_alice(files: Any, owner: str, *args: Any, **kwargs: Any) -> IngestBatch:
        started.append(owner)
        if owner == "alice":  # a big file: alice's indexing takes its time
            release.wait(timeout=60)
        return ingest_many(files, owner, *args, **kwargs)

    monkeypatch.setattr(uploads.library, "ingest_many", slow_for_alice)
    alices = [uploaded(uploads, spool, f"Alice's note {n}.".encode(), f"a{n}.txt")
              for n in range(MAX_WAITING + 2)]
    threads = [threading.Thread(target=uploads.add, args=(path, path.name, "alice"))
               for path in alices[:-1]]  # one indexes, MAX_WAITING wait their turn
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: started == ["alice"] and uploads._waiting["alice"] == len(threads))
        with pytest.raises(LimitExceeded, match="already adding documents"):
            uploads.add(alices[-1], "one-too-many.txt", "alice")
        assert not alices[-1].exists()
        bobs = uploaded(uploads, spool, b"Bob's note about the harbour.", "b.txt", owner="bob")
        assert uploads.add(bobs, "b.txt", "bob").chunk_count == 1  # not behind alice's
        assert started == ["alice", "bob"]
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=60)
    assert uploads.library.document_count("alice") == len(threads)
    assert started == ["alice", "bob", *["alice"] * (len(threads) - 1)]


# ----- names, deletion, limits -----------------------------------------------------------------


def test_hostile_names_become_labels_and_nothing_is_written_outside_the_data_folder(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    outside_before = files_under(tmp_path) - files_under(tmp_path / "data")
    names = []
    for number, (hostile, expected) in enumerate(HOSTILE_NAMES.items()):
        path = uploaded(uploads, spool, f"Document {number} about tide pools.".encode())
        suffix = expected.rsplit(".", 1)[-1] if "." in expected else "txt"
        if expected == "unnamed":
            with pytest.raises(UnsupportedType):  # no extension left: refused, not written
                uploads.add(path, hostile, "alice")
            continue
        result = uploads.add(path, hostile, "alice")
        assert result.name == expected, hostile
        assert suffix in result.name
        names.append(result.name)
    assert sorted(d.name for d in uploads.library.documents("alice")) == sorted(names)
    outside_after = files_under(tmp_path) - files_under(tmp_path / "data")
    assert outside_after <= outside_before  # only the uploads went (deleted), nothing came
    assert not Path("/etc/cron.d/evil.md").exists()
    for written in files_under(tmp_path / "data"):
        assert written.resolve().is_relative_to((tmp_path / "data" / "documents").resolve())
        assert "passwd" not in written.name and "evil" not in written.name


def test_the_upload_is_deleted_whether_it_was_indexed_or_refused(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    good = uploaded(uploads, spool, b"A note about lighthouses.", "good.txt")
    uploads.add(good, "good.txt", "alice")
    too_big = uploaded(uploads, spool, b"x" * 5000, "big.txt")
    with pytest.raises(DocumentTooLarge):
        uploads.add(too_big, "big.txt", "alice")
    unsupported = uploaded(uploads, spool, b"MZ binary", "tool.exe")
    with pytest.raises(UnsupportedType):
        uploads.add(unsupported, "tool.exe", "alice")
    assert list(spool.iterdir()) == []  # files and their <hash> folders are gone

    elsewhere = tmp_path / "mine.txt"  # not in the upload folder: refused, never deleted
    elsewhere.write_text("A note about harbours.")
    with pytest.raises(NotUploaded):
        uploads.add(elsewhere, "mine.txt", "alice")
    assert elsewhere.exists()
    link = spool / "abc" / "mine.txt"  # a link in the folder to it: the target stays
    link.parent.mkdir()
    link.symlink_to(elsewhere)
    uploads.discard(link, "alice")
    assert elsewhere.read_text() == "A note about harbours."


def test_documents_limit_per_user(tmp_path: Path, spool: Path, rag_embedder: Embedder) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder, max_documents=2)
    for number in range(2):
        uploads.add(uploaded(uploads, spool, f"Alice note {number}.".encode()), "a.txt", "alice")
    third = uploaded(uploads, spool, b"Alice note 2.")
    with pytest.raises(LimitExceeded, match="no more can be added"):
        uploads.add(third, "c.txt", "alice")
    assert not third.exists()
    assert len(uploads.library.documents("alice")) == 2
    pair = [(uploaded(uploads, spool, f"Bob note {n}.".encode(), owner="bob"), f"b{n}.txt")
            for n in range(3)]
    with pytest.raises(LimitExceeded, match="only 2 more"):
        uploads.add_many(pair, "bob")
    assert uploads.library.document_count("bob") == 0
    assert uploads.add(uploaded(uploads, spool, b"Bob note again.", owner="bob"), "b.txt", "bob")
    assert uploads.library.document_count("bob") == 1  # one user's limit is not another's


def test_a_users_documents_reach_only_their_own_searches(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    secret = b"The vault code of the Harbour Street bakery is 4711."
    uploads.add(uploaded(uploads, spool, secret), "vault.txt", "alice")
    assert [h.document_name for h in uploads.library.search("vault code bakery", "alice")] == [
        "vault.txt"]
    assert uploads.library.search("vault code bakery", "bob") == []
    assert uploads.library.documents("bob") == []


def test_the_upload_folder_is_gradios() -> None:
    from gradio.utils import get_upload_folder

    assert gradio_upload_folder() == Path(os.path.realpath(get_upload_folder()))
