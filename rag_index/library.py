"""The facade an app uses: owners' document collections, ingestion and search.

A document belongs to one ``owner`` and either to that owner's *library*
(``conversation_id=None``, searchable from all their conversations) or to one
conversation (an attachment). ``search(owner, conversation_id)`` sees the
owner's library plus that conversation's attachments, and nothing else.

    embedder = Embedder()                                # once, in app.py
    library = Library(data_dir / "documents", embedder)  # instant: nothing loaded yet
    library.start_loading()                              # model + index, in the background
    library.ingest(path, "report.pdf", owner=user_id, conversation_id=chat_id)
    hits = library.search("what does the report conclude?", user_id, chat_id, k=5)

Invariants:
- Scope is enforced inside the vector and BM25 searches (allowed chunk ids),
  never by filtering someone else's hits afterwards.
- A failed file changes nothing: files are read, parsed and chunked, then all
  embedded in one batch, and only then committed (``catalog.py``).
- Limits refuse one file, never the batch: what a file may unpack to
  (``max_text_chars``, see ``loaders.TextLimits``), its chunks
  (``max_chunks_per_file``) and its owner's chunks over all their documents
  (``max_chunks_per_owner``, checked again under the lock at commit).
- The same content (sha256 of the bytes) is stored once per visible scope;
  uploading it again returns the existing document with ``duplicate=True``.
- Thread-safe: one re-entrant lock guards the catalog; embedding, the slow
  part, runs outside it (under the embedder's own lock), so searches go on
  while files are being ingested.
- Opening is lazy when the embedder has not loaded its model yet (the real
  ``Embedder``: torch and the model take seconds): the index opens in one
  background thread, started by ``start_loading()`` or by the first call that
  needs it, which waits for it at most ``load_timeout`` seconds (then
  ``ModelUnavailable``; a failed opening is raised, in words, to every caller).
  Listing and counting documents, and deleting a conversation that has none,
  read the manifest meanwhile and never wait. With a model already in memory
  the index opens in the constructor, as errors in it do. ``status`` says what
  a person waiting should read ("Loading the document model…"). A search of a
  scope that holds no document answers [] at once and loads nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import ingest
from .catalog import Catalog
from .chunker import Chunker
from .embedder import TextEmbedder
from .errors import DocumentError, DocumentNotFound
from .ingest import PreparedDocument, Upload
from .budget import DEFAULT_MAX_CHARS, TextLimits
from .loaders import DEFAULT_MAX_BYTES, Page, safe_filename
from .opening import Opening
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

LOADING_MESSAGE = "Loading the document model…"
DEFAULT_LOAD_TIMEOUT = 300.0  # seconds a document call waits for the model (50 s seen when busy)


@dataclass(frozen=True, slots=True)
class _OpenIndex:
    """What needs the model: the tokenizer-driven chunker, the loaded catalog, the ranking."""

    catalog: Catalog
    chunker: Chunker
    retriever: Retriever


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
        max_text_chars: int = DEFAULT_MAX_CHARS,
        max_chunks_per_file: int = 5_000,
        max_chunks_per_owner: int = 50_000,
        embed_slice: int = 1024,
        fusion: Fusion = "score",
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.text_limits = TextLimits(max_chars=max_text_chars)
        self.max_chunks_per_file = max_chunks_per_file  # chunk limits: 0 means no limit
        self.max_chunks_per_owner = max_chunks_per_owner
        self._embedder = embedder
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens
        self._fusion: Fusion = fusion
        self._embed_slice = embed_slice
        self._lock = threading.RLock()
        self._store = LibraryStore(Path(data_dir))  # a folder that cannot be made fails now
        self.load_timeout = load_timeout
        self._opening = Opening(
            self._open, name="rag-index-open",
            still_loading="The document model is still loading; try again in a minute.",
        )
        if getattr(embedder, "loaded", True):  # the model is in memory: open now
            self._opening.make_now()

    # ----- opening: the model loads in the background, or on first use ----------

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and the index open, so no call waits for them."""
        return self._opening.value is not None

    @property
    def status(self) -> str:
        """Empty when ready; else what a person waiting for documents should read."""
        if self._opening.value is not None:
            return ""
        error = self._opening.error
        return str(error) if error is not None else LOADING_MESSAGE

    def start_loading(self) -> None:
        """Load the model and open the index in a background thread (once); returns at once."""
        self._opening.start()

    def load(self, timeout: float | None = None) -> None:
        """Load now (in the background thread) and wait up to ``timeout`` (``load_timeout``) s.

        Raises why the index cannot be opened (``ModelUnavailable``,
        ``IndexStoreError``), or ``ModelUnavailable`` if it is still loading.
        """
        self._opened(timeout)

    def _opened(self, timeout: float | None = None) -> _OpenIndex:
        return self._opening.wait(self.load_timeout if timeout is None else timeout)

    def _open(self) -> _OpenIndex:
        embedder = self._embedder
        limit = embedder.max_tokens - 2  # loads the model
        if self._chunk_tokens > limit:
            raise ValueError(f"chunk_tokens must be at most {limit} for this model")
        chunker = Chunker(
            embedder.token_spans, chunk_tokens=self._chunk_tokens,
            overlap_tokens=self._overlap_tokens,
        )
        catalog = Catalog(self._store, embedder.dimension)
        retriever = Retriever(
            catalog.vectors, catalog.bm25, embedder.encode_query, fusion=self._fusion
        )
        return _OpenIndex(catalog, chunker, retriever)

    @property
    def _catalog(self) -> Catalog:
        return self._opened().catalog

    @property
    def _chunker(self) -> Chunker:
        return self._opened().chunker

    @property
    def _retriever(self) -> Retriever:
        return self._opened().retriever

    def _records(self) -> Iterable[DocumentRecord]:
        """Every live document: the open catalog's, else the manifest's (no model needed)."""
        index = self._opening.value
        if index is not None:
            return index.catalog.documents.values()
        return self._store.read_manifest().documents

    # ----- documents -------------------------------------------------------------

    @property
    def chunk_count(self) -> int:
        self._opened()
        with self._lock:
            return len(self._catalog.chunks)

    def documents(self, owner: str, conversation_id: str | None = None) -> list[DocumentInfo]:
        """Documents searchable from this scope (library + the conversation's own), oldest first."""
        with self._lock:
            records = [
                r for r in self._records()
                if r.owner == owner and r.conversation_id in (None, conversation_id)
            ]
        return [_info(r) for r in sorted(records, key=lambda r: r.added_at)]

    @property
    def empty(self) -> bool:
        """Whether nobody keeps a document (from the manifest: never waits for the model)."""
        with self._lock:
            return not any(True for _ in self._records())

    def document_count(self, owner: str) -> int:
        """How many documents ``owner`` keeps, in their library and all their conversations."""
        with self._lock:
            return sum(1 for r in self._records() if r.owner == owner)

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
        if not self.ready and not self.documents(owner, conversation_id):
            return []  # nothing to search here: no reason to load the model for it
        self._opened()  # waits for the model, if need be, outside the lock
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
        files: Sequence[Upload],
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
        self._opened()  # waits for the model, if need be, before taking the lock
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
                    pages.append(ingest.parse(upload, self.max_file_bytes, self.text_limits))
                    first_of_content[upload.sha256] = len(uploads)
                    uploads.append(replace(upload, data=b""))  # parsed: the bytes can go
                    slots.append(i)
            except DocumentError as error:
                outcomes[i] = IngestFailure(safe_filename(filename), error)
        prepared = ingest.chunk(uploads, pages, self._chunker)
        del pages
        with self._lock:
            refused = self._over_limits(prepared, owner)
        kept = [i for i in range(len(prepared)) if i not in refused]
        texts = [c.text for i in kept for c in prepared[i].chunks]
        vectors = self._embed(texts, report, total)
        report(IngestProgress("saving", total, total, len(vectors), len(vectors)))
        with self._lock:  # another batch of this owner may have been stored meanwhile
            late = self._over_limits([prepared[i] for i in kept], owner)
            if late:
                vectors = _rows_of(vectors, [prepared[i] for i in kept], set(late))
                refused.update({kept[j]: error for j, error in late.items()})
                kept = [i for i in kept if i not in refused]
            committed = self._catalog.commit(
                [prepared[i] for i in kept], vectors, owner, conversation_id
            )
        results: dict[int, IngestResult | IngestFailure] = {
            i: IngestFailure(prepared[i].name, error) for i, error in refused.items()
        }
        for i, (record, duplicate) in zip(kept, committed, strict=True):
            results[i] = IngestResult(
                record.document_id, prepared[i].name, record.chunk_count, duplicate
            )
        for j, slot in enumerate(slots):
            outcomes[slot] = results[j]
        for slot, first in repeats.items():
            original = results[first]
            name = safe_filename(files[slot][1])
            if isinstance(original, IngestFailure):
                refusal = original.error
                outcomes[slot] = IngestFailure(name, type(refusal)(name, refusal.reason))
            else:
                outcomes[slot] = IngestResult(
                    original.document_id, name, original.chunk_count, True
                )
        report(IngestProgress("done", total, total, len(vectors), len(vectors)))
        return IngestBatch(tuple(o for o in outcomes if o is not None))

    def delete(self, document_id: str, owner: str) -> DocumentInfo:
        """Remove a document and its vectors; raises ``DocumentNotFound`` if not the owner's."""
        self._opened()
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
        if not self.ready and not any(
            r.owner == owner and r.conversation_id == conversation_id for r in self._records()
        ):
            return 0  # nothing to delete: do not wait for the model to find that out
        self._opened()
        with self._lock:
            records = [
                r for r in self._catalog.documents.values()
                if r.owner == owner and r.conversation_id == conversation_id
            ]
            if records:
                self._catalog.remove(records)
        return len(records)

    def _over_limits(
        self, prepared: Sequence[PreparedDocument], owner: str
    ) -> dict[int, DocumentError]:
        """Documents (by index) over the chunk limits; the caller holds the lock."""
        stored = sum(r.chunk_count for r in self._catalog.documents.values() if r.owner == owner)
        return ingest.over_chunk_limits(
            prepared, stored, self.max_chunks_per_file, self.max_chunks_per_owner
        )

    def _embed(self, texts: list[str], report: ProgressCallback, files: int) -> np.ndarray:
        parts = [np.zeros((0, self._catalog.vectors.dimension), np.float32)]
        for start in range(0, len(texts), self._embed_slice):
            report(IngestProgress("embedding", files, files, start, len(texts)))
            parts.append(self._embedder.encode(texts[start : start + self._embed_slice]))
        return np.concatenate(parts)


def _rows_of(
    vectors: np.ndarray, docs: Sequence[PreparedDocument], dropped: set[int]
) -> np.ndarray:
    """The rows of ``vectors`` (one per chunk of ``docs``, in order) of the docs not dropped."""
    keep = np.ones(len(vectors), dtype=bool)
    row = 0
    for i, doc in enumerate(docs):
        if i in dropped:
            keep[row : row + len(doc.chunks)] = False
        row += len(doc.chunks)
    return vectors[keep]


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
