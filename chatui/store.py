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
  no cache entry). ``page`` gives the same order a page at a time: the
  ``next_cursor`` of one page, passed back, gives the next. A cursor is opaque
  and comes from outside: one chatui did not write is ``InvalidRequest``.
  ``search`` finds a substring of a title or any message, ignoring case; the file
  store's index looks for text of 1 or 2 characters in titles only (catalog.py).
- Thread-safe; ``close`` releases what the store holds (files, locks).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, Self

from chatui.codec import is_safe_id
from chatui.errors import InvalidRequest, NotFound
from chatui.tree import Conversation

MAX_PAGE_SIZE = 200
"""The most summaries one ``page`` gives."""

PREVIEW_CHARS = 100
"""About how much of the active leaf a summary's ``preview`` keeps."""

_MAX_CURSOR_CHARS = 400


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A line in the conversation list; ``message_count`` counts every branch.

    ``preview`` is the first words of the active leaf (the last message shown),
    whitespace folded, at most about ``PREVIEW_CHARS`` characters.
    """

    id: str
    title: str
    owner: str
    created_at: float
    updated_at: float
    message_count: int
    preview: str = ""

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationSummary:
        return cls(
            id=conversation.id, title=conversation.title, owner=conversation.owner,
            created_at=conversation.created_at, updated_at=conversation.updated_at,
            message_count=len(conversation.messages), preview=preview_of(conversation),
        )

    @property
    def order(self) -> tuple[float, float, str]:
        """The sort key of the list; larger is newer."""
        return (self.updated_at, self.created_at, self.id)


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """Summaries newest first; ``next_cursor`` asks for the page after, None at the end."""

    items: tuple[ConversationSummary, ...]
    next_cursor: str | None = None


def preview_of(conversation: Conversation) -> str:
    """The first words of the active leaf, or of the last message when none is active."""
    leaf = conversation.messages.get(conversation.current_leaf_id or "")
    if leaf is None and conversation.messages:
        leaf = next(reversed(builtins.list(conversation.messages.values())))
    return shorten(leaf.content if leaf is not None else "")


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` with whitespace folded, cut at a word before ``limit`` characters."""
    folded = " ".join(text[: limit * 4].split())
    if len(folded) <= limit:
        return folded
    cut = folded[:limit].rsplit(" ", 1)[0] if " " in folded[:limit] else folded[:limit]
    return cut.rstrip() + "…"


def encode_cursor(after: ConversationSummary) -> str:
    """The opaque cursor for the page that follows ``after``."""
    key = json.dumps([after.updated_at, after.created_at, after.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, float, str]:
    """The sort key a cursor from ``encode_cursor`` holds; ``InvalidRequest`` for any other."""
    refused = InvalidRequest(
        "This page cursor is not one chatui gave out; ask for the first page again."
    )
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_CHARS:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError):
        raise refused from None
    if not (isinstance(key, builtins.list) and len(key) == 3):
        raise refused
    updated, created, conversation_id = key
    if not all(
        type(value) in (int, float) and math.isfinite(value) for value in (updated, created)
    ) or not is_safe_id(conversation_id):
        raise refused
    return (float(updated), float(created), conversation_id)


def check_limit(limit: int) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"A page holds 1 to {MAX_PAGE_SIZE} conversations.")
    return limit


def page_of(
    newest: Iterable[ConversationSummary], limit: int, cursor: str | None
) -> ConversationPage:
    """One page of ``newest`` (already newest first): ``limit`` items after ``cursor``."""
    check_limit(limit)
    after = decode_cursor(cursor) if cursor is not None else None
    items: builtins.list[ConversationSummary] = []
    for summary in newest:
        if after is not None and summary.order >= after:
            continue
        if len(items) == limit:
            return ConversationPage(tuple(items), encode_cursor(items[-1]))
        items.append(summary)
    return ConversationPage(tuple(items), None)


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

    def page(
        self, owner: str | None, limit: int, cursor: str | None = None, search: str = ""
    ) -> ConversationPage:
        """``limit`` summaries after ``cursor``, newest first; only matches of ``search``
        (as ``search`` finds them) when it is not blank."""
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
