"""A lock per key that exists only while someone holds it or waits for it.

A plain ``dict.setdefault(key, Lock())`` table keeps one lock for every key ever
asked for: 20,000 REST lookups of ids that do not exist left 20,000 locks. Here
each entry counts the threads holding or waiting for it, and the last one out
removes it. While an entry is in the table every thread asking for that key gets
the same lock; once it is gone nobody holds it, so a fresh one is as good.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Entry:
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: int = 0


class KeyedLocks:
    """``with locks.hold(key):`` orders the work on one key; re-entrant per thread."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # held only to look up or count an entry
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many keys are held or waited for right now."""
        with self._guard:
            return len(self._entries)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[key]
