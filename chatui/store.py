"""What a conversation store is: the protocol the service and the API are typed against.

Implementations:

- ``chatui.filestore.FileStore``: one TinyDB file per conversation, crash-safe,
  one process per data folder (the app's store);
- ``chatui.memstore.MemoryStore``: conversations in a dict, gone at exit
  (tests, throwaway runs, the model for a third store);
- ``chatui.cache.CachedStore``: an LRU of recent conversations in front of any
  store, itself a store.

The tests of ``tests/test_store.py`` and ``tests/test_cache.py`` run on each.

The contract every implementation keeps:

- ``owner`` scopes a call: another owner's conversation is ``NotFound``, in the
  same words as one that does not exist, so a guessed id tells nothing.
  ``owner=None`` is for a caller that has checked ownership already (the service,
  writing an answer into a conversation it loaded for that owner).
- ``save`` replaces the whole conversation stored under its id; a conversation
  that breaks ``codec.tree_problem`` is refused with ``InvalidRequest`` and
  nothing changes. ``update`` is load, change and save with no other write in
  between.
- A ``load`` returns the last saved version, never an older one. Conversations
  are immutable values (``messages`` is a read-only ``Mapping``), so a store
  may hand out the very object it was given.
- ``list`` and ``search`` give ``ConversationSummary``s, most recently updated
  first; asking about an id that does not exist leaves nothing behind (no lock,
  no cache entry).
- Thread-safe; ``close`` releases what the store holds (files, locks).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, Self

from chatui.errors import NotFound
from chatui.tree import Conversation


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A line in the conversation list; ``message_count`` counts every branch."""

    id: str
    title: str
    owner: str
    created_at: float
    updated_at: float
    message_count: int

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationSummary:
        return cls(
            id=conversation.id, title=conversation.title, owner=conversation.owner,
            created_at=conversation.created_at, updated_at=conversation.updated_at,
            message_count=len(conversation.messages),
        )


@dataclass(frozen=True, slots=True)
class CacheStats:
    """How a ``CachedStore``'s ``load``s went: served from memory (hits) or read (misses)."""

    hits: int
    misses: int
    size: int
    capacity: int


class ConversationStore(Protocol):
    """Where conversations are kept. See the module docstring for the contract."""

    @property
    def problems(self) -> builtins.list[str]:
        """What could not be read, each a sentence for the person running chatui."""
        ...

    def exists(self, conversation_id: str, owner: str | None = None) -> bool: ...

    def load(self, conversation_id: str, owner: str | None = None) -> Conversation:
        """The conversation, or ``NotFound``."""
        ...

    def save(self, conversation: Conversation) -> None:
        """Store the whole conversation, replacing what was stored under its id."""
        ...

    def update(
        self, conversation_id: str, change: Callable[[Conversation], Conversation],
        owner: str | None = None,
    ) -> Conversation:
        """Load, apply ``change`` and save, with no other write in between."""
        ...

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        """Remove the conversation, or ``NotFound``."""
        ...

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Summaries, most recently updated first; only ``owner``'s when given."""
        ...

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Conversations whose title or any message contains ``text``, ignoring case."""
        ...

    def stats(self) -> CacheStats | None:
        """Hits and misses of a cache in front of the store; None when there is none."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def not_found(conversation_id: str, owner: str | None) -> NotFound:
    """The error for a missing conversation; scoped to an owner, it names nothing."""
    if owner is not None:
        return NotFound("There is no such conversation.")
    return NotFound(f"There is no conversation {conversation_id!r}.")


def owned(conversation: Conversation, owner: str | None) -> Conversation:
    """``conversation`` if ``owner`` may see it (or is None); ``NotFound`` if not."""
    if owner is not None and conversation.owner != owner:
        raise not_found(conversation.id, owner)
    return conversation


def newest_first(
    summaries: Iterable[ConversationSummary], owner: str | None
) -> builtins.list[ConversationSummary]:
    """``owner``'s summaries (all when None), most recently updated first."""
    mine = [s for s in summaries if owner is None or s.owner == owner]
    return sorted(mine, key=lambda s: (s.updated_at, s.created_at, s.id), reverse=True)


def mentions(conversation: Conversation, needle: str) -> bool:
    """Whether any message, on any branch, contains ``needle`` (already casefolded)."""
    return any(needle in m.content.casefold() for m in conversation.messages.values())
