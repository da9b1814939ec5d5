"""Retrieval: BM25 on its own, fusion, and what a search returns to the app."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rag_index import Embedder, Library, SearchMode
from rag_index.bm25 import Analyzer, BM25Index
from rag_index.retriever import reciprocal_rank_fusion

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture

ISSUES = [
    "the printer jammed", "the laptop would not boot", "the VPN dropped",
    "email stopped syncing", "the monitor flickered", "the badge reader failed",
]

MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


def tickets(count: int = 30) -> dict[str, str]:
    """Near-identical support tickets that differ mainly in their number."""
    rng = random.Random(7)
    numbers = rng.sample(range(10_000, 100_000), count)
    return {
        f"ticket-{n}.txt": f"Ticket {n}: {rng.choice(ISSUES)} on floor {rng.randint(1, 9)}. "
        "Support reset the device and the user confirmed it works."
        for n in numbers
    }


@pytest.fixture(scope="module")
def ticket_library(tmp_path_factory: pytest.TempPathFactory, rag_embedder: Embedder) -> Library:
    library = Library(tmp_path_factory.mktemp("tickets"), rag_embedder)
    library.ingest_many([(text.encode(), name) for name, text in tickets().items()], "alice")
    return library


def test_hybrid_finds_a_rare_exact_term_that_dense_search_misses(ticket_library: Library) -> None:
    top1 = {"dense": 0, "bm25": 0, "hybrid": 0}
    for name in tickets():
        number = name.removeprefix("ticket-").removesuffix(".txt")
        for mode in MODES:
            query = f"what happened in ticket {number}?"
            hits = ticket_library.search(query, "alice", k=3, mode=mode)
            top1[mode] += hits[0].document_name == name
    assert top1["bm25"] == top1["hybrid"] == 30
    assert top1["dense"] < 15, "the test needs a case dense retrieval gets wrong"


def test_hits_are_numbered_for_citation_and_carry_their_source(ticket_library: Library) -> None:
    hits = ticket_library.search("printer jammed", "alice", k=4)
    assert [h.citation for h in hits] == [1, 2, 3, 4]
    assert all(h.document_name.startswith("ticket-") and h.page is None for h in hits)
    assert all("printer jammed" in h.text for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.dense_score is not None for h in hits)
    assert len({h.chunk_id for h in hits}) == 4


def test_min_score_drops_weak_hits(ticket_library: Library) -> None:
    everything = ticket_library.search("recipe for banana bread", "alice", k=5, mode="dense")
    assert len(everything) == 5 and max(h.score for h in everything) < 0.3
    strict = ticket_library.search("recipe for banana bread", "alice", mode="dense", min_score=0.3)
    assert strict == []
    strong = ticket_library.search("the VPN dropped", "alice", k=5, min_score=0.4)
    assert strong and all(h.score >= 0.4 and "VPN" in h.text for h in strong)


def test_bm25_mode_returns_only_lexical_matches(ticket_library: Library) -> None:
    assert ticket_library.search("zeppelin", "alice", mode="bm25") == []
    assert ticket_library.search("   ", "alice") == []
    with pytest.raises(ValueError, match="unknown search mode"):
        ticket_library.search("printer", "alice", mode="fuzzy")  # type: ignore[arg-type]


def test_same_file_in_library_and_chat_is_cited_once(
    tmp_path: Path, rag_embedder: Embedder
) -> None:
    library = Library(tmp_path, rag_embedder)
    text = b"The cafeteria opens at eight and closes at three."
    library.ingest(text, "hours.txt", "alice", "chat-1")
    # attached to a chat first, then added to the library: two documents
    assert not library.ingest(text, "hours.txt", "alice").duplicate
    hits = library.search("when does the cafeteria open", "alice", "chat-1", k=5)
    assert [h.text for h in hits] == [text.decode()]


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = reciprocal_rank_fusion([np.array([1, 2, 3]), np.array([3, 2, 9])], rrf_k=60)
    assert max(fused, key=fused.__getitem__) in (2, 3)
    assert fused[2] == pytest.approx(2 / 62)
    assert set(fused) == {1, 2, 3, 9}


# ---- BM25 on its own ---------------------------------------------------------

CORPUS = [
    "the cat sat on the mat",
    "dogs and cats living together",
    "a study of cells and cell division",
    "studies show cats sleep a lot",
    "quantum chromodynamics of quarks",
    "the mat was red and the cat was black",
]


def test_analyzer_folds_case_plurals_and_drops_stopwords() -> None:
    assert Analyzer()("The Cats and the STUDIES of cells") == {"cat": 1, "study": 1, "cell": 1}


def test_bm25_ranks_by_term_rarity_and_frequency() -> None:
    index = BM25Index()
    index.add(range(len(CORPUS)), CORPUS)
    ids, scores = index.search("cat mat", 3)
    assert set(ids[:2].tolist()) == {0, 5}
    assert np.all(np.diff(scores) <= 0)
    assert index.search("quark", 5)[0].tolist() == [4]
    assert index.search("unknownword", 5)[0].tolist() == []


def test_incremental_adds_and_deletes_match_a_fresh_index() -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 30))) for _ in range(400)]
    incremental = BM25Index()
    start = 0
    while start < len(texts):  # many small batches exercise segment merging
        size = rng.randint(1, 40)
        incremental.add(range(start, min(start + size, len(texts))), texts[start : start + size])
        start += size
    removed = set(rng.sample(range(len(texts)), 150))
    incremental.remove(sorted(removed)[:70])
    incremental.remove(sorted(removed)[70:])
    incremental.add(range(1000, 1010), texts[:10])
    fresh = BM25Index()
    keep = [i for i in range(len(texts)) if i not in removed]
    fresh.add(keep + list(range(1000, 1010)), [texts[i] for i in keep] + texts[:10])
    assert len(incremental) == len(fresh) == len(keep) + 10
    for query in ["w1 w2", "w59", "w3 w3 w40 w7", "w10 w20 w30 w40 w50"]:
        a_ids, a_scores = incremental.search(query, 20)
        b_ids, b_scores = fresh.search(query, 20)
        assert np.allclose(a_scores, b_scores, rtol=1e-5)
        assert set(a_ids.tolist()).isdisjoint(removed)
        assert incremental.ceiling(query) == pytest.approx(fresh.ceiling(query))


def test_bm25_respects_allowed_ids_before_top_k() -> None:
    index = BM25Index()
    index.add(range(len(CORPUS)), CORPUS)
    ids, _ = index.search("cat", 1, allowed_ids=np.array([3, 4]))
    assert ids.tolist() == [3]


def test_bm25_refuses_ids_out_of_order() -> None:
    index = BM25Index()
    index.add([5, 6], ["a b", "c d"])
    with pytest.raises(ValueError):
        index.add([6], ["e"])
