"""Text of a Word (.docx) file, read as a stream with hard limits on what it may unpack to.

A .docx is a zip of XML parts. A small upload can unpack to far more (a 58 kB
file held 200,000 paragraphs and took python-docx minutes and 0.5 GB), so this
reader never builds the document: it checks the zip's directory first (how many
parts, their declared sizes), then feeds the main part to expat in blocks,
counting the bytes actually unpacked, and stops as soon as a limit is passed.

What is read matches python-docx's ``Document.iter_inner_content()``: the
body's paragraphs (the text of their runs and hyperlinks; tab, line break and
no-break hyphen as characters) and tables, one block per row with the cells'
texts joined by `` | ``. Unlike python-docx, a merged cell is read once, not
once per grid column or row it spans.

Invariants:
- Nothing is unpacked before the zip directory passed its checks; at most
  ``max_docx_xml_bytes`` of the main part is ever unpacked, whatever the
  headers say, and only deflate or stored parts are read.
- A DOCTYPE (and so any entity declaration) is refused: Word never writes
  one, and entities are how XML "billion laughs" bombs expand.
- Every refusal is a ``DocumentError`` naming the file.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from pyexpat import ExpatError, ParserCreate
from typing import Any

from .errors import DocumentError, UnreadableDocument
from .budget import TextBudget, TextLimits, human_size, too_much

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main "
_REL = "http://schemas.openxmlformats.org/package/2006/relationships "
_OFFICE_DOCUMENT = "/officeDocument"
_RUN_TEXT = {_W + "tab": "\t", _W + "ptab": "\t", _W + "cr": "\n", _W + "noBreakHyphen": "-"}
_READ_BLOCK = 64 * 1024
_MAX_RELS_BYTES = 1024 * 1024
_MAX_DEPTH = 512
_DAMAGED = "the file is damaged or not a Word (.docx) document."


def docx_blocks(data: bytes, filename: str, limits: TextLimits, budget: TextBudget) -> list[str]:
    """Paragraph and table-row texts of the document body, in order."""
    try:
        if data.count(b"PK\x01\x02") > limits.max_docx_parts:  # central directory entries
            raise too_much(filename, f"too many parts (over {limits.max_docx_parts:,})")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            main = _check_archive(archive, filename, limits)
            reader = _BodyReader(filename, limits, budget)
            _parse(archive, main, limits.max_docx_xml_bytes, filename, reader.parser())
            if not reader.saw_document:
                raise UnreadableDocument(filename, _DAMAGED)
            return reader.blocks
    except DocumentError:
        raise
    except (zipfile.BadZipFile, ExpatError, KeyError, NotImplementedError, RuntimeError,
            OSError, EOFError, ValueError, zlib.error) as exc:
        raise UnreadableDocument(filename, _DAMAGED) from exc


def _check_archive(archive: zipfile.ZipFile, filename: str, limits: TextLimits) -> zipfile.ZipInfo:
    """The main document part, once the declared sizes of all parts are within limits."""
    infos = archive.infolist()
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_docx_unpacked_bytes:
        raise too_much(filename, _unpacks_to(unpacked, limits.max_docx_unpacked_bytes))
    main = archive.getinfo(_main_part_name(archive, filename))
    if main.file_size > limits.max_docx_xml_bytes:
        raise too_much(filename, _unpacks_to(main.file_size, limits.max_docx_xml_bytes))
    return main


def _main_part_name(archive: zipfile.ZipFile, filename: str) -> str:
    """Where ``_rels/.rels`` says the document is (usually ``word/document.xml``)."""
    targets: list[str] = []

    def relationship(name: str, attributes: dict[str, str]) -> None:
        if name == _REL + "Relationship" and attributes.get("Type", "").endswith(_OFFICE_DOCUMENT):
            targets.append(attributes.get("Target", ""))

    parser = _safe_parser(filename)
    parser.StartElementHandler = relationship
    _parse(archive, archive.getinfo("_rels/.rels"), _MAX_RELS_BYTES, filename, parser)
    if not targets:
        raise UnreadableDocument(filename, _DAMAGED)
    return posixpath.normpath(targets[0]).lstrip("/")


def _parse(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, filename: str, parser: Any
) -> None:
    """Feed one part to ``parser``, refusing it once more than ``cap`` bytes came out."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UnreadableDocument(filename, _DAMAGED)  # bzip2/lzma: Word never uses them
    unpacked = 0
    with archive.open(info) as member:
        while block := member.read(_READ_BLOCK):
            unpacked += len(block)
            if unpacked > cap:  # the header lied (zipfile trusts it only so far)
                raise too_much(filename, _unpacks_to(unpacked, cap, more=True))
            parser.Parse(block, False)
    parser.Parse(b"", True)


