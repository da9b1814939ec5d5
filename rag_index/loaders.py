"""Turn the bytes of an uploaded file into pages of plain text.

Supported: ``.txt``, ``.md``/``.markdown`` (read as text), ``.pdf`` (pypdf, one
``Page`` per PDF page, numbered from 1), ``.html``/``.htm`` (visible text only,
via BeautifulSoup) and ``.docx`` (paragraphs and tables,
streamed by ``docx_reader`` the way python-docx reads them).

Invariants:
- Every failure is a ``DocumentError`` subclass naming the file; nothing else
  escapes ``load_document`` for bad input.
- A returned list is never empty and no ``Page`` has blank text; paragraphs are
  separated by one blank line (the chunker cuts there first).
- File names are neutralised by ``safe_filename`` before they appear anywhere.
- What a file may unpack to is bounded by ``TextLimits`` (characters, PDF
  pages, HTML bytes and tags, DOCX parts, sizes and paragraphs), and the
  readers stop as soon as a limit is passed rather than after building the
  whole text: a small file must not cost the server minutes or gigabytes.
  A file over a limit raises ``TooMuchText`` saying what to do.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .budget import (
    DEFAULT_LIMITS,
    TextBudget,
    TextLimits,
    human_size,
    too_much,
)
from .errors import (
    BinaryContent,
    DocumentError,
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


def load_document(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: TextLimits = DEFAULT_LIMITS,
) -> list[Page]:
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
    budget = TextBudget(filename, limits.max_chars)
    if extension == ".pdf":
        pages = _pdf_pages(data, filename, limits, budget)
    elif extension == ".docx":
        pages = [Page(filename, None, _docx_text(data, filename, limits, budget))]
    elif extension in HTML_EXTENSIONS:
        pages = [Page(filename, None, _html_text(data, filename, limits, budget))]
    else:
        text = _decode_text(data, filename)
        budget.take(len(text))
        pages = [Page(filename, None, _tidy(text))]
    pages = [page for page in pages if page.text]
    if not pages:
        raise EmptyDocument(
            filename, "no text was found in the file (a scanned PDF needs OCR first)."
        )
    return pages


def _too_large(filename: str, size: int, limit: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        filename, f"the file is {human_size(size)}; the limit is {human_size(limit)}."
    )


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


def _pdf_pages(
    data: bytes, filename: str, limits: TextLimits, budget: TextBudget
) -> list[Page]:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            reason = "the PDF is password-protected; upload an unprotected copy."
            raise EncryptedDocument(filename, reason)
        tree = reader.root_object["/Pages"].get_object()
        _check_page_count(tree.get("/Count") if isinstance(tree, dict) else None, filename, limits)
        _check_page_count(len(reader.pages), filename, limits)  # the page tree, not its claim
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text(visitor_text=_PageBudget(budget)) or ""
            budget.take(len(text))
            pages.append(Page(filename, number, _tidy(text)))
    except DocumentError:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        message = "the PDF is encrypted and cannot be read; upload an unprotected copy."
        raise EncryptedDocument(filename, message) from exc
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, ...)
        raise UnreadableDocument(filename, "the PDF is damaged or not a PDF file.") from exc
    return pages


class _PageBudget:
    """pypdf's ``visitor_text``: stops extracting a page once the file's budget is spent."""

    def __init__(self, budget: TextBudget) -> None:
        self.budget = budget
        self.seen = 0

    def __call__(self, text: str, *_: object) -> None:
        self.seen += len(text)
        if self.budget.used + self.seen > self.budget.max_chars:
            self.budget.take(self.seen)  # raises TooMuchText


def _check_page_count(count: object, filename: str, limits: TextLimits) -> None:
    if isinstance(count, int) and count > limits.max_pdf_pages:
        raise too_much(filename, f"too many pages (over {limits.max_pdf_pages:,})")


def _docx_text(data: bytes, filename: str, limits: TextLimits, budget: TextBudget) -> str:
    from .docx_reader import docx_blocks

    return _tidy("\n\n".join(docx_blocks(data, filename, limits, budget)))


def _html_text(data: bytes, filename: str, limits: TextLimits, budget: TextBudget) -> str:
    from bs4 import BeautifulSoup

    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BinaryContent(filename, "the file contains binary data, not HTML.")
    if len(data) > limits.max_html_bytes:
        size, limit = human_size(len(data)), human_size(limits.max_html_bytes)
        raise too_much(filename, f"the page is {size} of HTML (the limit is {limit})")
    if data.count(b"<") - data.count(b"</") > limits.max_html_tags:  # BeautifulSoup's cost
        raise too_much(filename, f"too many HTML elements (over {limits.max_html_tags:,})")
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
    budget.take(sum(map(len, paragraphs)))
    return _tidy("\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs))
