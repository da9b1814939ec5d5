"""What a search scope costs to set up, paid once per scope instead of once per query.

A scope (an owner's library plus one conversation's attachments) reaches the
indexes as an array of allowed chunk ids. Turning it into what an index can
probe (a FAISS id bitmap, a BM25 row mask) costs a pass over every id, about a
millisecond per 100k ids and per index; ``ScopeCache`` keeps the result.

Invariants:
- Keys are arrays by identity, and only read-only ones (``Catalog.allowed_ids``
  freezes what it hands out): identity then implies equal contents. A writable
  array is never cached, so a caller that mutates its array is never wrong.
- An entry also records the ``version`` it was built for (e.g. the BM25 row
  count); another version rebuilds it.
- At most ``size`` entries, least recently used dropped first; an entry holds
  its key, so an id() is never reused while its entry lives.
- Thread-safe (one lock; ``make`` runs outside it, and two racing builds of the
  same entry are both correct).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


class ScopeCache(Generic[V]):
    """A small LRU from read-only id arrays (by identity) to what was built from them."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[np.ndarray, int, V]] = OrderedDict()

    def get(self, key: np.ndarray, version: int, make: Callable[[], V]) -> V:
        """The value built by ``make()`` for ``key`` at ``version``, built now if need be."""
        if key.flags.writeable:
            return make()
        with self._lock:
            entry = self._entries.get(id(key))
            if entry is not None and entry[0] is key and entry[1] == version:
                self._entries.move_to_end(id(key))
                return entry[2]
        value = make()
        with self._lock:
            self._entries[id(key)] = (key, version, value)
            self._entries.move_to_end(id(key))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
