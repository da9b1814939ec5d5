"""Ingestion throughput: end-to-end ``Library.ingest_many`` vs raw ``model.encode``.

Both sides embed the very same chunk texts with the same batch size; the
end-to-end side also reads the files, parses, chunks, hashes, adds to FAISS
and BM25 and writes the index to disk. Rounds alternate (raw, ingest, raw, ...)
so that a noisy neighbour on the machine hurts both sides alike; the best
round of each is reported, with ingest / raw. Because the machine may be
shared, the time ingest spends outside ``encode`` is measured too: that is
the overhead this package adds, free of the model's noise.

    python bench/bench_rag_ingest.py [--data ../shared/data/scifact-subset] [--docs 400]

Uses SciFact abstracts as realistic text (one .txt file each). Prints figures only.
"""

from __future__ import annotations

import argparse
import json
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

from rag_index import Embedder, Library  # noqa: E402
from rag_index.chunker import Chunker  # noqa: E402
from rag_index.loaders import load_document  # noqa: E402


class TimedEmbedder:
    """The real embedder, with the seconds spent in ``encode`` added up."""

    def __init__(self, real: Embedder) -> None:
        self._real = real
        self.dimension = real.dimension
        self.max_tokens = real.max_tokens
        self.encode_seconds = 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        began = time.perf_counter()
        try:
            return self._real.encode(texts)
        finally:
            self.encode_seconds += time.perf_counter() - began

    def encode_query(self, text: str) -> np.ndarray:
        return self._real.encode_query(text)

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._real.token_spans(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/scifact-subset")
    parser.add_argument("--docs", type=int, default=400, help="abstracts per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    lines = (args.data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: args.docs]
    real = Embedder()
    real.encode(["warm up the model"] * 8)
    embedder = TimedEmbedder(real)
    with tempfile.TemporaryDirectory() as scratch:
        files = Path(scratch) / "files"
        files.mkdir()
        uploads: list[tuple[Path | str | bytes, str]] = []
        for line in lines:
            row = json.loads(line)
            path = files / f"{row['_id']}.txt"
            path.write_text(f"{row['title']}\n\n{row['text']}".strip(), encoding="utf-8")
            uploads.append((path, path.name))
        chunker = Chunker(real.token_spans)
        texts = [
            chunk.text
            for path, name in uploads
            for chunk in chunker.split(load_document(Path(path).read_bytes(), name))
        ]
        print(f"{len(uploads)} files -> {len(texts)} chunks, batch size {real.batch_size}, "
              f"{sum(len(t) for t in texts) / len(texts):.0f} chars per chunk")

        raw_rates, ingest_rates, overheads = [], [], []
        for round_no in range(args.rounds):
            start = time.perf_counter()
            real.model.encode(texts, batch_size=real.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
            raw_rates.append(len(texts) / (time.perf_counter() - start))

            library = Library(Path(scratch) / f"index-{round_no}", embedder)
            embedder.encode_seconds = 0.0
            start = time.perf_counter()
            batch = library.ingest_many(uploads, "bench")
            elapsed = time.perf_counter() - start
            assert not batch.failed and library.chunk_count == len(texts)
            ingest_rates.append(len(texts) / elapsed)
            overheads.append(elapsed - embedder.encode_seconds)
            ratio = ingest_rates[-1] / raw_rates[-1]
            print(f"round {round_no + 1}: raw encode {raw_rates[-1]:6.1f} chunks/s, "
                  f"ingest_many {ingest_rates[-1]:6.1f} chunks/s ({ratio:.1%}); "
                  f"outside encode {overheads[-1]:.2f}s of {elapsed:.1f}s")
        best_raw, best_ingest = max(raw_rates), max(ingest_rates)
        print(f"best: raw {best_raw:.1f} chunks/s, ingest {best_ingest:.1f} chunks/s, "
              f"ingest/raw = {best_ingest / best_raw:.1%}; work besides embedding "
              f"{min(overheads) * 1000 / len(texts):.2f} ms per chunk")


if __name__ == "__main__":
    main()
