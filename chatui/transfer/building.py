"""A foreign chat's messages -> a checked ``Conversation``: the one place imports are built.

Each format reader (``native``, ``llamacpp``, ``openwebui``) turns its file into
``Draft`` values and leaves every rule to ``build``:

- the tree must hold: a parent that is not in the file, a message that is its
  own ancestor, two messages with one id are refused, by a sentence a person
  reads (``ImportRefused``), never repaired silently;
- sizes are capped (messages per chat, characters per text) so a crafted file
  cannot fill the store;
- foreign ids become fresh chatui ids (their alphabet is theirs, not ours);
  chatui's own export keeps its ids, which must pass ``codec.is_safe_id``;
- the shown branch is the file's current message when it is one, else the
  newest leaf.

Texts are stored as they came: the page renders them as inert Markdown
(``chatui.sanitize``), as it does for any answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatui import tree
from chatui.codec import is_safe_id, tree_problem
from chatui.errors import InvalidRequest
from chatui.settings import FIELDS, MAX_NAME, settings_from_stored
from chatui.tree import Conversation, Message, Settings, Source, Status, Timings, ToolCall

MAX_MESSAGES = 20_000  # per imported chat
MAX_MESSAGE_CHARS = 1_000_000  # per text of a message (content, reasoning)
ROLES = ("system", "user", "assistant", "tool")


class ImportRefused(InvalidRequest):
    """The file is not a chat that can be imported; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Draft:
    """One message as a reader found it; ``id`` and ``parent`` are the file's own."""

    id: str
    parent: str | None
    role: str
    content: str
    created_at: float
    reasoning: str = ""
    model: str | None = None
    timings: Timings | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    sources: tuple[Source, ...] = ()
    status: str = "complete"
    error: str | None = None
    template: Message | None = None  # chatui's own export: fields this module does not check


@dataclass(frozen=True, slots=True)
class ChatDraft:
    title: str
    drafts: tuple[Draft, ...]
    current: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    settings: Settings | None = None


def text(value: Any, what: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A string field from the file ("" for a missing one); anything else is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImportRefused(f"{what} must be text.")
    if len(value) > limit:
        raise ImportRefused(f"{what} is longer than {limit:,} characters.")
    return value


def number(value: Any, default: float = 0.0, *, signed: bool = False) -> float:
    """A finite number (non-negative unless ``signed``) from the file, or ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    result = float(value)
    return result if math.isfinite(result) and (signed or result >= 0) else default


def whole(value: Any) -> int | None:
    """A non-negative integer from the file, or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def foreign_id(value: Any, what: str) -> str:
    """An id as the file spells it: any short text (or number) is fine, it gets replaced."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ImportRefused(f"{what} has no usable id.")
    return value


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ImportRefused(f"{what} must be a JSON object.")
    return value


def listing(value: Any, what: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ImportRefused(f"{what} must be a list.")
    return value


def stored_settings(value: Any) -> Settings | None:
    """A chatui settings object, made to fit today's ranges; None when there is none."""
    if value is None:
        return None
    given = mapping(value, "The settings")
    for setting in FIELDS:
        problem = _setting_problem(setting, given.get(setting.name))
        if problem:
            raise ImportRefused(f"The setting {setting.name!r} {problem}.")
    try:
        return settings_from_stored(given)
    except (TypeError, ValueError) as error:
        raise ImportRefused(f"The settings cannot be read: {error}") from None


def _setting_problem(setting: Any, value: Any) -> str:
    """Why an imported setting cannot be taken ("" if it can), as the REST schema says."""
    if value is None:
        return ""
    if setting.name in ("model", "system_prompt"):
        return "" if isinstance(value, str) else "must be text"
    if setting.name == "rag_enabled":
        return "" if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return "must be a number"
    if setting.minimum is not None and value < setting.minimum:
        return f"must be at least {setting.minimum}"
    if setting.maximum is not None and value > setting.maximum:
        return f"must be at most {setting.maximum}"
    return ""


def build(chat: ChatDraft, owner: str, *, keep_ids: bool = False) -> Conversation:
    """The conversation ``chat`` describes, checked; a fresh conversation id, owned by ``owner``."""
    drafts = chat.drafts
    if len(drafts) > MAX_MESSAGES:
        raise ImportRefused(f"A chat can hold at most {MAX_MESSAGES:,} messages to import; "
                            f"this one has {len(drafts):,}.")
    by_id: dict[str, Draft] = {}
    for draft in drafts:
        if draft.id in by_id:
            raise ImportRefused(f"Two messages have the same id ({draft.id[:40]!r}).")
        by_id[draft.id] = draft
    for draft in drafts:
        if draft.parent is not None and draft.parent not in by_id:
            raise ImportRefused(f"A message answers {draft.parent[:40]!r}, which is not in the "
                                "file: the file is cut or edited.")
        if draft.role not in ROLES:
            raise ImportRefused(f"A message has the unknown role {draft.role[:40]!r}.")
        if keep_ids and not is_safe_id(draft.id):
            raise ImportRefused(f"{draft.id[:40]!r} cannot be a message id.")
    names = {key: (key if keep_ids else tree.new_id()) for key in by_id}
    messages = {names[d.id]: _message(d, names) for d in drafts}
    stamps = [m.created_at for m in messages.values()]
    created = chat.created_at if chat.created_at is not None else min(stamps, default=0.0)
    title = " ".join(chat.title.split())[:MAX_NAME] or "Imported chat"
    conversation = replace(
        tree.new_conversation(title, chat.settings or Settings(), owner, now=created),
        updated_at=max(chat.updated_at or 0.0, created, *stamps),
        messages=messages,
    )
    if messages:  # any message will do to check the tree; then the real current one
        conversation = replace(conversation, current_leaf_id=next(iter(messages)))
    problem = tree_problem(conversation)
    if problem:
        raise ImportRefused(f"This is not a chat that can be imported: {problem}.")
    if messages:
        current = names.get(chat.current) if chat.current is not None else None
        conversation = replace(conversation, current_leaf_id=_leaf(conversation, current))
    return conversation


def _message(draft: Draft, names: Mapping[str, str]) -> Message:
    checked: dict[str, Any] = {
        "id": names[draft.id],
        "parent_id": names[draft.parent] if draft.parent is not None else None,
        "role": draft.role, "content": draft.content, "created_at": draft.created_at,
        "reasoning": draft.reasoning, "model": draft.model, "timings": draft.timings,
        "tool_calls": draft.tool_calls, "sources": draft.sources,
        "status": _status(draft.status), "error": draft.error,
    }
    if draft.template is not None:
        return replace(draft.template, **checked)
    return Message(**checked)


def _status(value: str) -> Status:
    """An imported answer cannot be streaming: it stopped wherever the file left it."""
    return "complete" if value == "complete" else "error" if value == "error" else "stopped"


def _leaf(conversation: Conversation, current: str | None) -> str:
    """The file's current message, down to its newest leaf; else the newest leaf of all."""
    if current is not None:
        return tree.newest_leaf_below(conversation, current).id
    parents = {m.parent_id for m in conversation.messages.values()}
    leaves = [m for m in conversation.messages.values() if m.id not in parents]
    return max(leaves, key=lambda m: m.created_at).id  # a tree without cycles has leaves
