"""A bounded LRU of recently used conversations in front of any ``ConversationStore``.

``CachedStore`` takes a store and is one (store.py's protocol), so the runtime
hands it to ``ChatService`` and every read and write of the app goes through
it. Reading a conversation that was used lately costs no file read; ``stats()``
counts the hits and misses of ``load``.

Invariant: a ``load`` never returns a version older than the store's, because

- all writes go through this object (a ``FileStore`` holds its data folder's
  lock, so no other process writes it either);
- a write first drops the cached copy, then writes the store, then caches
  what it wrote, all under a per-conversation lock;
- a miss reads the store under that same lock, so it cannot cache a version
  that a concurrent write has already replaced.

The per-conversation locks exist only while in use (``locks.KeyedLocks``), and a
miss on an id that does not exist caches nothing, so lookups of unknown ids
leave nothing behind. Conversations are immutable values, so handing out the
cached object is safe.
"""

from __future__ import annotations

import builtins
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Self

from chatui.locks import KeyedLocks
from chatui.store import (
    CacheStats,
    ConversationPage,
    ConversationStore,
    ConversationSummary,
    owned,
)
from chatui.tree import Conversation

__all__ = ["DEFAULT_CAPACITY", "CacheStats", "CachedStore"]

DEFAULT_CAPACITY = 128


class CachedStore:
    """A ``ConversationStore`` with the last ``capacity`` conversations kept in memory."""

    def __init__(self, store: ConversationStore, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("The cache must hold at least one conversation.")
        self.store = store
        self.capacity = capacity
        self._recent: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()  # guards _recent and the counters
        self._locks = KeyedLocks()  # one per conversation being read or written
        self._hits = 0
        self._misses = 0

    @property
    def problems(self) -> builtins.list[str]:
        return self.store.problems

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._recent), self.capacity)

    def load(self, conversation_id: str, owner: str | None = None) -> Conversation:
        cached = self._cached(conversation_id)
        if cached is not None:
            return owned(cached, owner)
        with self._locks.hold(conversation_id):
            cached = self._cached(conversation_id)  # filled while we waited
            if cached is not None:
                return owned(cached, owner)
            conversation = self.store.load(conversation_id, owner)
            with self._lock:
                self._misses += 1
                self._remember(conversation)
            return conversation

    def save(self, conversation: Conversation) -> None:
        with self._locks.hold(conversation.id):
            self._forget(conversation.id)
            self.store.save(conversation)
            with self._lock:
                self._remember(conversation)

    def update(
        self, conversation_id: str, change: Callable[[Conversation], Conversation],
        owner: str | None = None,
    ) -> Conversation:
        with self._locks.hold(conversation_id):
            self._forget(conversation_id)
            changed = self.store.update(conversation_id, change, owner)
            with self._lock:
                self._remember(changed)
            return changed

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        with self._locks.hold(conversation_id):
            self._forget(conversation_id)
            self.store.delete(conversation_id, owner)

    def exists(self, conversation_id: str, owner: str | None = None) -> bool:
        return self.store.exists(conversation_id, owner)

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        return self.store.list(owner)

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        return self.store.search(text, owner)

    def page(
        self, owner: str | None, limit: int, cursor: str | None = None, search: str = ""
    ) -> ConversationPage:
        return self.store.page(owner, limit, cursor, search)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _cached(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            conversation = self._recent.get(conversation_id)
            if conversation is not None:
                self._recent.move_to_end(conversation_id)
                self._hits += 1
            return conversation

    def _remember(self, conversation: Conversation) -> None:
        """Caller holds ``_lock``."""
        self._recent[conversation.id] = conversation
        self._recent.move_to_end(conversation.id)
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def _forget(self, conversation_id: str) -> None:
        with self._lock:
            self._recent.pop(conversation_id, None)
