"""A conversation store in memory: the ``ConversationStore`` protocol with nothing on disk.

For tests and throwaway runs, and the simplest picture of the contract in
store.py. Conversations are immutable values (``messages`` is a read-only
``Mapping``), so the object saved is the object loaded. One lock orders
everything; each operation is a few dictionary steps.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from chatui.codec import tree_problem
from chatui.errors import InvalidRequest
from chatui.store import (
    CacheStats,
    ConversationPage,
    ConversationStore,
    ConversationSummary,
    mentions,
    newest_first,
    not_found,
    owned,
    page_of,
)
from chatui.tree import Conversation


class MemoryStore:
    """A ``ConversationStore`` holding its conversations in a dict."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entered by update -> load / save
        self._conversations: dict[str, Conversation] = {}

    @property
    def problems(self) -> builtins.list[str]:
        return []  # nothing is ever read from outside

    def stats(self) -> CacheStats | None:
        return None

    def exists(self, conversation_id: str, owner: str | None = None) -> bool:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
        return conversation is not None and (owner is None or conversation.owner == owner)

    def save(self, conversation: Conversation) -> None:
        problem = tree_problem(conversation)
        if problem:
            raise InvalidRequest(f"Conversation {conversation.id} was not saved: {problem}.")
        with self._lock:
            self._conversations[conversation.id] = conversation

    def load(self, conversation_id: str, owner: str | None = None) -> Conversation:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
        if conversation is None:
            raise not_found(conversation_id, owner)
        return owned(conversation, owner)

    def update(
        self, conversation_id: str, change: Callable[[Conversation], Conversation],
        owner: str | None = None,
    ) -> Conversation:
        with self._lock:
            changed = change(self.load(conversation_id, owner))
            if changed.id != conversation_id:
                raise InvalidRequest("A conversation cannot change its id.")
            self.save(changed)
            return changed

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        with self._lock:
            self.load(conversation_id, owner)
            del self._conversations[conversation_id]

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        with self._lock:
            conversations = builtins.list(self._conversations.values())
        return newest_first((ConversationSummary.of(c) for c in conversations), owner)

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        needle = text.casefold()
        with self._lock:
            conversations = builtins.list(self._conversations.values())
        found = (
            c for c in conversations
            if (owner is None or c.owner == owner)
            and (needle in c.title.casefold() or mentions(c, needle))
        )
        return newest_first((ConversationSummary.of(c) for c in found), owner)

    def page(
        self, owner: str | None, limit: int, cursor: str | None = None, search: str = ""
    ) -> ConversationPage:
        found = self.search(search, owner) if search.strip() else self.list(owner)
        return page_of(found, limit, cursor)

    def close(self) -> None:
        pass  # nothing held; the conversations stay readable until the object goes

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()



if TYPE_CHECKING:  # mypy checks here that the class keeps the protocol
    _check: ConversationStore = MemoryStore()