def _safe_parser(filename: str) -> Any:
    """An expat parser with namespaces that refuses any DOCTYPE, so any entity."""

    def refuse(*_: object) -> None:
        reason = "the document declares XML entities, which Word never does; it cannot be read."
        raise UnreadableDocument(filename, reason)

    parser = ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    return parser


class _BodyReader:
    """Expat handlers collecting the body's blocks; tracks only the element path."""

    def __init__(self, filename: str, limits: TextLimits, budget: TextBudget) -> None:
        self.filename = filename
        self.max_paragraphs = limits.max_docx_paragraphs
        self.budget = budget
        self.blocks: list[str] = []
        self.saw_document = False
        self._path: list[str] = []
        self._paragraphs = 0
        self._paragraph_at: int | None = None  # depth of the block paragraph being read
        self._runs: list[str] = []  # text of that paragraph so far
        self._in_text = False
        self._row: list[str] | None = None  # cell texts of the table row being read
        self._cell: list[str] | None = None  # paragraph texts of the cell being read

    def parser(self) -> Any:
        parser = _safe_parser(self.filename)
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        return parser

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        path = self._path
        path.append(name)
        depth = len(path)
        if depth == 1:
            self.saw_document = name == _W + "document"
        if depth > _MAX_DEPTH:
            raise UnreadableDocument(self.filename, _DAMAGED)
        if self._paragraph_at is not None:
            self._run_item(name, attributes, path[self._paragraph_at :])
        elif name == _W + "p" and self._is_block_paragraph(path):
            self._paragraphs += 1
            if self._paragraphs > self.max_paragraphs:
                what = f"too many paragraphs (over {self.max_paragraphs:,})"
                raise too_much(self.filename, what)
            self._paragraph_at = depth
            self._runs = []
        elif name == _W + "tr" and path[:-1] == [_W + "document", _W + "body", _W + "tbl"]:
            self._row = []
        elif name == _W + "tc" and self._row is not None and depth == 5:
            self._cell = []  # a merged cell's continuations are empty paragraphs

    def _run_item(self, name: str, attributes: dict[str, str], inside: list[str]) -> None:
        """A run's child (``inside``: the path below the paragraph, ending with ``name``)."""
        if inside[:-1] != [_W + "r"] and inside[:-1] != [_W + "hyperlink", _W + "r"]:
            return
        if name == _W + "t":
            self._in_text = True
        elif name == _W + "br":
            if attributes.get(_W + "type", "textWrapping") == "textWrapping":
                self._add("\n")
        elif name in _RUN_TEXT:
            self._add(_RUN_TEXT[name])

    def _text(self, text: str) -> None:
        if self._in_text:
            self._add(text)

    def _add(self, text: str) -> None:
        self.budget.take(len(text))
        self._runs.append(text)

    def _end(self, name: str) -> None:
        depth = len(self._path)
        self._path.pop()
        if self._in_text and name == _W + "t":
            self._in_text = False
        elif depth == self._paragraph_at:
            self._paragraph_at = None
            text = "".join(self._runs)
            if self._cell is not None:
                self._cell.append(text)
            else:
                self._block(text)
        elif name == _W + "tc" and depth == 5 and self._cell is not None and self._row is not None:
            self._row.append("\n".join(self._cell).strip())
            self._cell = None
        elif name == _W + "tr" and depth == 4 and self._row is not None:
            self._block(" | ".join(cell for cell in self._row if cell))
            self._row = None

    def _block(self, text: str) -> None:
        self.budget.take(2)  # the blank line between blocks
        self.blocks.append(text)

    def _is_block_paragraph(self, path: list[str]) -> bool:
        """A body paragraph, or a paragraph directly in a cell of a body table."""
        parents = path[:-1]
        return parents == [_W + "document", _W + "body"] or (
            self._cell is not None and len(parents) == 5 and parents[-1] == _W + "tc"
        )


def _unpacks_to(size: int, limit: int, *, more: bool = False) -> str:
    shown = f"more than {human_size(limit)}" if more else human_size(size)
    return f"it unpacks to {shown} (the limit is {human_size(limit)})"
