"""Search scopes are prepared once and stay right: cached masks, cached query vectors.

The indexes keep what they build from a scope's allowed ids (a FAISS bitmap,
a BM25 row mask) keyed by the frozen array ``Catalog.allowed_ids`` hands out;
the embedder keeps recent query vectors. Each test here breaks if a cache
answers for something that has changed.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from rag_index import Embedder, Library
from rag_index import embedder as embedder_module
from rag_index.bm25 import BM25Index
from rag_index.index import VectorIndex

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture


def frozen(ids: list[int]) -> np.ndarray:
    array = np.asarray(ids, dtype=np.int64)
    array.flags.writeable = False
    return array


def unit_vectors(count: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_cached_faiss_scope_still_restricts_after_garbage_collection() -> None:
    """FAISS must keep the bitmap referenced by the cached selector (its Python wrappers do)."""
    index = VectorIndex(16)
    vectors = unit_vectors(200)
    index.add(np.arange(200, dtype=np.int64), vectors)
    allowed = frozen([5, 17, 120])
    first, _ = index.search(vectors[0], 10, allowed)
    for _ in range(3):
        gc.collect()
        np.zeros((1000, 1000)).fill(1.0)  # reuse freed memory, if the bitmap were freed
        again, _ = index.search(vectors[0], 10, allowed)
        assert sorted(again.tolist()) == [5, 17, 120]
    assert again.tolist() == first.tolist()


def test_a_writable_allowed_array_is_read_afresh_every_time() -> None:
    index = VectorIndex(16)
    vectors = unit_vectors(50)
    index.add(np.arange(50, dtype=np.int64), vectors)
    lexical = BM25Index()
    lexical.add(range(50), ["shared word"] * 50)
    allowed = np.array([3], dtype=np.int64)
    assert index.search(vectors[0], 5, allowed)[0].tolist() == [3]
    assert lexical.search("word", 5, allowed)[0].tolist() == [3]
    allowed[0] = 8  # the same array object, other contents
    assert index.search(vectors[0], 5, allowed)[0].tolist() == [8]
    assert lexical.search("word", 5, allowed)[0].tolist() == [8]


def test_bm25_scope_mask_follows_deletes_and_adds() -> None:
    index = BM25Index()
    index.add(range(6), ["apple pie", "apple tart", "apple juice", "pear", "plum", "fig"])
    scope = frozen([0, 1, 2])
    assert sorted(index.search("apple", 10, scope)[0].tolist()) == [0, 1, 2]
    index.remove([1])
    assert sorted(index.search("apple", 10, scope)[0].tolist()) == [0, 2]
    index.add([6, 7], ["apple cider", "apple sauce"])  # not in the scope
    assert sorted(index.search("apple", 10, scope)[0].tolist()) == [0, 2]
    assert sorted(index.search("apple", 10)[0].tolist()) == [0, 2, 6, 7]


def test_scopes_stay_isolated_across_writes(tmp_path: Path, rag_embedder: Embedder) -> None:
    library = Library(tmp_path, rag_embedder)
    library.ingest(b"The zebra migration report for the savanna.", "a.txt", "alice")
    library.ingest(b"The zebra census by the rangers.", "b.txt", "bob")
    for owner, name in (("alice", "a.txt"), ("bob", "b.txt"), ("alice", "a.txt")):
        assert [hit.document_name for hit in library.search("zebra", owner)] == [name]
    chat = library.ingest(b"Zebra stripes and flies.", "c.txt", "alice", "chat-1")
    hits = library.search("zebra", "alice", "chat-1")
    assert sorted(hit.document_name for hit in hits) == ["a.txt", "c.txt"]
    library.delete(chat.document_id, "alice")
    assert [hit.document_name for hit in library.search("zebra", "alice", "chat-1")] == ["a.txt"]
    assert [hit.document_name for hit in library.search("zebra", "bob")] == ["b.txt"]


def test_the_one_query_path_agrees_with_encode(rag_embedder: Embedder) -> None:
    """The bundled model takes the short path (sentence-transformers internals unchanged)."""
    assert rag_embedder._one_query is not None
    queries = ["zebra", "What reduces the risk of type 2 diabetes?", "Überprüfung " * 200]
    expected = rag_embedder.encode(queries)
    for query, row in zip(queries, expected, strict=True):
        vector = rag_embedder._one_query(query)
        assert vector.dtype == np.float32
        assert np.allclose(vector, row, atol=1e-5)


def test_repeated_queries_are_answered_from_the_cache(
    rag_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedder_module, "QUERY_CACHE_SIZE", 2)
    first = rag_embedder.encode_query("cache probe one")
    assert rag_embedder.encode_query("cache probe one") is first
    assert not first.flags.writeable  # a caller cannot change what the next one gets
    rag_embedder.encode_query("cache probe two")
    rag_embedder.encode_query("cache probe three")  # pushes "one" out
    again = rag_embedder.encode_query("cache probe one")
    assert again is not first
    assert np.allclose(again, first, atol=1e-6)
