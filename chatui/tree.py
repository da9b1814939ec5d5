"""The conversation tree: plain immutable values and pure operations, no I/O.

A conversation is a forest of messages linked by ``parent_id`` (the first user
messages are roots; editing the first message adds another root). Exactly one
path, from a root down to ``current_leaf_id``, is *active*: it is what the chat
shows and what is sent to the model.

Invariants every operation keeps:

- a message's ``parent_id`` is ``None`` or the id of a message in the same
  conversation, and following parents always ends at a root (no cycles);
- ``current_leaf_id`` is ``None`` only when there are no messages, and otherwise
  names a message of the conversation;
- regenerating or editing adds a *sibling*; nothing existing is changed or
  removed, except by ``delete_subtree`` (explicit) and ``replace_message``
  (finishing or continuing an answer in place).

Every operation returns a new ``Conversation``; arguments are never mutated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from chatui.errors import InvalidRequest, NotFound
from chatui.settings import Settings, settings_from_stored

Role = Literal["system", "user", "assistant", "tool"]
Status = Literal["complete", "stopped", "error", "streaming"]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Timings:
    """Speed of one answer. ``source`` is "server" when the server sent them."""

    prompt_tokens: int | None = None
    generated_tokens: int = 0
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    total_ms: float | None = None
    source: Literal["server", "client"] = "client"
    cached_tokens: int | None = None  # prompt tokens the server reused from its cache


@dataclass(frozen=True, slots=True)
class Provenance:
    """How an answer was made: what was asked for, and what the server said it was.

    ``settings`` are the conversation's settings the request used (name, value
    pairs, as ``Settings`` fields): enough to ask again the same way.
    ``trimmed`` says in words what was left out to fit the context, if anything.
    """

    requested_model: str | None = None
    settings: tuple[tuple[str, Any], ...] = ()
    server_model: str | None = None
    server_build: str | None = None
    context_tokens: int | None = None
    continue_mode: str | None = None
    trimmed: str | None = None

    def setting(self, name: str) -> Any:
        return dict(self.settings).get(name)

    def as_settings(self) -> Settings | None:
        """The settings to ask again the same way (None when none were kept)."""
        if not self.settings:
            return None
        settings = settings_from_stored(dict(self.settings))
        if self.requested_model and not settings.model:
            settings = replace(settings, model=self.requested_model)
        return settings


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Source:
    """A retrieved chunk cited as ``[number]`` in an answer."""

    number: int
    document: str
    page: int | None
    snippet: str
    score: float
    chunk_id: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    parent_id: str | None
    role: Role
    content: str
    created_at: float
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None
    timings: Timings | None = None
    sources: tuple[Source, ...] = ()
    status: Status = "complete"
    error: str | None = None
    made: Provenance | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float
    settings: Settings = field(default_factory=Settings)
    messages: Mapping[str, Message] = field(default_factory=dict)
    current_leaf_id: str | None = None
    owner: str = "local"

    def message(self, message_id: str) -> Message:
        try:
            return self.messages[message_id]
        except KeyError:
            raise NotFound(f"There is no message {message_id!r} in this conversation.") from None


def new_conversation(
    title: str = "New chat",
    settings: Settings | None = None,
    owner: str = "local",
    now: float | None = None,
) -> Conversation:
    stamp = time.time() if now is None else now
    return Conversation(
        id=new_id(), title=title, created_at=stamp, updated_at=stamp,
        settings=settings or Settings(), owner=owner,
    )


def make_message(
    role: Role,
    content: str,
    parent_id: str | None,
    now: float | None = None,
    **fields: Any,
) -> Message:
    stamp = time.time() if now is None else now
    return Message(
        id=new_id(), parent_id=parent_id, role=role, content=content,
        created_at=stamp, **fields,
    )


def add_message(conversation: Conversation, message: Message) -> Conversation:
    """Add ``message`` under its parent and make it the current leaf.

    Adding a second child under a parent is how regenerate and edit make
    branches: the existing children and their subtrees are untouched.
    """
    if message.id in conversation.messages:
        raise InvalidRequest(f"Message {message.id!r} already exists.")
    if message.parent_id is not None:
        conversation.message(message.parent_id)
    messages = {**conversation.messages, message.id: message}
    return replace(
        conversation, messages=messages, current_leaf_id=message.id,
        updated_at=max(conversation.updated_at, message.created_at),
    )


def replace_message(conversation: Conversation, message: Message) -> Conversation:
    """Replace a message in place (same id, same parent): finishing or continuing."""
    old = conversation.message(message.id)
    if old.parent_id != message.parent_id:
        raise InvalidRequest("A message cannot be moved to another parent.")
    messages = {**conversation.messages, message.id: message}
    return replace(conversation, messages=messages, updated_at=time.time())


def children(conversation: Conversation, parent_id: str | None) -> list[Message]:
    """Children of ``parent_id`` (roots for ``None``), oldest first."""
    found = [m for m in conversation.messages.values() if m.parent_id == parent_id]
    return sorted(found, key=lambda m: m.created_at)


def siblings(conversation: Conversation, message_id: str) -> list[Message]:
    """The message and its siblings (same parent), oldest first."""
    message = conversation.message(message_id)
    return children(conversation, message.parent_id)


def sibling_position(conversation: Conversation, message_id: str) -> tuple[int, int]:
    """1-based position of the message among its siblings, and their count: (2, 3)."""
    ids = [m.id for m in siblings(conversation, message_id)]
    return ids.index(message_id) + 1, len(ids)


def path_to(conversation: Conversation, message_id: str | None) -> list[Message]:
    """Messages from the root down to ``message_id`` inclusive."""
    path: list[Message] = []
    seen: set[str] = set()
    current = message_id
    while current is not None:
        if current in seen:
            raise InvalidRequest("The conversation tree has a cycle.")
        seen.add(current)
        message = conversation.message(current)
        path.append(message)
        current = message.parent_id
    path.reverse()
    return path


def active_path(conversation: Conversation) -> list[Message]:
    """The branch the user sees: root to current leaf."""
    return path_to(conversation, conversation.current_leaf_id)


def _subtree(conversation: Conversation, message_id: str) -> list[Message]:
    by_parent: dict[str | None, list[Message]] = {}
    for message in conversation.messages.values():
        by_parent.setdefault(message.parent_id, []).append(message)
    found: list[Message] = []
    stack = [conversation.message(message_id)]
    while stack:
        message = stack.pop()
        found.append(message)
        stack.extend(by_parent.get(message.id, []))
    return found


def newest_leaf_below(conversation: Conversation, message_id: str) -> Message:
    """The most recently created message with no children in the subtree."""
    subtree = _subtree(conversation, message_id)
    parents = {m.parent_id for m in subtree}
    leaves = [m for m in subtree if m.id not in parents]
    return max(leaves, key=lambda m: m.created_at)


def switch_to(conversation: Conversation, message_id: str) -> Conversation:
    """Show the branch through ``message_id``, down to its newest leaf."""
    leaf = newest_leaf_below(conversation, message_id)
    return replace(conversation, current_leaf_id=leaf.id)


def switch_sibling(conversation: Conversation, message_id: str, step: int) -> Conversation:
    """Move to the previous (-1) or next (+1) sibling of ``message_id``, clamped."""
    ids = [m.id for m in siblings(conversation, message_id)]
    index = min(max(ids.index(message_id) + step, 0), len(ids) - 1)
    return switch_to(conversation, ids[index])


def delete_subtree(conversation: Conversation, message_id: str) -> Conversation:
    """Remove a message and everything below it.

    If the active branch went through it, the branch moves to the newest leaf
    under its parent (or anywhere else left), as chat apps do.
    """
    removed = {m.id for m in _subtree(conversation, message_id)}
    parent_id = conversation.message(message_id).parent_id
    messages = {k: v for k, v in conversation.messages.items() if k not in removed}
    current = conversation.current_leaf_id
    result = replace(conversation, messages=messages, updated_at=time.time())
    if current is None or current not in removed:
        return result
    if parent_id is not None:
        return switch_to(result, parent_id)
    if messages:
        newest = max(messages.values(), key=lambda m: m.created_at)
        return switch_to(result, path_to(result, newest.id)[0].id)
    return replace(result, current_leaf_id=None)


def rename(conversation: Conversation, title: str) -> Conversation:
    return replace(conversation, title=title.strip() or conversation.title, updated_at=time.time())


def with_settings(conversation: Conversation, settings: Settings) -> Conversation:
    return replace(conversation, settings=settings, updated_at=time.time())


def title_from(text: str, limit: int = 60) -> str:
    """A conversation title from the first user message: first line, trimmed."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if len(line) <= limit:
        return line or "New chat"
    return line[: limit - 1].rstrip() + "…"
