"""Okapi BM25 over chunk texts, with incremental add and delete.

Postings live in immutable *segments* (one per ``add`` call): for each term a
slice of ``(row, tf)`` pairs, sorted by term. Deletion only clears a row's
``alive`` flag and fixes the statistics; dead postings are dropped when
segments merge. Segments merge like a binary counter (a new segment swallows
the previous one while it is at least half its size), so there are O(log n)
segments and each posting is rewritten O(log n) times. Scoring a query is a
handful of numpy gathers and one ``bincount`` over the rows.

Invariants:
- Rows are appended in increasing chunk-id order (ids are allocated
  monotonically), so ``_row_ids`` is sorted and ids map to rows by binary search.
- ``_df[t]`` counts live rows containing term ``t``; ``_total_len`` sums live
  row lengths. Idf is Lucene's ``ln(1 + (N - df + 0.5) / (df + 0.5))``.
- A scope's row mask (allowed and alive) is built once per read-only
  ``allowed_ids`` array and write generation (``scopes.ScopeCache``).
- Not thread-safe on its own: the owner (``Library``) serialises writers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .scopes import ScopeCache

_TOKEN = re.compile(r"[^\W_]+")
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same",
    "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves",
])


def _stem(word: str) -> str:
    """A light plural stemmer (Harman's S-stemmer): 'cells' -> 'cell', 'studies' -> 'study'."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    return word[:-1]


class Analyzer:
    """Text -> term counts: lower case, letters and digits, no stopwords, plurals folded."""

    def __init__(self) -> None:
        self._stems: dict[str, str | None] = {}

    def __call__(self, text: str) -> Counter[str]:
        raw = Counter(_TOKEN.findall(text.lower()))
        terms: Counter[str] = Counter()
        stems = self._stems
        for word, count in raw.items():
            stem = stems.get(word, "")
            if stem == "":
                stem = None if word in STOPWORDS else _stem(word)
                stems[word] = stem
            if stem is not None:
                terms[stem] += count
        return terms


@dataclass(frozen=True, slots=True)
class _Segment:
    terms: np.ndarray  # sorted unique term ids
    indptr: np.ndarray  # postings of terms[i] are rows[indptr[i]:indptr[i+1]]
    rows: np.ndarray  # int32 row numbers
    tfs: np.ndarray  # float32 term frequencies

    @staticmethod
    def build(rows: np.ndarray, terms: np.ndarray, tfs: np.ndarray) -> _Segment:
        order = np.lexsort((rows, terms))
        rows, terms, tfs = rows[order], terms[order], tfs[order]
        unique, starts = np.unique(terms, return_index=True)
        indptr = np.append(starts, len(terms)).astype(np.int64)
        return _Segment(unique, indptr, rows, tfs)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        i = int(np.searchsorted(self.terms, term))
        if i == len(self.terms) or self.terms[i] != term:
            return _EMPTY_I, _EMPTY_F
        start, end = self.indptr[i], self.indptr[i + 1]
        return self.rows[start:end], self.tfs[start:end]

    def terms_of(self, rows: np.ndarray) -> np.ndarray:
        """Term ids of the postings whose row is marked in the boolean array ``rows``."""
        positions = np.flatnonzero(rows[self.rows])
        return self.terms[np.searchsorted(self.indptr, positions, side="right") - 1]

    def expanded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, term ids, tfs)`` of every posting."""
        return self.rows, np.repeat(self.terms, np.diff(self.indptr)), self.tfs


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float32)


class BM25Index:
    """Lexical ranking of chunks by id; see the module docstring for the layout."""

    def __init__(
        self, *, k1: float = 1.2, b: float = 0.75, analyzer: Analyzer | None = None
    ) -> None:
        self.k1, self.b = k1, b
        self._analyze = analyzer or Analyzer()
        self._vocab: dict[str, int] = {}
        self._df = np.zeros(0, dtype=np.int64)
        self._row_ids = _EMPTY_I
        self._row_len = _EMPTY_F
        self._alive = np.zeros(0, dtype=bool)
        self._live, self._total_len = 0, 0.0
        self._segments: list[_Segment] = []
        self._generation = 0  # bumped by every add and remove: cached row masks expire
        self._scopes: ScopeCache[np.ndarray] = ScopeCache()

    def __len__(self) -> int:
        return self._live

    def add(self, ids: Sequence[int] | np.ndarray, texts: Sequence[str]) -> None:
        """Index ``texts`` under chunk ``ids`` (all larger than any id added before)."""
        new_ids = np.asarray(ids, dtype=np.int64)
        if len(new_ids) == 0:
            return
        after_last = not len(self._row_ids) or new_ids[0] > self._row_ids[-1]
        if not after_last or np.any(np.diff(new_ids) <= 0):
            raise ValueError("chunk ids must be added in increasing order")
        first_row = len(self._row_ids)
        rows: list[int] = []
        terms: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(new_ids), dtype=np.float32)
        vocab = self._vocab
        for offset, text in enumerate(texts):
            counts = self._analyze(text)
            term_ids = [vocab.setdefault(term, len(vocab)) for term in counts]
            terms.extend(term_ids)
            tfs.extend(counts.values())
            rows.extend([first_row + offset] * len(term_ids))
            lengths[offset] = sum(counts.values())
        term_arr = np.asarray(terms, dtype=np.int64)
        self._df = np.pad(self._df, (0, len(vocab) - len(self._df)))
        self._df += np.bincount(term_arr, minlength=len(vocab))
        self._row_ids = np.concatenate([self._row_ids, new_ids])
        self._row_len = np.concatenate([self._row_len, lengths])
        self._alive = np.concatenate([self._alive, np.ones(len(new_ids), dtype=bool)])
        self._live += len(new_ids)
        self._total_len += float(lengths.sum())
        self._generation += 1
        # Rows as int32: 8 bytes a posting (row + tf) instead of 12, tens of MB at 100k chunks.
        rows_arr, tfs_arr = np.asarray(rows, dtype=np.int32), np.asarray(tfs, dtype=np.float32)
        self._segments.append(_Segment.build(rows_arr, term_arr, tfs_arr))
        segments = self._segments
        while len(segments) > 1 and 2 * len(segments[-1].rows) >= len(segments[-2].rows):
            newer = self._segments.pop()
            self._segments[-1] = self._merge(self._segments[-1], newer)

    def remove(self, ids: Iterable[int] | np.ndarray) -> None:
        """Forget the chunks with these ids (unknown ids are ignored)."""
        id_array = ids if isinstance(ids, np.ndarray) else np.fromiter(ids, dtype=np.int64)
        rows = self._rows_of(id_array.astype(np.int64, copy=False))
        rows = rows[self._alive[rows]]
        if len(rows) == 0:
            return
        dead = np.zeros(len(self._alive), dtype=bool)
        dead[rows] = True
        for segment in self._segments:
            self._df -= np.bincount(segment.terms_of(dead), minlength=len(self._df))
        self._alive[rows] = False
        self._generation += 1
        self._live -= len(rows)
        self._total_len -= float(self._row_len[rows].sum())

    def ceiling(self, query: str) -> float:
        """The supremum of any chunk's score for ``query``: every term with tf -> infinity.

        Dividing by it puts BM25 on a fixed 0..1 scale ("share of the query's
        term weight matched"), which lets it be mixed with cosine similarity.
        """
        total = 0.0
        for term in self._analyze(query):
            term_id = self._vocab.get(term)
            if term_id is not None and self._df[term_id] > 0:
                total += self._idf(float(self._df[term_id])) * (self.k1 + 1.0)
        return total

    def search(
        self, query: str, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and scores of the best ``k`` live chunks with a positive score, best first."""
        if self._live == 0 or k <= 0:
            return _EMPTY_I, _EMPTY_F
        avg_len = max(self._total_len / self._live, 1e-9)
        all_rows: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for term in self._analyze(query):
            term_id = self._vocab.get(term)
            if term_id is None or self._df[term_id] <= 0:
                continue
            idf = self._idf(float(self._df[term_id]))
            for segment in self._segments:
                rows, tfs = segment.postings(term_id)
                if len(rows):
                    norm = self.k1 * (1.0 - self.b + self.b * self._row_len[rows] / avg_len)
                    all_rows.append(rows)
                    weights.append(idf * tfs * (self.k1 + 1.0) / (tfs + norm))
        if not all_rows:
            return _EMPTY_I, _EMPTY_F
        scores = np.bincount(
            np.concatenate(all_rows), np.concatenate(weights), minlength=len(self._alive)
        )
        if allowed_ids is None:
            searchable = self._alive
        else:
            allowed = np.asarray(allowed_ids, dtype=np.int64)
            searchable = self._scopes.get(allowed, self._generation, lambda: self._mask(allowed))
        scores *= searchable
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.argsort(-scores[hits], kind="stable")]
        return self._row_ids[hits], scores[hits].astype(np.float32)

    def _mask(self, allowed_ids: np.ndarray) -> np.ndarray:
        """Rows that are alive and hold one of ``allowed_ids``."""
        mask = np.zeros(len(self._alive), dtype=bool)
        mask[self._rows_of(allowed_ids)] = True
        mask &= self._alive
        return mask

    def _idf(self, df: float) -> float:
        return float(np.log1p((self._live - df + 0.5) / (df + 0.5)))

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        rows = np.searchsorted(self._row_ids, ids)
        found = rows < len(self._row_ids)
        found[found] = self._row_ids[rows[found]] == ids[found]
        return rows[found]

    def _merge(self, older: _Segment, newer: _Segment) -> _Segment:
        parts = [older.expanded(), newer.expanded()]
        rows, terms, tfs = (np.concatenate([part[i] for part in parts]) for i in range(3))
        keep = self._alive[rows]
        return _Segment.build(rows[keep], terms[keep], tfs[keep])
