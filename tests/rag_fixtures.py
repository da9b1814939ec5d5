"""Shared helpers for the rag_index tests: real files built in memory, one real model.

Test modules load this file as a plugin (``pytest_plugins = ["rag_fixtures"]``)
for the session-scoped ``rag_embedder`` fixture: one real model per session,
without touching ``tests/conftest.py``. The helpers are imported directly.
"""

from __future__ import annotations

import functools
import io
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_index import Embedder  # noqa: E402


@functools.cache
def shared_embedder() -> Embedder:
    embedder = Embedder()
    embedder.encode(["warm up"])
    return embedder


@pytest.fixture(scope="session")
def rag_embedder() -> Embedder:
    return shared_embedder()


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one Helvetica text page per string ('\\n' starts a new line)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for i, text in enumerate(pages):
        page_no, content_no = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page_no} 0 R")
        lines = "".join(f"({escape(line)}) Tj T* " for line in text.split("\n"))
        stream = f"BT /F1 11 Tf 14 TL 72 720 Td {lines}ET".encode("latin-1")
        objects[page_no] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_no} 0 R >>"
        ).encode()
        objects[content_no] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def encrypted_pdf(pages: list[str], user_password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def docx_bytes(heading: str, paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


BAD_FILES: dict[str, bytes] = {
    "empty.txt": b"",
    "blank.md": b"  \n\n \t ",
    "junk.txt": bytes(range(256)) * 8,
    "corrupt.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 4,
    "program.exe": b"MZ\x90\x00 not a document",
    "sheet.xlsx": b"PK\x03\x04 spreadsheet",
    "fake.docx": b"this is not a zip archive",
}
"""Files every ingest path must reject with a DocumentError, keyed by file name."""
