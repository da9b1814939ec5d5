"""Uploads become their owner's documents: hostile names neutralised, limits kept, uploads deleted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chatui.errors import LimitExceeded
from chatui.limits import Limits, UserLimits
from chatui.uploads import DocumentUploads, gradio_upload_folder
from rag_index import Embedder, Library
from rag_index.errors import DocumentTooLarge, UnsupportedType

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


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """Stands in for Gradio's upload folder."""
    folder = tmp_path / "gradio"
    folder.mkdir()
    return folder


def gradio_style_upload(spool: Path, data: bytes, name: str = "upload.txt") -> Path:
    """A file where Gradio would put it: <upload folder>/<hash>/<name>."""
    folder = spool / hashlib.sha256(data).hexdigest()
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def make_uploads(tmp_path: Path, spool: Path, embedder: Embedder, **limits: int) -> DocumentUploads:
    library = Library(tmp_path / "data" / "documents", embedder, max_file_bytes=4096)
    return DocumentUploads(library, Limits(UserLimits(**limits)), upload_folder=spool)


def test_hostile_names_become_labels_and_nothing_is_written_outside_the_data_folder(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    outside_before = files_under(tmp_path) - files_under(tmp_path / "data")
    names = []
    for number, (hostile, expected) in enumerate(HOSTILE_NAMES.items()):
        path = gradio_style_upload(spool, f"Document {number} about tide pools.".encode())
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
    good = gradio_style_upload(spool, b"A note about lighthouses.", "good.txt")
    uploads.add(good, "good.txt", "alice")
    too_big = gradio_style_upload(spool, b"x" * 5000, "big.txt")
    with pytest.raises(DocumentTooLarge):
        uploads.add(too_big, "big.txt", "alice")
    unsupported = gradio_style_upload(spool, b"MZ binary", "tool.exe")
    with pytest.raises(UnsupportedType):
        uploads.add(unsupported, "tool.exe", "alice")
    assert list(spool.iterdir()) == []  # files and their <hash> folders are gone

    elsewhere = tmp_path / "mine.txt"  # not in the upload folder: read, never deleted
    elsewhere.write_text("A note about harbours.")
    uploads.add(elsewhere, "mine.txt", "alice")
    assert elsewhere.exists()


def test_documents_limit_per_user(tmp_path: Path, spool: Path, rag_embedder: Embedder) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder, max_documents=2)
    for number in range(2):
        uploads.add(gradio_style_upload(spool, f"Alice note {number}.".encode()), "a.txt", "alice")
    third = gradio_style_upload(spool, b"Alice note 2.")
    with pytest.raises(LimitExceeded, match="no more can be added"):
        uploads.add(third, "c.txt", "alice")
    assert not third.exists()
    assert len(uploads.library.documents("alice")) == 2
    pair = [(gradio_style_upload(spool, f"Bob note {n}.".encode()), f"b{n}.txt") for n in range(3)]
    with pytest.raises(LimitExceeded, match="only 2 more"):
        uploads.add_many(pair, "bob")
    assert uploads.library.document_count("bob") == 0
    assert uploads.add(gradio_style_upload(spool, b"Bob note again."), "b.txt", "bob")
    assert uploads.library.document_count("bob") == 1  # one user's limit is not another's


def test_a_users_documents_reach_only_their_own_searches(
    tmp_path: Path, spool: Path, rag_embedder: Embedder
) -> None:
    uploads = make_uploads(tmp_path, spool, rag_embedder)
    secret = b"The vault code of the Harbour Street bakery is 4711."
    uploads.add(gradio_style_upload(spool, secret), "vault.txt", "alice")
    assert [h.document_name for h in uploads.library.search("vault code bakery", "alice")] == [
        "vault.txt"]
    assert uploads.library.search("vault code bakery", "bob") == []
    assert uploads.library.documents("bob") == []


def test_the_upload_folder_is_gradios() -> None:
    from gradio.utils import get_upload_folder

    assert gradio_upload_folder() == Path(get_upload_folder())
