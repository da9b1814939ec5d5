"""Retrieval quality of rag_index on the SciFact subset (BEIR format).

Every abstract is written as ``<corpus-id>.txt`` (title, blank line, text) and
goes through the real path: loader, chunker, embedder, index, ``Library.search``.
Chunk hits are aggregated to documents by their best (max) score, then scored
as BEIR does: nDCG@10 and Recall@10 averaged over all queries. "hybrid" is the
library's default fusion; "hybrid-rrf" is reciprocal rank fusion (k=60) over
the same index, for comparison.

    python bench/bench_rag_quality.py [--data ../shared/data/scifact-subset]

Prints figures only; the README of the data lists reference numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_index import Embedder, Library, SearchMode  # noqa: E402

OWNER = "bench"
Qrels = dict[str, dict[str, int]]


def read_beir(data: Path) -> tuple[dict[str, str], dict[str, str], Qrels]:
    corpus: dict[str, str] = {}
    for line in (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = f"{row['title']}\n\n{row['text']}".strip()
    queries = {}
    for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: Qrels = defaultdict(dict)
    for line in (data / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, corpus_id, score = line.split("\t")
        qrels[query_id][corpus_id] = int(score)
    return corpus, {q: t for q, t in queries.items() if q in qrels}, dict(qrels)


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = [2 ** relevant.get(doc, 0) - 1 for doc in ranked[:k]]
    dcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**rel - 1) / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    wanted = {doc for doc, rel in relevant.items() if rel > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def rank_documents(library: Library, query: str, mode: SearchMode, depth: int) -> list[str]:
    best: dict[str, float] = {}
    for hit in library.search(query, OWNER, k=depth, mode=mode):
        doc = hit.document_name.removesuffix(".txt")
        best[doc] = max(best.get(doc, -math.inf), hit.score)
    return sorted(best, key=lambda doc: -best[doc])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/scifact-subset")
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--overlap-tokens", type=int, default=40)
    parser.add_argument("--depth", type=int, default=100, help="chunk hits per query to aggregate")
    parser.add_argument("--index-dir", type=Path, help="reuse (or build once into) this data dir")
    args = parser.parse_args()

    corpus, queries, qrels = read_beir(args.data.resolve())
    print(f"corpus {len(corpus)} docs, {len(queries)} queries, "
          f"chunks of {args.chunk_tokens} tokens, overlap {args.overlap_tokens}")
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.index_dir or Path(scratch) / "index"
        library = Library(data_dir, embedder, chunk_tokens=args.chunk_tokens,
                          overlap_tokens=args.overlap_tokens)
        if library.chunk_count == 0:
            files = Path(scratch) / "files"
            files.mkdir()
            for doc_id, text in corpus.items():
                (files / f"{doc_id}.txt").write_text(text, encoding="utf-8")
            start = time.perf_counter()
            batch = library.ingest_many([(files / f"{d}.txt", f"{d}.txt") for d in corpus], OWNER)
            elapsed = time.perf_counter() - start
            print(f"ingested {len(batch.succeeded)} files ({len(batch.failed)} failed), "
                  f"{library.chunk_count} chunks in {elapsed:.1f}s")
        rrf = Library(data_dir, embedder, chunk_tokens=args.chunk_tokens,
                      overlap_tokens=args.overlap_tokens, fusion="rrf")
        runs: list[tuple[str, Library, SearchMode]] = [
            ("dense", library, "dense"),
            ("bm25", library, "bm25"),
            ("hybrid", library, "hybrid"),
            ("hybrid-rrf", rrf, "hybrid"),
        ]
        print(f"{'mode':12} {'nDCG@10':>8} {'R@10':>6} {'ms/query':>9}")
        for label, searcher, mode in runs:
            start = time.perf_counter()
            ndcg = recall = 0.0
            for query_id, text in queries.items():
                ranked = rank_documents(searcher, text, mode, args.depth)
                ndcg += ndcg_at(ranked, qrels[query_id])
                recall += recall_at(ranked, qrels[query_id])
            per_query = (time.perf_counter() - start) * 1000 / len(queries)
            n = len(queries)
            print(f"{label:12} {ndcg / n:8.3f} {recall / n:6.3f} {per_query:9.1f}")


if __name__ == "__main__":
    main()
