"""Cut pages into chunks measured in tokens of the embedding model's tokenizer.

Each page is tokenised once (character spans of every token). A chunk takes at
most ``chunk_tokens`` tokens and ends, by preference, at a paragraph break,
else at a sentence end, else at a line break, else between words; only a single
"word" longer than a whole chunk is cut inside. The next chunk starts up to
``overlap_tokens`` tokens before the previous one ended, at the earliest
sentence (else word) start in that window, so context carries across the cut.

Invariants:
- ``chunk.text == page.text[chunk.char_start:chunk.char_start + len(chunk.text)]``:
  chunks are exact slices, never rewritten text.
- A chunk never holds more than ``chunk_tokens`` tokens (cuts fall on the
  tokenizer's own word boundaries, so re-tokenising a chunk gives the same count).
- Chunks never span pages; ``ordinal`` counts chunks across the whole document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .loaders import Page

TokenSpans = Callable[[Sequence[str]], list[np.ndarray]]
"""Given texts, one ``(n_tokens, 2)`` int array of ``[start, end)`` character spans each."""

_PARAGRAPH, _SENTENCE, _LINE, _WORD = 3, 2, 1, 0
# Fraction of a full chunk that must precede a cut of this level before we take it.
_MIN_FILL = {_PARAGRAPH: 0.5, _SENTENCE: 0.3, _LINE: 0.3, _WORD: 0.0}
_PARAGRAPH_START = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_START = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*\s+")
_LINE_START = re.compile(r"\n\s*")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of one page's text, ready to embed."""

    text: str
    source: str
    page: int | None
    ordinal: int
    char_start: int
    n_tokens: int


class Chunker:
    """Token-bounded, boundary-aware splitter. Stateless apart from its settings."""

    def __init__(
        self, token_spans: TokenSpans, *, chunk_tokens: int = 200, overlap_tokens: int = 40
    ) -> None:
        if chunk_tokens < 8:
            raise ValueError("chunk_tokens must be at least 8")
        if not 0 <= overlap_tokens <= chunk_tokens // 2:
            raise ValueError("overlap_tokens must be between 0 and half of chunk_tokens")
        self._token_spans = token_spans
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens

    def split(self, pages: Sequence[Page]) -> list[Chunk]:
        """Chunks of one document's pages, in reading order."""
        return self.split_many([pages])[0]

    def split_many(self, documents: Sequence[Sequence[Page]]) -> list[list[Chunk]]:
        """Chunks for several documents, tokenising all their pages in one batch."""
        flat = [page for pages in documents for page in pages]
        spans = iter(self._token_spans([page.text for page in flat]) if flat else [])
        result: list[list[Chunk]] = []
        for pages in documents:
            chunks: list[Chunk] = []
            for page in pages:
                for start, end, n_tokens in self._cuts(page.text, next(spans)):
                    text = page.text[start:end]
                    chunks.append(Chunk(text, page.source, page.page, len(chunks), start, n_tokens))
            result.append(chunks)
        return result

    def _cuts(self, text: str, spans: np.ndarray) -> list[tuple[int, int, int]]:
        """``(char_start, char_end, n_tokens)`` of each chunk of one page."""
        n = len(spans)
        if n == 0:
            return []
        starts, ends = spans[:, 0], spans[:, 1]
        level = _boundary_levels(text, starts, ends)
        size, overlap = self.chunk_tokens, self.overlap_tokens
        cuts: list[tuple[int, int, int]] = []
        begin = 0
        while True:
            limit = begin + size
            if limit >= n:
                cuts.append((int(starts[begin]), int(ends[n - 1]), n - begin))
                return cuts
            end = _best_cut(level, begin, limit, size)
            cuts.append((int(starts[begin]), int(ends[end - 1]), end - begin))
            begin = _overlap_start(level, max(begin + 1, end - overlap), end)


def _boundary_levels(text: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``level[i]``: the strongest boundary just before token ``i`` (-1: inside a word)."""
    level = np.full(len(starts), -1, dtype=np.int8)
    level[1:][starts[1:] > ends[:-1]] = _WORD
    patterns = ((_LINE, _LINE_START), (_SENTENCE, _SENTENCE_START), (_PARAGRAPH, _PARAGRAPH_START))
    for lvl, pattern in patterns:
        positions = np.fromiter((m.end() for m in pattern.finditer(text)), dtype=np.int64)
        if len(positions):
            index = np.searchsorted(starts, positions)
            index = index[(index > 0) & (index < len(starts))]
            level[index] = np.maximum(level[index], lvl)
    return level


def _best_cut(level: np.ndarray, begin: int, limit: int, size: int) -> int:
    """Token index at which to end a chunk starting at ``begin`` (exclusive end <= limit)."""
    for lvl in (_PARAGRAPH, _SENTENCE, _LINE, _WORD):
        low = begin + max(1, int(size * _MIN_FILL[lvl]))
        candidates = np.flatnonzero(level[low : limit + 1] >= lvl)
        if len(candidates):
            return low + int(candidates[-1])
    return limit


def _overlap_start(level: np.ndarray, low: int, end: int) -> int:
    """Earliest sentence start (else word start) in ``[low, end)``; ``end`` if none."""
    for lvl in (_SENTENCE, _WORD):
        candidates = np.flatnonzero(level[low:end] >= lvl)
        if len(candidates):
            return low + int(candidates[0])
    return end
