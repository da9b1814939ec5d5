"""The index state of a library, and the one write path that keeps it on disk.

Holds the live documents, their chunks, the FAISS vectors and the BM25
postings, and changes them only through ``commit`` and ``remove``, which write
to disk first (segment, then manifest: see ``storage.py``) and touch memory
only once the write succeeded. So memory and disk never disagree, and a
failed write leaves both as they were.

Invariants:
- Chunk ids are allocated in increasing order, contiguously per document
  (``first_chunk_id .. first_chunk_id + chunk_count``) and never reused.
- ``(owner, conversation_id, sha256)`` identifies at most one live document.
- Not locked: ``Library`` holds its lock around every call.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np

from .bm25 import BM25Index
from .errors import IndexStoreError
from .index import VectorIndex
from .ingest import PreparedDocument
from .storage import DocumentRecord, LibraryStore, Manifest, SegmentData


@dataclass(frozen=True, slots=True)
class StoredChunk:
    document_id: str
    page: int | None
    ordinal: int
    char_start: int
    text: str


class Catalog:
    """Documents, chunks and both search indexes of one ``data_dir``."""

    def __init__(self, store: LibraryStore, dimension: int) -> None:
        self._store = store
        self.vectors = VectorIndex(dimension)
        self.bm25 = BM25Index()
        self.documents: dict[str, DocumentRecord] = {}
        self.chunks: dict[int, StoredChunk] = {}
        self._by_content: dict[tuple[str, str | None, str], str] = {}
        self._scopes: dict[tuple[str, str | None], np.ndarray | None] = {}
        self._next_chunk_id = 0
        self._load()

    def visible(self, owner: str, conversation_id: str | None) -> list[DocumentRecord]:
        """Documents searchable from a scope: the owner's library plus the conversation's own."""
        return [r for r in self.documents.values() if _visible(r, owner, conversation_id)]

    def existing(
        self, sha256: str, owner: str, conversation_id: str | None
    ) -> DocumentRecord | None:
        """A live document with this content that the scope can already see."""
        for scope in dict.fromkeys((None, conversation_id)):
            document_id = self._by_content.get((owner, scope, sha256))
            if document_id is not None:
                return self.documents[document_id]
        return None

    def allowed_ids(self, owner: str, conversation_id: str | None) -> np.ndarray | None:
        """Chunk ids visible in a scope (read-only, one array per scope until the next
        write), or None when that is every chunk."""
        key = (owner, conversation_id)
        if key not in self._scopes:
            ids = [_chunk_ids(r) for r in self.visible(owner, conversation_id)]
            allowed = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            allowed.flags.writeable = False  # frozen: the indexes cache their masks by identity
            self._scopes[key] = None if len(allowed) == len(self.chunks) else allowed
        return self._scopes[key]

    def commit(
        self,
        prepared: list[PreparedDocument],
        vectors: np.ndarray,
        owner: str,
        conversation_id: str | None,
    ) -> list[tuple[DocumentRecord, bool]]:
        """Store prepared documents of distinct content (``vectors``: one row per chunk, in order).

        Returns ``(record, duplicate)`` per document; content the scope can
        already see (perhaps stored by another thread meanwhile) is not stored again.
        """
        outcome: list[tuple[DocumentRecord, bool]] = []
        records: list[DocumentRecord] = []
        rows: list[int] = []
        segment = uuid.uuid4().hex
        next_id = first_id = self._next_chunk_id
        row = 0
        for doc in prepared:
            existing = self.existing(doc.sha256, owner, conversation_id)
            if existing is not None:
                outcome.append((existing, True))
            else:
                record = DocumentRecord(
                    document_id=uuid.uuid4().hex,
                    owner=owner,
                    conversation_id=conversation_id,
                    name=doc.name,
                    sha256=doc.sha256,
                    size_bytes=doc.size_bytes,
                    pages=doc.pages,
                    added_at=time.time(),
                    segment=segment,
                    first_chunk_id=next_id,
                    chunk_count=len(doc.chunks),
                )
                records.append(record)
                outcome.append((record, False))
                rows.extend(range(row, row + len(doc.chunks)))
                next_id += len(doc.chunks)
            row += len(doc.chunks)
        if not records:
            return outcome
        chunks = [c for doc in prepared for c in doc.chunks]
        kept = [chunks[r] for r in rows]
        data = SegmentData(
            ids=np.arange(first_id, next_id, dtype=np.int64),
            vectors=vectors[rows],
            pages=np.asarray([-1 if c.page is None else c.page for c in kept], dtype=np.int32),
            ordinals=np.asarray([c.ordinal for c in kept], dtype=np.int32),
            char_starts=np.asarray([c.char_start for c in kept], dtype=np.int64),
            texts=tuple(c.text for c in kept),
        )
        self._store.write_segment(segment, data)
        try:
            self._store.write_manifest(Manifest(next_id, (*self.documents.values(), *records)))
        except IndexStoreError:
            self._store.collect_garbage({r.segment for r in self.documents.values()})
            raise
        self._next_chunk_id = next_id
        self._apply(records, data)
        return outcome

    def remove(self, records: list[DocumentRecord]) -> None:
        """Delete documents durably, then from memory, then their unused segment files."""
        gone = {r.document_id for r in records}
        remaining = tuple(r for r in self.documents.values() if r.document_id not in gone)
        self._store.write_manifest(Manifest(self._next_chunk_id, remaining))
        ids = np.concatenate([_chunk_ids(r) for r in records])
        self.vectors.remove(ids)
        self.bm25.remove(ids)
        for chunk_id in ids.tolist():
            del self.chunks[chunk_id]
        for record in records:
            del self.documents[record.document_id]
            del self._by_content[(record.owner, record.conversation_id, record.sha256)]
        self._scopes.clear()
        self._store.collect_garbage({r.segment for r in remaining})

    def _apply(self, records: list[DocumentRecord], data: SegmentData) -> None:
        """Add committed documents to memory (``data.ids`` ascending, past every id held)."""
        self.vectors.add(data.ids, data.vectors)
        self.bm25.add(data.ids, data.texts)
        owner_of = np.repeat(np.arange(len(records)), [r.chunk_count for r in records]).tolist()
        columns = (
            data.ids.tolist(), owner_of, data.pages.tolist(), data.ordinals.tolist(),
            data.char_starts.tolist(), data.texts,
        )
        for chunk_id, doc, page, ordinal, start, text in zip(*columns, strict=True):
            document_id = records[doc].document_id
            page_number = None if page < 0 else page
            self.chunks[chunk_id] = StoredChunk(document_id, page_number, ordinal, start, text)
        for record in records:
            self.documents[record.document_id] = record
            content_key = (record.owner, record.conversation_id, record.sha256)
            self._by_content[content_key] = record.document_id
        self._scopes.clear()

    def _load(self) -> None:
        manifest = self._store.read_manifest()
        by_segment: dict[str, list[DocumentRecord]] = {}
        for record in manifest.documents:
            by_segment.setdefault(record.segment, []).append(record)
        # Segments hold disjoint id ranges; loading them in id order keeps BM25 rows sorted.
        def first_id(item: tuple[str, list[DocumentRecord]]) -> int:
            return min(r.first_chunk_id for r in item[1])

        for name, records in sorted(by_segment.items(), key=first_id):
            data = self._store.read_segment(name)
            if data.vectors.shape[1:] != (self.vectors.dimension,):
                raise IndexStoreError(
                    f"The document index in {self._store.root} was built with a different "
                    "embedding model; move that folder away and upload the documents again."
                )
            records.sort(key=lambda r: r.first_chunk_id)
            wanted = np.concatenate([_chunk_ids(r) for r in records])
            rows = np.searchsorted(data.ids, wanted)
            found = data.ids[np.minimum(rows, len(data.ids) - 1)]
            if np.any(rows >= len(data.ids)) or np.any(found != wanted):
                raise IndexStoreError(
                    f"The index segment {name} does not hold the chunks its documents need."
                )
            texts = tuple(data.texts[i] for i in rows.tolist())
            live = SegmentData(
                ids=wanted,
                vectors=data.vectors[rows],
                pages=data.pages[rows],
                ordinals=data.ordinals[rows],
                char_starts=data.char_starts[rows],
                texts=texts,
            )
            self._apply(records, live)
        self._next_chunk_id = manifest.next_chunk_id
        self._store.collect_garbage(by_segment)


def _chunk_ids(record: DocumentRecord) -> np.ndarray:
    start = record.first_chunk_id
    return np.arange(start, start + record.chunk_count, dtype=np.int64)


def _visible(record: DocumentRecord, owner: str, conversation_id: str | None) -> bool:
    return record.owner == owner and record.conversation_id in (None, conversation_id)
