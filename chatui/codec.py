"""Conversations and messages to and from plain JSON-ready dicts, and their checks.

One place for the wire and disk shape, used by the stores and the REST API.
``from_dict`` accepts what ``to_dict`` wrote, ignoring unknown keys so that a
newer file read by an older version still loads. ``is_safe_id`` and
``tree_problem`` are the checks a conversation from outside (a file, an import,
a REST body) must pass before it is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, fields
from functools import cache
from typing import Any, get_args

from chatui.settings import settings_from_stored
from chatui.tree import (
    Conversation,
    Message,
    Provenance,
    Role,
    Settings,
    Source,
    Timings,
    ToolCall,
)

ROLES = frozenset(get_args(Role))
_PROVENANCE_TEXT = ("requested_model", "server_model", "server_build", "continue_mode", "trimmed")
_PROVENANCE_CHARS = 20_000
ID_CHARACTERS = r"[A-Za-z0-9_-]{1,128}"
ID_PATTERN = f"^{ID_CHARACTERS}$"  # the same, as a JSON-schema pattern (the REST API's)
_SAFE_ID = re.compile(ID_CHARACTERS)


@cache
def _field_order(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(_field_order(cls))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = _field_names(cls)
    return {k: v for k, v in data.items() if k in names}


def _flat(value: object) -> dict[str, Any]:
    """A dataclass's fields by name, shallow: ``asdict`` without its recursion and deep
    copy (4-8 times faster; a save writes every message of a chat). The caller turns
    the fields that are not plain values (tuples, nested dataclasses) into dicts."""
    cls: type = type(value)
    return {name: getattr(value, name) for name in _field_order(cls)}


def message_to_dict(message: Message) -> dict[str, Any]:
    """The message as stored; fields added later are left out while empty, so a message
    without them is written exactly as before they existed."""
    data = _flat(message)
    data["tool_calls"] = [_flat(call) for call in message.tool_calls]
    data["sources"] = [_flat(source) for source in message.sources]
    if message.timings is not None:
        data["timings"] = _flat(message.timings)
        if message.timings.cached_tokens is None:
            del data["timings"]["cached_tokens"]
    if message.made is None:
        del data["made"]
    else:
        data["made"] = {**_flat(message.made), "settings": dict(message.made.settings)}
    return data


def provenance_from_dict(data: Any) -> Provenance | None:
    """``made`` as stored or imported: absent before it existed (None). What is not of
    its type (a file or an import from outside) is left out, never passed on."""
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {}
    for name in _PROVENANCE_TEXT:
        value = data.get(name)
        values[name] = value[:_PROVENANCE_CHARS] if isinstance(value, str) else None
    tokens = data.get("context_tokens")
    values["context_tokens"] = (tokens if isinstance(tokens, int)
                                and not isinstance(tokens, bool) else None)
    settings = data.get("settings")
    pairs = settings.items() if isinstance(settings, dict) else ()
    values["settings"] = tuple(
        (str(k)[:_PROVENANCE_CHARS], v[:_PROVENANCE_CHARS] if isinstance(v, str) else v)
        for k, v in pairs
        if (isinstance(v, str | int | float | bool) or v is None)
        and not (isinstance(v, float) and not math.isfinite(v)))
    return Provenance(**values)


def message_from_dict(data: dict[str, Any]) -> Message:
    values = _known(Message, data)
    values["made"] = provenance_from_dict(values.get("made"))
    timings = values.get("timings")
    values["timings"] = Timings(**_known(Timings, timings)) if timings else None
    values["tool_calls"] = tuple(
        ToolCall(**_known(ToolCall, call)) for call in values.get("tool_calls") or ()
    )
    values["sources"] = tuple(
        Source(**_known(Source, source)) for source in values.get("sources") or ()
    )
    return Message(**values)


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    return asdict(settings)


def settings_from_dict(data: dict[str, Any] | None) -> Settings:
    """Stored settings as they are today: unknown keys ignored, missing ones the defaults,
    and a value an older version allowed beyond today's range clamped into it."""
    return settings_from_stored(data)


def conversation_header(conversation: Conversation) -> dict[str, Any]:
    """Everything but the messages."""
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "current_leaf_id": conversation.current_leaf_id,
        "owner": conversation.owner,
        "settings": settings_to_dict(conversation.settings),
    }


def conversation_to_dict(conversation: Conversation) -> dict[str, Any]:
    header = conversation_header(conversation)
    header["messages"] = [message_to_dict(m) for m in conversation.messages.values()]
    return header


def conversation_from_dict(data: dict[str, Any]) -> Conversation:
    messages = [message_from_dict(m) for m in data.get("messages") or ()]
    return Conversation(
        id=data["id"],
        title=data.get("title") or "New chat",
        created_at=float(data["created_at"]),
        updated_at=float(data.get("updated_at") or data["created_at"]),
        settings=settings_from_dict(data.get("settings")),
        messages={m.id: m for m in messages},
        current_leaf_id=data.get("current_leaf_id"),
        owner=data.get("owner") or "local",
    )


def is_safe_id(value: object) -> bool:
    """Whether ``value`` can be a conversation or message id: letters, digits, ``-``, ``_``.

    The one check for ids from outside (imports, REST bodies, the page): such an id
    can name a file and sits in the page's HTML without any escaping mattering.
    """
    return isinstance(value, str) and _SAFE_ID.fullmatch(value) is not None


def tree_problem(conversation: Conversation) -> str | None:
    """What breaks the field types or the tree module's invariants, or None."""
    if not is_safe_id(conversation.id):
        return f"{conversation.id!r} cannot be a conversation id"
    if not (isinstance(conversation.title, str) and isinstance(conversation.owner, str)):
        return "the title and the owner must be text"
    messages = conversation.messages
    for key, message in messages.items():
        if not is_safe_id(message.id):
            return f"{message.id!r} cannot be a message id"
        if key != message.id or not isinstance(message.content, str):
            return f"message {key!r} is malformed"
        if message.role not in ROLES:
            return f"message {key} has the unknown role {message.role!r}"
        if message.parent_id is not None and message.parent_id not in messages:
            return f"message {key} answers {message.parent_id!r}, which is missing"
    leaf = conversation.current_leaf_id
    if (leaf is None) != (not messages) or (leaf is not None and leaf not in messages):
        return f"the current message {leaf!r} is not in the conversation"
    if _has_cycle(messages):
        return "the messages' parents form a cycle"
    return None


def _has_cycle(messages: Mapping[str, Message]) -> bool:
    rooted: set[str] = set()  # messages known to lead up to a root
    for start in messages:
        trail: set[str] = set()
        current: str | None = start
        while current is not None and current not in rooted:
            if current in trail:
                return True
            trail.add(current)
            current = messages[current].parent_id
        rooted |= trail
    return False
