"""Conversations and messages to and from plain JSON-ready dicts.

One place for the wire and disk shape, used by the store and the REST API.
``from_dict`` accepts what ``to_dict`` wrote, ignoring unknown keys so that a
newer file read by an older version still loads.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from functools import cache
from typing import Any

from chatui.tree import Conversation, Message, Settings, Source, Timings, ToolCall



@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = _field_names(cls)
    return {k: v for k, v in data.items() if k in names}


def message_to_dict(message: Message) -> dict[str, Any]:
    return asdict(message)


def message_from_dict(data: dict[str, Any]) -> Message:
    values = _known(Message, data)
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
    return Settings(**_known(Settings, data or {}))


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
