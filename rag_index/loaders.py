"""Turn the bytes of an uploaded file into pages of plain text.

Supported: ``.txt``, ``.md``/``.markdown`` (read as text), ``.pdf`` (pypdf, one
``Page`` per PDF page, numbered from 1), ``.html``/``.htm`` (visible text only,
via BeautifulSoup) and ``.docx`` (paragraphs and tables, via python-docx).

Invariants:
- Every failure is a ``DocumentError`` subclass naming the file; nothing else
  escapes ``load_document`` for bad input.
- A returned list is never empty and no ``Page`` has blank text; paragraphs are
  separated by one blank line (the chunker cuts there first).
- File names are neutralised by ``safe_filename`` before they appear anywhere.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    BinaryContent,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnreadableDocument,
    UnsupportedType,
)

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | {".pdf", ".docx"}

_BLOCK_TAGS = (
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
    "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd",
    "table", "tr", "blockquote", "pre", "figure", "figcaption", "hr", "address",
)
_HIDDEN_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_SPACES = re.compile(r"[^\S\n]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# C0 controls other than tab, newline, vertical tab, form feed, carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Page:
    """Text of one page (PDF) or of a whole document (other types, ``page=None``)."""

    source: str
    page: int | None
    text: str


def safe_filename(name: str) -> str:
    """The last path part of ``name`` with NULs, controls and odd dots removed."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    name = _CONTROL.sub("", name).replace("\x00", "").strip().lstrip(".")
    return name[:200] or "unnamed"


def read_upload(source: Path | str | bytes, filename: str, max_bytes: int) -> bytes:
    """Bytes of an upload given as a path or as bytes, refusing files over ``max_bytes``."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            size = os.stat(source).st_size
            if size > max_bytes:
                raise _too_large(filename, size, max_bytes)
            with open(source, "rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            reason = f"the file could not be opened ({exc.strerror})."
            raise UnreadableDocument(filename, reason) from exc
    if len(data) > max_bytes:
        raise _too_large(filename, len(data), max_bytes)
    return data


def load_document(data: bytes, filename: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Page]:
    """Pages of text in ``data``; ``filename`` (already safe) picks the reader."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        shown = extension or "no extension"
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UnsupportedType(
            filename, f"files of type {shown!r} cannot be read; supported: {supported}."
        )
    if len(data) > max_bytes:
        raise _too_large(filename, len(data), max_bytes)
    if not data.strip():
        raise EmptyDocument(filename, "the file is empty.")
    if extension == ".pdf":
        pages = _pdf_pages(data, filename)
    elif extension == ".docx":
        pages = [Page(filename, None, _docx_text(data, filename))]
    elif extension in HTML_EXTENSIONS:
        pages = [Page(filename, None, _html_text(data, filename))]
    else:
        pages = [Page(filename, None, _tidy(_decode_text(data, filename)))]
    pages = [page for page in pages if page.text]
    if not pages:
        raise EmptyDocument(
            filename, "no text was found in the file (a scanned PDF needs OCR first)."
        )
    return pages


def _too_large(filename: str, size: int, limit: int) -> DocumentTooLarge:
    return DocumentTooLarge(filename, f"the file is {_human(size)}; the limit is {_human(limit)}.")


def _human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _decode_text(data: bytes, filename: str) -> str:
    """Decode a text file, refusing binary data that merely has a text extension."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BinaryContent(filename, "the file is not valid UTF-16 text.") from exc
    if b"\x00" in data:
        raise BinaryContent(filename, "the file contains binary data, not text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            reason = "the file is neither UTF-8 nor Windows-1252 text."
            raise BinaryContent(filename, reason) from exc
    if len(_CONTROL.findall(text)) > max(2, len(text) // 200):
        raise BinaryContent(filename, "the file contains binary data, not text.")
    return text


def _tidy(text: str) -> str:
    """Normalise line ends and spaces; keep blank lines as paragraph breaks."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _PARAGRAPH_BREAK.sub("\n\n", "\n".join(lines)).strip()


def _pdf_pages(data: bytes, filename: str) -> list[Page]:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            reason = "the PDF is password-protected; upload an unprotected copy."
            raise EncryptedDocument(filename, reason)
        texts = [page.extract_text() or "" for page in reader.pages]
    except EncryptedDocument:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        message = "the PDF is encrypted and cannot be read; upload an unprotected copy."
        raise EncryptedDocument(filename, message) from exc
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, ...)
        raise UnreadableDocument(filename, "the PDF is damaged or not a PDF file.") from exc
    return [Page(filename, number, _tidy(text)) for number, text in enumerate(texts, start=1)]


def _docx_text(data: bytes, filename: str) -> str:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [cell.text.strip() for cell in row.cells]
                    blocks.append(" | ".join(cell for cell in cells if cell))
            else:
                blocks.append(item.text)
    except Exception as exc:  # zipfile, lxml and python-docx errors alike
        reason = "the file is damaged or not a Word (.docx) document."
        raise UnreadableDocument(filename, reason) from exc
    return _tidy("\n\n".join(blocks))


def _html_text(data: bytes, filename: str) -> str:
    from bs4 import BeautifulSoup

    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BinaryContent(filename, "the file contains binary data, not HTML.")
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup.find_all(_HIDDEN_TAGS):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    # Inside a block, source line breaks are just spaces; blank-line markers survive.
    paragraphs = _PARAGRAPH_BREAK.split(soup.get_text())
    return _tidy("\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs))
