"""Dense vector search: a FAISS ``IndexFlatIP`` inside an ``IndexIDMap2``.

Vectors are L2-normalised by the embedder, so inner product is cosine
similarity. Ids are the library's stable int64 chunk ids, never positions.

Invariants:
- An id is in the index at most once; ``remove`` takes every vector of the ids.
- A search restricted to ``allowed_ids`` never returns any other id (FAISS
  applies the selector inside the scan, before top-k, so a restricted search
  still returns up to ``k`` hits).
- Not thread-safe for writes; the owner (``Library``) serialises writers.
  Concurrent searches are safe (FAISS flat search only reads).
- A scope's id bitmap is built once per read-only ``allowed_ids`` array
  (``scopes.ScopeCache``): ids never change meaning, so it stays right across writes.
- FAISS runs single-threaded (``omp_set_num_threads(1)``, process-wide, set
  when an index is created). A one-query flat scan is memory-bound, and a
  second OpenMP pool spinning next to torch's made both the scan and the
  query embedding 2-4x slower on a 2-core machine (bench_rag_latency.py).
"""

from __future__ import annotations

import faiss
import numpy as np

from .scopes import ScopeCache


class VectorIndex:
    """Exact cosine search over normalised vectors, keyed by chunk id."""

    def __init__(self, dimension: int) -> None:
        faiss.omp_set_num_threads(1)
        self.dimension = dimension
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._scopes: ScopeCache[faiss.SearchParameters] = ScopeCache()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n x dimension, float32) under ``ids`` (n, int64)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(
                f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}"
            )
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if len(ids):
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors of ``ids``; returns how many were removed."""
        if len(ids) == 0:
            return 0
        # faiss wraps remove_ids to take an id array; its SWIG stubs only know IDSelector.
        ids64 = np.ascontiguousarray(ids, dtype=np.int64)
        return int(self._index.remove_ids(ids64))  # type: ignore[arg-type]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (each must be present), n x dimension."""
        if len(ids) == 0:
            return np.zeros((0, self.dimension), np.float32)
        return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    def search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``k`` nearest vectors, best first."""
        if k <= 0 or len(self) == 0 or (allowed_ids is not None and len(allowed_ids) == 0):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dimension)
        if allowed_ids is None:
            scores, ids = self._index.search(query, min(k, len(self)))
        else:
            allowed_ids = np.asarray(allowed_ids, dtype=np.int64)
            params = self._scopes.get(allowed_ids, 0, lambda: _restricted_to(allowed_ids))
            top = min(k, len(allowed_ids), len(self))
            scores, ids = self._index.search(query, top, params=params)
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]


def _restricted_to(allowed_ids: np.ndarray) -> faiss.SearchParameters:
    """FAISS search parameters that skip every id not in ``allowed_ids``."""
    # A bitmap over ids (small, dense, non-negative) is cheaper to build and to
    # probe than IDSelectorBatch's hash set; faiss' wrappers keep it referenced.
    member = np.zeros(int(allowed_ids.max()) + 1, dtype=bool)
    member[allowed_ids] = True
    bitmap = np.packbits(member, bitorder="little")
    # The Python wrappers take keywords and arrays; the SWIG stubs do not say so.
    selector = faiss.IDSelectorBitmap(bitmap)  # type: ignore[call-arg, arg-type]
    return faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
