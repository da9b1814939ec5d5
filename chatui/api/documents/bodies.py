"""The documents API's request and response bodies (pydantic), built from the service's values."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from rag_index import Hit

from chatui.documents import DocumentEntry, FileOutcome


class DocumentRecord(BaseModel):
    id: str
    name: str
    scope: Literal["chat", "library"] = Field(
        description="`library`: searchable from all your chats; `chat`: attached to `chat_id`.")
    chat_id: str | None
    pages: int
    chunks: int
    size_bytes: int
    added_at: datetime

    @classmethod
    def of(cls, entry: DocumentEntry) -> DocumentRecord:
        return cls(id=entry.document_id, name=entry.name, scope=entry.scope,
                   chat_id=entry.chat_id, pages=entry.pages, chunks=entry.chunks,
                   size_bytes=entry.size_bytes, added_at=entry.added_at)


class FileRefusal(BaseModel):
    type: str = Field(description="e.g. `unsupported_type`, `too_large`, `empty`, "
                      "`unreadable`, `limit_exceeded`, `library_full`.")
    message: str


class FileResult(BaseModel):
    name: str = Field(description="The file name as stored (path parts and controls removed).")
    status: Literal["added", "duplicate", "refused"]
    document_id: str | None = None
    chunks: int = 0
    error: FileRefusal | None = None

    @classmethod
    def of(cls, outcome: FileOutcome) -> FileResult:
        if not outcome.added:
            refusal = FileRefusal(type=outcome.error_type or "unreadable",
                                  message=outcome.error or "")
            return cls(name=outcome.name, status="refused", error=refusal)
        return cls(name=outcome.name, status="duplicate" if outcome.duplicate else "added",
                   document_id=outcome.document_id, chunks=outcome.chunks)


class UploadResult(BaseModel):
    chat_id: str | None
    added: int = Field(description="Files now searchable (duplicates included).")
    refused: int
    files: list[FileResult] = Field(description="One per file, in the order sent.")

    @classmethod
    def of(cls, outcomes: tuple[FileOutcome, ...], chat_id: str | None) -> UploadResult:
        added = sum(1 for o in outcomes if o.added)
        return cls(chat_id=chat_id, added=added, refused=len(outcomes) - added,
                   files=[FileResult.of(o) for o in outcomes])


class UploadProgress(BaseModel):
    name: str
    file: int = Field(description="Which file, from 1.")
    files: int
    stage: str
    fraction: float = Field(description="Of the whole upload, 0 to 1.")


class SearchHit(BaseModel):
    rank: int = Field(description="From 1, best first.")
    score: float = Field(description="Cosine (dense), BM25 (bm25) or the fused 0..1 (hybrid).")
    document_id: str
    document: str
    page: int | None
    text: str

    @classmethod
    def of(cls, hit: Hit) -> SearchHit:
        return cls(rank=hit.citation, score=round(float(hit.score), 6),
                   document_id=hit.document_id, document=hit.document_name, page=hit.page,
                   text=hit.text)


class SearchResult(BaseModel):
    query: str
    mode: Literal["hybrid", "dense", "bm25"]
    hits: list[SearchHit]

