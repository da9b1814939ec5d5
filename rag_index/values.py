"""Plain values the library hands to its callers. Pure data, no behaviour.

Identity and storage keys (segments, chunk-id ranges) are a storage concern and
stay in ``storage.py``; these are what an app shows or passes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .errors import DocumentError

SearchMode = Literal["hybrid", "dense", "bm25"]
IngestStage = Literal["reading", "embedding", "saving", "done"]


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One stored document as a user would list it."""

    document_id: str
    name: str
    owner: str
    conversation_id: str | None  # None: in the owner's library, shared by all their chats
    chunk_count: int
    pages: int  # PDF pages; 1 for other types
    size_bytes: int
    sha256: str
    added_at: datetime  # UTC


@dataclass(frozen=True, slots=True)
class IngestResult:
    """A file now searchable; ``duplicate`` when the same content was already there."""

    document_id: str
    name: str
    chunk_count: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class IngestFailure:
    """A file that was not indexed, and why (``str(error)`` names the file)."""

    name: str
    error: DocumentError


@dataclass(frozen=True, slots=True)
class IngestBatch:
    """Per-file outcomes of ``ingest_many``, in input order."""

    outcomes: tuple[IngestResult | IngestFailure, ...]

    @property
    def succeeded(self) -> tuple[IngestResult, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, IngestResult))

    @property
    def failed(self) -> tuple[IngestFailure, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, IngestFailure))


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Where an ingest stands; ``fraction`` runs from 0 to 1 over the whole call."""

    stage: IngestStage
    files_done: int
    files_total: int
    chunks_done: int
    chunks_total: int
    current_file: str | None = None

    @property
    def fraction(self) -> float:
        # Reading is cheap next to embedding: give it a tenth of the bar.
        if self.stage == "done":
            return 1.0
        if self.stage == "reading":
            return 0.1 * self.files_done / max(self.files_total, 1)
        if self.stage == "embedding":
            return 0.1 + 0.85 * self.chunks_done / max(self.chunks_total, 1)
        return 0.95


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``citation`` is its 1-based number in the result list.

    ``score`` is on the scale of the search mode: cosine similarity for dense,
    BM25 for bm25, the fused score for hybrid (see ``retriever.py``).
    ``dense_score`` / ``bm25_score`` are the component scores when known.
    """

    citation: int
    document_id: str
    document_name: str
    page: int | None
    text: str
    score: float
    chunk_id: int
    ordinal: int
    char_start: int
    dense_score: float | None = None
    bm25_score: float | None = None
