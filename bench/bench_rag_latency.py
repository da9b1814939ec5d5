"""Query latency of ``Library.search`` at 10,000 and 100,000 chunks, before and after.

The bulk is synthetic: documents of random sentences over a Zipf-distributed
vocabulary go through the real ingest path (``Library.ingest_many``: loader,
real tokenizer and chunker, BM25 on the real text, FAISS, disk). Only the
DOCUMENT vectors may be stand-ins:

- ``--fast-build`` (the default from 50,000 chunks up): each chunk gets a
  deterministic random unit vector of the model's dimension (384) instead of
  the model's output. Embedding 100k chunks with MiniLM on two busy cores takes
  hours (27 Nov 2026, load 14: 201 chunks in 132 s); a flat FAISS scan costs
  the same whatever the vector values, and BM25 scores the real generated text,
  so the timings are those of a real library.
  (Which chunks a dense search returns is meaningless, so this bench measures
  time, never quality: see bench_rag_quality.py for that.)
- ``--no-fast-build`` (the default below 50,000): the real model embeds every
  chunk, as the app does.

QUERIES are always embedded by the real model, inside the timed ``search``
call, so every figure includes query embedding. Every (mode, scope) pass gets
its own fresh queries, so the query-vector cache never answers (a repeated
query costs no embedding at all).

Two owners share the index: "alice" owns about all the chunks, "bob" a few
thousand, so every search runs with its owner filter (the realistic path).
The build lifts the per-owner limit (the app's default: 50,000 chunks), so at
100k alice's scope is the whole index: the worst case for one owner.

    git archive 83c31d8^ rag_index | tar -x -C /tmp/old   # the code before the change
    python bench/bench_rag_latency.py [--chunks 10000,100000] [--baseline /tmp/old]
                                      [--queries 100] [--keep DIR] [--[no-]fast-build]

Each size is indexed once (current code; with ``--keep DIR`` a library built
earlier the same way is reused: ``DIR/chunks-N-random`` or ``DIR/chunks-N-model``);
the searches then run in child processes, before / after / before, on the same
files (so the old code reads what the new one wrote). Prints p50/p95 per mode and scope, the query
embedding alone, the time to open the index and the RSS after opening it;
no thresholds. On a shared machine read the two "before" columns as the noise.

Where the time goes (component timings of 27 Nov 2026, a 2-core machine shared
with other work, load 5-15, so read them as rough): a one-query
``SentenceTransformer.encode`` p50 21 ms against 16.5 ms for the model's own
forward pass (9 ms vs 20 ms with one torch thread); a FAISS flat scan of 100k
x 384 float32, one thread, p50 5-6 ms (with an id bitmap 5 ms; fp16 2.6 ms and
SQ8 2.7 ms with recall@10 vs flat 1.0 / 0.99 on random vectors); and, per
query, a scope's FAISS bitmap and BM25 row mask rebuilt from all its ids.
Changed: the one-query embedding path (``embedder._direct_query_encoder``,
checked against ``encode`` at every load), scope masks built once per scope
(``scopes.ScopeCache``), recent query vectors cached (LRU), BM25 rows int32.
At load 27 one query embedding took seconds (torch's two threads spin-waiting
on an oversubscribed machine): see issue 14 item 5 for the thread count.

The plan for 1,000,000 chunks (on paper; nothing here builds it yet):

- Vectors: flat float32 is 1.5 GB and a 25-40 ms scan on one core. Past about
  200k chunks, train an ``IndexIVFScalarQuantizer`` (SQ8: 384 B a vector,
  0.4 GB; nlist 4096, trained on a 100k sample, re-trained when the index
  doubles) and search it with nprobe 32-64: about 1.5 % of the vectors, 1-3 ms.
  Keep exact re-scoring of the top 100 from the float32 vectors on disk
  (memory-mapped segments). HNSW is out: FAISS HNSW cannot remove vectors,
  and deleting a document must. Gate: recall@10 against flat >= 0.97 on
  SciFact and SQuAD-like data, measured with this bench and bench_rag_quality.
- Scopes: IVF with a selector loses recall for a small owner (few of their
  vectors sit in the probed lists), so an owner scope under ~50k chunks is
  searched exactly in its own flat sub-index (50k x 384 x 4 B = 77 MB, 3-5 ms),
  and only big scopes use the IVF. Sub-indexes per owner also make a delete
  touch one owner's index.
- BM25: ~100M postings at 1M chunks; as now (int32 row + float32 tf) 0.8 GB.
  Store quantised impacts (uint8 BM25 weight per posting, 5 B) and stop
  scoring a term's long tail (impact-ordered postings, top 10k per common
  term): expected 5-10 ms for a 10-term query.
- Chunk texts (about 1 GB as Python strings at 1M) move out of memory: read the
  hits' texts from the segment files (or SQLite) after ranking.
- Expected: embedding ~10 ms + IVF 2 ms + BM25 10 ms + fusion 1 ms, p50 ~25 ms;
  RSS ~1.2 GB with the model (0.4 GB vectors, 0.5 GB postings).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# ``--source DIR`` (the child that measures) imports rag_index from DIR instead.
_SOURCE = sys.argv[sys.argv.index("--source") + 1] if "--source" in sys.argv else str(REPO)
sys.path.insert(0, _SOURCE)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_index import Embedder, IngestFailure, Library, SearchMode  # noqa: E402

if TYPE_CHECKING:
    from rag_index import TextEmbedder

COMMON_WORDS = """cell protein gene expression tumor patient study risk trial dose receptor signal
pathway immune response mouse model tissue blood level increase decrease effect treatment therapy
cancer growth factor activity function role mechanism analysis data result sample group control
disease clinical association outcome infection virus bacteria drug inhibitor binding membrane
mutation sequence dna rna transcription regulation development stem differentiation brain neuron
heart liver kidney lung muscle bone insulin glucose metabolism obesity diabetes inflammation
cytokine antibody vaccine""".split()  # noqa: SIM905 - a word list reads best as text
MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")


FAST_BUILD_FROM = 50_000
"""Sizes from here up use random document vectors unless ``--no-fast-build``."""


class RandomVectorEmbedder:
    """The real model for queries and tokenising; random unit vectors for bulk chunks.

    Seeded, so a build is reproducible: the same chunks get the same vectors.
    """

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
        self.cumulative = np.cumsum(weights / weights.sum())
        self.rng = rng

    def phrase(self, length: int) -> str:
        # rng.choice(p=...) rebuilds the cumulative sum of 30k weights per call: minutes per batch.
        picks = np.searchsorted(self.cumulative, self.rng.random(length) * self.cumulative[-1])
        return " ".join(self.words[i] for i in picks)

    def document(self, sentences: int) -> bytes:
        out = []
        for n, length in enumerate(self.rng.integers(8, 20, size=sentences)):
            out.append(self.phrase(int(length)).capitalize() + (".\n\n" if n % 6 == 5 else ". "))
        return "".join(out).encode()


_VECTORS = {
    True: "document vectors: random unit vectors, --fast-build",
    False: "document vectors: the real model",
}


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def build(directory: Path, chunks: int, sentences: int, fast: bool) -> None:
    """Index ``chunks`` synthetic chunks for alice, and 20 documents for bob, into ``directory``.

    ``fast``: random document vectors (``RandomVectorEmbedder``), else the real model's.
    """
    real = Embedder()
    embedder: TextEmbedder = RandomVectorEmbedder(real) if fast else real
    text = TextGenerator(30_000, np.random.default_rng(42))
    # No per-owner limit (the app's default is 50,000 chunks): alice alone holds them all,
    # the worst case for her searches. A refused file stops the build instead of looping.
    library = Library(directory, embedder, max_chunks_per_owner=0)
    start = time.perf_counter()
    docs, per_batch = 0, 1  # one document first, to learn the chunks per document
    while library.chunk_count < chunks:
        batch = [(text.document(sentences), f"doc-{docs + i}.txt") for i in range(per_batch)]
        failed = [o for o in library.ingest_many(batch, "alice").outcomes
                  if isinstance(o, IngestFailure)]
        if failed:
            raise SystemExit(f"the build stopped at {library.chunk_count} chunks: {failed[0]}")
        docs += per_batch
        per_doc = library.chunk_count / docs
        per_batch = max(1, min(100, math.ceil((chunks - library.chunk_count) / per_doc)))
    alice = library.chunk_count
    for i in range(20):
        library.ingest(text.document(sentences), f"bob-{i}.txt", "bob")
    rss, peak = _rss_mb()
    print(f"indexed {library.chunk_count} chunks ({alice} alice, "
          f"{library.chunk_count - alice} bob) in {time.perf_counter() - start:.0f}s "
          f"({_VECTORS[fast]}); "
          f"RSS of the indexing process {rss:.0f} MB (peak {peak:.0f} MB)", flush=True)


def measure(directory: Path, queries: int) -> dict[str, float]:
    """Open the library in ``directory`` and time searches; each pass has its own queries.

    Fresh queries per pass keep the query-vector cache out of the figures.
    """
    real = Embedder()
    real.load()
    began = time.perf_counter()
    library = Library(directory, RandomVectorEmbedder(real))
    figures = {"open s": time.perf_counter() - began}
    figures["rss MB"], figures["peak MB"] = _rss_mb()
    text = TextGenerator(30_000, np.random.default_rng(42))
    text.rng = np.random.default_rng(7)

    def fresh() -> list[str]:
        return [f"What is known about {text.phrase(int(n))}?"
                for n in text.rng.integers(5, 12, size=queries)]

    for query in fresh()[:5]:
        library.search(query, "alice")  # warm up the model and the index
    for mode in MODES:
        for owner in ("alice", "bob"):
            times = []
            for query in fresh():
                start = time.perf_counter()
                hits = library.search(query, owner, k=5, mode=mode)
                times.append((time.perf_counter() - start) * 1000)
                assert all(hit.document_name.startswith(("doc-", "bob-")[owner == "bob"])
                           for hit in hits)
            figures[f"{mode} {owner} p50"] = float(np.percentile(times, 50))
            figures[f"{mode} {owner} p95"] = float(np.percentile(times, 95))
    times = []
    for query in fresh():
        start = time.perf_counter()
        real.encode_query(query)
        times.append((time.perf_counter() - start) * 1000)
    figures["embedding p50"] = float(np.percentile(times, 50))
    figures["embedding p95"] = float(np.percentile(times, 95))
    return figures


def measure_with(source: Path, directory: Path, queries: int) -> dict[str, float]:
    """``measure`` in a child process that imports ``rag_index`` from ``source``."""
    command = [sys.executable, __file__, "--measure", str(directory), "--source", str(source),
               "--queries", str(queries)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=100, help="per mode and scope")
    parser.add_argument("--sentences-per-doc", type=int, default=400)
    parser.add_argument("--baseline", type=Path, help="a source tree holding the old rag_index/")
    parser.add_argument("--keep", type=Path, help="build the libraries here and reuse them")
    parser.add_argument(
        "--fast-build", action=argparse.BooleanOptionalAction, default=None,
        help="random unit vectors for the documents (queries still use the model); "
        f"default: on from {FAST_BUILD_FROM:,} chunks up")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.queries)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        for size in (int(n) for n in args.chunks.split(",")):
            fast = size >= FAST_BUILD_FROM if args.fast_build is None else args.fast_build
            directory = root / f"chunks-{size}-{'random' if fast else 'model'}"
            if not (directory / "manifest.json").exists():
                build(directory, size, args.sentences_per_doc, fast)
            runs = [("after", REPO)]
            if args.baseline:
                runs = [("before", args.baseline.resolve()), *runs, ("before", args.baseline)]
            # before, after, before: drift in the machine's load shows between the two befores
            results = [measure_with(source, directory, args.queries) for _, source in runs]
            print(f"\n{size} chunks (k=5, ms; machine shared; {_VECTORS[fast]}; "
                  "queries embedded by the real model inside each timed search, "
                  "fresh queries per pass):")
            print(f"  {'':18} " + " ".join(f"{label:>8}" for label, _ in runs))
            for key in results[-1]:
                print(f"  {key:18} " + " ".join(f"{run[key]:8.1f}" for run in results))


if __name__ == "__main__":
    main()
