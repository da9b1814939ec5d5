"""Query latency of ``Library.search`` with 100,000 chunks indexed.

The bulk is synthetic so the bench runs in minutes: documents of random
sentences over a Zipf-distributed vocabulary go through the real ingest path
(loader, chunker, BM25, FAISS, disk), but their embeddings are random unit
vectors instead of model output. Queries are embedded by the real model inside
the timed ``search`` call, so the figures include query embedding.

Two owners share the index: "alice" owns about 100k chunks, "bob" a few
thousand, so every search runs with its owner filter (the realistic path).

    python bench/bench_rag_latency.py [--chunks 100000] [--queries 200]

Prints p50/p95 per mode and scope; no thresholds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_index import Embedder, Library, SearchMode  # noqa: E402

COMMON_WORDS = """cell protein gene expression tumor patient study risk trial dose receptor signal
pathway immune response mouse model tissue blood level increase decrease effect treatment therapy
cancer growth factor activity function role mechanism analysis data result sample group control
disease clinical association outcome infection virus bacteria drug inhibitor binding membrane
mutation sequence dna rna transcription regulation development stem differentiation brain neuron
heart liver kidney lung muscle bone insulin glucose metabolism obesity diabetes inflammation
cytokine antibody vaccine""".split()
MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")


class RandomVectorEmbedder:
    """The real model for queries and tokenising; random unit vectors for bulk chunks."""

    def __init__(self, real: Embedder, seed: int = 0) -> None:
        self._real = real
        self._rng = np.random.default_rng(seed)
        self.dimension = real.dimension
        self.max_tokens = real.max_tokens

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._rng.standard_normal((len(texts), self.dimension), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_query(self, text: str) -> np.ndarray:
        return self._real.encode_query(text)

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._real.token_spans(texts)


class TextGenerator:
    """Sentences over real-ish frequent words and made-up rare ones, Zipf-weighted."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        syllables = ["ka", "lo", "mi", "ne", "tor", "vex", "sul", "dra", "pin", "gor", "zet", "qua"]
        made_up = {"".join(rng.choice(syllables, size=rng.integers(2, 5))) for _ in range(size * 2)}
        self.words = COMMON_WORDS + sorted(made_up)[: size - len(COMMON_WORDS)]
        weights = 1.0 / np.arange(1, len(self.words) + 1) ** 1.05
        self.weights = weights / weights.sum()
        self.rng = rng

    def phrase(self, length: int) -> str:
        picks = self.rng.choice(len(self.words), size=length, p=self.weights)
        return " ".join(self.words[i] for i in picks)

    def document(self, sentences: int) -> bytes:
        out = []
        for n, length in enumerate(self.rng.integers(8, 20, size=sentences)):
            out.append(self.phrase(int(length)).capitalize() + (".\n\n" if n % 6 == 5 else ". "))
        return "".join(out).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sentences-per-doc", type=int, default=400)
    args = parser.parse_args()

    real = Embedder()
    embedder = RandomVectorEmbedder(real)
    text = TextGenerator(30_000, np.random.default_rng(42))
    with tempfile.TemporaryDirectory() as scratch:
        library = Library(Path(scratch), embedder)
        start = time.perf_counter()
        docs, per_batch = 0, 100
        while library.chunk_count < args.chunks:
            batch = [(text.document(args.sentences_per_doc), f"doc-{docs + i}.txt")
                     for i in range(per_batch)]
            library.ingest_many(batch, "alice")
            docs += per_batch
            per_doc = library.chunk_count / docs
            per_batch = max(1, min(100, math.ceil((args.chunks - library.chunk_count) / per_doc)))
        alice = library.chunk_count
        for i in range(20):
            library.ingest(text.document(args.sentences_per_doc), f"bob-{i}.txt", "bob")
        bob = library.chunk_count - alice
        print(f"indexed {library.chunk_count} chunks ({alice} alice, {bob} bob) from "
              f"{docs + 20} documents in {time.perf_counter() - start:.0f}s")

        queries = [f"What is known about {text.phrase(int(n))}?"
                   for n in text.rng.integers(5, 12, size=args.queries)]
        for query in queries[:5]:
            library.search(query, "alice")  # warm up caches and the model
        print(f"{'mode':7} {'scope':12} {'p50 ms':>7} {'p95 ms':>7} {'mean':>7}"
              "   (k=5, query embedding included)")
        for mode in MODES:
            for owner in ("alice", "bob"):
                times = []
                for query in queries:
                    began = time.perf_counter()
                    hits = library.search(query, owner, k=5, mode=mode)
                    times.append((time.perf_counter() - began) * 1000)
                    assert all(hit.document_name.startswith(("doc-", "bob-")[owner == "bob"])
                               for hit in hits)
                scope = f"{owner} {alice if owner == 'alice' else bob}"
                p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
                print(f"{mode:7} {scope:12} {p50:7.1f} {p95:7.1f} {np.mean(times):7.1f}")
        times = []
        for query in queries:
            began = time.perf_counter()
            real.encode_query(query)
            times.append((time.perf_counter() - began) * 1000)
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"query embedding alone: p50 {p50:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
