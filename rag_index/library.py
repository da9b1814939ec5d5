"""The facade an app uses: owners' document collections, ingestion and search.

A document belongs to one ``owner`` and either to that owner's *library*
(``conversation_id=None``, searchable from all their conversations) or to one
conversation (an attachment). ``search(owner, conversation_id)`` sees the
owner's library plus that conversation's attachments, and nothing else.

    embedder = Embedder()                                # once, in app.py
    library = Library(data_dir / "documents", embedder)  # loads what is on disk
    library.ingest(path, "report.pdf", owner=user_id, conversation_id=chat_id)
    hits = library.search("what does the report conclude?", user_id, chat_id, k=5)

Invariants:
- Scope is enforced inside the vector and BM25 searches (allowed chunk ids),
  never by filtering someone else's hits afterwards.
- A failed file changes nothing: files are read, parsed and chunked, then all
  embedded in one batch, and only then committed (``catalog.py``).
- The same content (sha256 of the bytes) is stored once per visible scope;
  uploading it again returns the existing document with ``duplicate=True``.
- Thread-safe: one re-entrant lock guards the catalog; embedding, the slow
  part, runs outside it (under the embedder's own lock), so searches go on
  while files are being ingested.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import ingest
from .catalog import Catalog
from .chunker import Chunker
from .embedder import TextEmbedder
from .errors import DocumentError, DocumentNotFound
from .loaders import DEFAULT_MAX_BYTES, Page, safe_filename
from .retriever import Fusion, Retriever
from .storage import DocumentRecord, LibraryStore
from .values import (
    DocumentInfo,
    Hit,
    IngestBatch,
    IngestFailure,
    IngestProgress,
    IngestResult,
    SearchMode,
)

ProgressCallback = Callable[[IngestProgress], None]


class Library:
    """Documents of many owners in one index on disk under ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        embedder: TextEmbedder,
        *,
        chunk_tokens: int = 200,
        overlap_tokens: int = 40,
        max_file_bytes: int = DEFAULT_MAX_BYTES,
        embed_slice: int = 1024,
        fusion: Fusion = "score",
    ) -> None:
        if chunk_tokens > embedder.max_tokens - 2:
            limit = embedder.max_tokens - 2
            raise ValueError(f"chunk_tokens must be at most {limit} for this model")
        self.max_file_bytes = max_file_bytes
        self._embedder = embedder
        self._chunker = Chunker(
            embedder.token_spans, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens
        )
        self._embed_slice = embed_slice
        self._lock = threading.RLock()
        self._catalog = Catalog(LibraryStore(Path(data_dir)), embedder.dimension)
        self._retriever = Retriever(
            self._catalog.vectors, self._catalog.bm25, embedder.encode_query, fusion=fusion
        )

    @property
    def chunk_count(self) -> int:
        with self._lock:
            return len(self._catalog.chunks)

    def documents(self, owner: str, conversation_id: str | None = None) -> list[DocumentInfo]:
        """Documents searchable from this scope (library + the conversation's own), oldest first."""
        with self._lock:
            records = self._catalog.visible(owner, conversation_id)
        return [_info(r) for r in sorted(records, key=lambda r: r.added_at)]

    def document_count(self, owner: str) -> int:
        """How many documents ``owner`` keeps, in their library and all their conversations."""
        with self._lock:
            return sum(1 for r in self._catalog.documents.values() if r.owner == owner)

    def search(
        self,
        query: str,
        owner: str,
        conversation_id: str | None = None,
        *,
        k: int = 5,
        mode: SearchMode = "hybrid",
        min_score: float | None = None,
    ) -> list[Hit]:
        """The best ``k`` chunks for ``query`` in this scope, numbered for citation from 1.

        ``min_score`` applies to ``Hit.score``: cosine for "dense", raw BM25 for
        "bm25", and for "hybrid" the fused 0..1 score (see ``retriever.py``).
        """
        if not query.strip() or k <= 0:
            return []
        vector = self._embedder.encode_query(query) if mode != "bm25" else None
        with self._lock:
            catalog = self._catalog
            allowed = catalog.allowed_ids(owner, conversation_id)
            if allowed is not None and len(allowed) == 0:
                return []
            ranked = self._retriever.rank(
                query, k=2 * k, mode=mode, allowed_ids=allowed, min_score=min_score,
                query_vector=vector,
            )
            hits: list[Hit] = []
            seen: set[tuple[str, int]] = set()
            for item in ranked:
                chunk = catalog.chunks[item.chunk_id]
                record = catalog.documents[chunk.document_id]
                if (record.sha256, chunk.ordinal) in seen:  # the same file in library and chat
                    continue
                seen.add((record.sha256, chunk.ordinal))
                hits.append(Hit(
                    citation=len(hits) + 1,
                    document_id=record.document_id,
                    document_name=record.name,
                    page=chunk.page,
                    text=chunk.text,
                    score=item.score,
                    chunk_id=item.chunk_id,
                    ordinal=chunk.ordinal,
                    char_start=chunk.char_start,
                    dense_score=item.dense_score,
                    bm25_score=item.bm25_score,
                ))
        return hits[:k]

    def ingest(
        self,
        source: Path | str | bytes,
        filename: str,
        owner: str,
        conversation_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Index one file; raises ``DocumentError`` (index unchanged) if it cannot be read."""
        batch = self.ingest_many([(source, filename)], owner, conversation_id, progress)
        outcome = batch.outcomes[0]
        if isinstance(outcome, IngestFailure):
            raise outcome.error
        return outcome

    def ingest_many(
        self,
        files: Sequence[ingest.Upload],
        owner: str,
        conversation_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestBatch:
        """Index several ``(path or bytes, filename)`` uploads, embedding them in one batch.

        A file that fails is reported in the result and skipped; the others go
        on. Raising from ``progress`` before the "saving" stage cancels the
        whole call with nothing stored.
        """
        _check_scope(owner, conversation_id)
        report = progress or (lambda _: None)
        total = len(files)
        outcomes: list[IngestResult | IngestFailure | None] = [None] * total
        uploads: list[ingest.RawUpload] = []
        pages: list[list[Page]] = []
        slots: list[int] = []
        first_of_content: dict[str, int] = {}
        repeats: dict[int, int] = {}
        for i, (source, filename) in enumerate(files):
            report(IngestProgress("reading", i, total, 0, 0, safe_filename(filename)))
            try:
                upload = ingest.read(source, filename, self.max_file_bytes)
                with self._lock:
                    existing = self._catalog.existing(upload.sha256, owner, conversation_id)
                if existing is not None:
                    outcomes[i] = IngestResult(
                        existing.document_id, upload.name, existing.chunk_count, True
                    )
                elif upload.sha256 in first_of_content:
                    repeats[i] = first_of_content[upload.sha256]
                else:
                    pages.append(ingest.parse(upload, self.max_file_bytes))
                    first_of_content[upload.sha256] = len(uploads)
                    uploads.append(replace(upload, data=b""))  # parsed: the bytes can go
                    slots.append(i)
            except DocumentError as error:
                outcomes[i] = IngestFailure(safe_filename(filename), error)
        prepared = ingest.chunk(uploads, pages, self._chunker)
        vectors = self._embed([c.text for doc in prepared for c in doc.chunks], report, total)
        report(IngestProgress("saving", total, total, len(vectors), len(vectors)))
        with self._lock:
            committed = self._catalog.commit(prepared, vectors, owner, conversation_id)
        results = [
            IngestResult(record.document_id, doc.name, record.chunk_count, duplicate)
            for doc, (record, duplicate) in zip(prepared, committed, strict=True)
        ]
        for slot, result in zip(slots, results, strict=True):
            outcomes[slot] = result
        for slot, first in repeats.items():
            original = results[first]
            name = safe_filename(files[slot][1])
            outcomes[slot] = IngestResult(original.document_id, name, original.chunk_count, True)
        report(IngestProgress("done", total, total, len(vectors), len(vectors)))
        return IngestBatch(tuple(o for o in outcomes if o is not None))

    def delete(self, document_id: str, owner: str) -> DocumentInfo:
        """Remove a document and its vectors; raises ``DocumentNotFound`` if not the owner's."""
        with self._lock:
            record = self._catalog.documents.get(document_id)
            if record is None or record.owner != owner:
                raise DocumentNotFound(
                    f"There is no document {document_id!r} in your library or chats."
                )
            self._catalog.remove([record])
        return _info(record)

    def delete_conversation(self, owner: str, conversation_id: str) -> int:
        """Remove every document attached to one conversation; returns how many."""
        with self._lock:
            records = [
                r for r in self._catalog.documents.values()
                if r.owner == owner and r.conversation_id == conversation_id
            ]
            if records:
                self._catalog.remove(records)
        return len(records)

    def _embed(self, texts: list[str], report: ProgressCallback, files: int) -> np.ndarray:
        parts = [np.zeros((0, self._catalog.vectors.dimension), np.float32)]
        for start in range(0, len(texts), self._embed_slice):
            report(IngestProgress("embedding", files, files, start, len(texts)))
            parts.append(self._embedder.encode(texts[start : start + self._embed_slice]))
        return np.concatenate(parts)


def _check_scope(owner: str, conversation_id: str | None) -> None:
    if not isinstance(owner, str) or not owner:
        raise ValueError("owner must be a non-empty string")
    if conversation_id is not None and not (isinstance(conversation_id, str) and conversation_id):
        raise ValueError("conversation_id must be None or a non-empty string")


def _info(record: DocumentRecord) -> DocumentInfo:
    return DocumentInfo(
        document_id=record.document_id,
        name=record.name,
        owner=record.owner,
        conversation_id=record.conversation_id,
        chunk_count=record.chunk_count,
        pages=record.pages,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        added_at=datetime.fromtimestamp(record.added_at, UTC),
    )
