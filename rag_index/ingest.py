"""Uploads to embeddable chunks: read, hash, parse, chunk. No index state here.

Invariants:
- Everything that can reject a file happens here, before anything is
  embedded or stored; a ``DocumentError`` from this module leaves no trace.
- A file refused for its size or text (``TooMuchText``) or for its chunks
  (``over_chunk_limits``) is refused alone; the others in its batch go on.
- ``sha256`` is of the uploaded bytes, so identical files are recognised
  whatever they are called.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .chunker import Chunk, Chunker
from .errors import DocumentError, LibraryFull
from .budget import DEFAULT_LIMITS, TextLimits, too_much
from .loaders import Page, load_document, read_upload, safe_filename

Upload = tuple[Path | str | bytes, str]
"""A file to ingest: its path or its bytes, and the name the user gave it."""


@dataclass(frozen=True, slots=True)
class RawUpload:
    name: str
    data: bytes  # Library empties it once parsed, to free memory in big batches
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    name: str
    sha256: str
    size_bytes: int
    pages: int
    chunks: tuple[Chunk, ...]


def read(source: Path | str | bytes, filename: str, max_bytes: int) -> RawUpload:
    """The upload's bytes and content hash; raises ``DocumentError`` if unusable."""
    name = safe_filename(filename)
    data = read_upload(source, name, max_bytes)
    return RawUpload(name, data, hashlib.sha256(data).hexdigest(), len(data))


def parse(upload: RawUpload, max_bytes: int, limits: TextLimits = DEFAULT_LIMITS) -> list[Page]:
    """The upload's pages of text; raises ``DocumentError`` if unreadable or too much."""
    return load_document(upload.data, upload.name, max_bytes=max_bytes, limits=limits)


def chunk(
    uploads: Sequence[RawUpload], pages: Sequence[list[Page]], chunker: Chunker
) -> list[PreparedDocument]:
    """Chunk several parsed uploads in one tokenizer batch."""
    chunked = chunker.split_many(pages)
    return [
        PreparedDocument(
            upload.name, upload.sha256, upload.size_bytes, _page_count(doc_pages), tuple(chunks)
        )
        for upload, doc_pages, chunks in zip(uploads, pages, chunked, strict=True)
    ]


def over_chunk_limits(
    documents: Sequence[PreparedDocument], owner_chunks: int, per_file: int, per_owner: int
) -> dict[int, DocumentError]:
    """Why documents (by index) cannot be stored; the others fit, taken in order.

    ``owner_chunks`` is what the owner stores already; a limit of 0 means no limit.
    """
    refused: dict[int, DocumentError] = {}
    total = owner_chunks
    for i, doc in enumerate(documents):
        count = len(doc.chunks)
        if per_file and count > per_file:
            what = f"too much text (over {per_file:,} passages once split for search)"
            refused[i] = too_much(doc.name, what)
        elif per_owner and total + count > per_owner:
            refused[i] = LibraryFull(doc.name, (
                f"your documents hold {total:,} passages and this file adds {count:,}; "
                f"the limit is {per_owner:,}. Delete some documents or split the file."
            ))
        else:
            total += count
    return refused


def _page_count(pages: Sequence[Page]) -> int:
    """PDF pages (blank pages included); 1 for types without pages."""
    return max(page.page or 1 for page in pages)
