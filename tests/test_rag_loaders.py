"""Loaders: real PDF, DOCX, HTML and text files in, pages of text out, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from rag_fixtures import BAD_FILES, docx_bytes, encrypted_pdf, minimal_pdf

from rag_index.errors import (
    BinaryContent,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnreadableDocument,
    UnsupportedType,
)
from rag_index.loaders import load_document, read_upload, safe_filename


def test_pdf_text_is_extracted_per_page_with_page_numbers() -> None:
    data = minimal_pdf(
        ["Alpha page talks about (parenthesised) llamas.\nA second line.", "Beta page: zebras."]
    )
    pages = load_document(data, "report.pdf")
    assert [page.page for page in pages] == [1, 2]
    assert "llamas" in pages[0].text and "A second line." in pages[0].text
    assert "(parenthesised)" in pages[0].text
    assert pages[1].text == "Beta page: zebras."
    assert all(page.source == "report.pdf" for page in pages)


def test_blank_pdf_pages_are_skipped_but_numbering_is_kept() -> None:
    pages = load_document(minimal_pdf(["First.", "", "Third."]), "gaps.pdf")
    assert [(page.page, page.text) for page in pages] == [(1, "First."), (3, "Third.")]


def test_pdf_with_only_an_owner_password_is_readable() -> None:
    pages = load_document(encrypted_pdf(["Open to read."], user_password=""), "owner-only.pdf")
    assert pages[0].text == "Open to read."


def test_password_protected_pdf_is_refused_by_name() -> None:
    with pytest.raises(EncryptedDocument, match=r"^locked\.pdf: .*password"):
        load_document(encrypted_pdf(["Secret text."]), "locked.pdf")


@pytest.mark.parametrize(
    "data", [b"%PDF-1.4\n" + bytes(range(256)) * 4, b"just words, no pdf", minimal_pdf(["x"])[:150]]
)
def test_corrupt_pdf_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableDocument, match=r"^broken\.pdf: .*damaged"):
        load_document(data, "broken.pdf")


def test_docx_paragraphs_and_tables_in_order() -> None:
    table = [["crop", "yield"], ["wheat", "9t"]]
    data = docx_bytes("Quarterly plan", ["First we plant.", "Then we harvest."], table)
    [page] = load_document(data, "plan.docx")
    assert page.page is None
    assert page.text.split("\n\n") == [
        "Quarterly plan", "First we plant.", "Then we harvest.", "crop | yield", "wheat | 9t"
    ]


def test_html_keeps_visible_text_only_with_paragraph_breaks() -> None:
    html = b"""<html><head><title>T</title><style>p {color: red}</style></head>
    <body><script>var hidden = 1;</script><h1>Heading</h1><p>First <b>bold</b>
    paragraph.</p><p>Second<br>line.</p><noscript>no js</noscript></body></html>"""
    [page] = load_document(html, "page.html")
    assert page.text == "Heading\n\nFirst bold paragraph.\n\nSecond line."


def test_text_and_markdown_are_tidied_but_keep_paragraphs() -> None:
    raw = "# Title\r\n\r\n\r\nSome   text\there.\r\nNext line.  \n".encode()
    [page] = load_document(raw, "notes.md")
    assert page.text == "# Title\n\nSome text here.\nNext line."


def test_windows_1252_text_is_decoded() -> None:
    [page] = load_document("Caf\u00e9 \u2013 na\u00efve".encode("cp1252"), "legacy.txt")
    assert page.text == "Caf\u00e9 \u2013 na\u00efve"


def test_utf16_text_with_bom_is_decoded() -> None:
    [page] = load_document("Hello UTF-16".encode("utf-16"), "wide.txt")
    assert page.text == "Hello UTF-16"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("empty.txt", EmptyDocument),
        ("blank.md", EmptyDocument),
        ("junk.txt", BinaryContent),
        ("corrupt.pdf", UnreadableDocument),
        ("program.exe", UnsupportedType),
        ("sheet.xlsx", UnsupportedType),
        ("fake.docx", UnreadableDocument),
    ],
)
def test_bad_files_raise_a_document_error_naming_the_file(
    name: str, error: type[DocumentError]
) -> None:
    with pytest.raises(error) as raised:
        load_document(BAD_FILES[name], name)
    assert str(raised.value).startswith(f"{name}: ")
    assert raised.value.filename == name


def test_binary_with_a_text_extension_is_refused_even_without_nul_bytes() -> None:
    junk = bytes(b for b in range(1, 32) if b not in (9, 10, 12, 13)) * 20
    with pytest.raises(BinaryContent, match="binary"):
        load_document(junk, "data.txt")


def test_html_with_nul_bytes_is_refused() -> None:
    with pytest.raises(BinaryContent):
        load_document(b"<p>x</p>\x00\x00\x00", "x.html")


def test_too_large_is_refused_for_bytes_and_paths(tmp_path: Path) -> None:
    with pytest.raises(DocumentTooLarge, match=r"^big\.txt: .*limit"):
        load_document(b"a" * 101, "big.txt", max_bytes=100)
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * 101)
    with pytest.raises(DocumentTooLarge):
        read_upload(path, "big.txt", max_bytes=100)
    assert read_upload(path, "big.txt", max_bytes=101) == b"a" * 101


def test_missing_path_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="could not be opened"):
        read_upload(tmp_path / "gone.txt", "gone.txt", max_bytes=100)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("bad\x00name.txt", "badname.txt"),
        ("..hidden.md", "hidden.md"),
        ("", "unnamed"),
        ("dir/", "unnamed"),
    ],
)
def test_file_names_are_neutralised(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe
