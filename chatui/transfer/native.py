"""chatui's own export: ``GET /api/v1/chats/{id}/history?tree=true`` (or the UI's JSON download).

    {"title", "created_at", "updated_at", "current_leaf_id", "settings": {...},
     "messages": [{"id", "parent_id", "role", "content", "created_at", "reasoning",
                   "model", "timings": {...}, "tool_calls": [...], "sources": [...],
                   "status", "error"}]}

Ids are kept (they pass ``codec.is_safe_id``); ``id`` and ``owner`` are ignored:
the import gets a fresh id and belongs to whoever imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from chatui import codec

from chatui.settings import MAX_NAME
from chatui.transfer.building import (
    ChatDraft,
    Draft,
    ImportRefused,
    foreign_id,
    listing,
    mapping,
    number,
    stored_settings,
    text,
    whole,
)
from chatui.tree import Message, Source, Timings, ToolCall

FORMAT = "chatui"
_CHECKED = frozenset({"id", "parent_id", "role", "content", "created_at", "reasoning", "model",
                      "timings", "tool_calls", "sources", "status", "error"})
_PASSED = (*(f.name for f in fields(Message) if f.name not in _CHECKED), "timings")
_TIMING_NUMBERS = tuple(f.name for f in fields(Timings) if f.name not in {
    "prompt_tokens", "generated_tokens", "ttft_ms", "tokens_per_second", "total_ms", "source"})


def looks_like(data: Any) -> bool:
    return isinstance(data, Mapping) and "messages" in data and (
        "current_leaf_id" in data or "settings" in data)


def read(data: Any) -> ChatDraft:
    chat = mapping(data, "The chat")
    drafts = tuple(_draft(m) for m in listing(chat.get("messages"), "The messages"))
    current = chat.get("current_leaf_id")
    if current is not None and (not isinstance(current, str)
                                or current not in {d.id for d in drafts}):
        raise ImportRefused("This is not a chat that can be imported: the current message "
                            f"{str(current)[:40]!r} is not in the conversation.")
    if drafts and current is None:
        raise ImportRefused("This is not a chat that can be imported: it has messages but "
                            "no current message.")
    return ChatDraft(
        title=text(chat.get("title"), "The title", MAX_NAME * 5),
        drafts=drafts, current=current,
        created_at=number(chat.get("created_at")) if "created_at" in chat else None,
        updated_at=number(chat.get("updated_at")),
        settings=stored_settings(chat.get("settings")),
    )


def _draft(value: Any) -> Draft:
    message = mapping(value, "A message")
    parent = message.get("parent_id")
    template = _template(message)
    return Draft(
        id=foreign_id(message.get("id"), "A message"),
        parent=foreign_id(parent, "A message's parent") if parent is not None else None,
        role=text(message.get("role"), "A message's role", 40),
        content=text(message.get("content"), "A message"),
        created_at=number(message.get("created_at")),
        reasoning=text(message.get("reasoning"), "A message's reasoning"),
        model=text(message.get("model"), "A model name", MAX_NAME) or None,
        timings=_timings(message.get("timings"), template.timings),
        tool_calls=tuple(_tool_call(c) for c in listing(message.get("tool_calls"), "Tool calls")),
        sources=tuple(_source(s) for s in listing(message.get("sources"), "Sources")),
        status=text(message.get("status"), "A message's status", 40) or "complete",
        error=text(message.get("error"), "A message's error", 10_000) or None,
        template=template,
    )


def _template(message: Mapping[str, Any]) -> Message:
    """The message as ``codec`` reads it: keeps the fields added after this reader.

    Every field read here is checked and replaced by ``building``; the rest are
    what ``codec`` makes of them (it checks what it reads: ``made`` for one).
    """
    data = {key: message[key] for key in _PASSED if key in message}
    try:
        return codec.message_from_dict(
            {**data, "id": "x", "parent_id": None, "role": "user", "content": "",
             "created_at": 0.0})
    except (TypeError, ValueError, AttributeError):
        raise ImportRefused("A message has fields chatui cannot read.") from None


def _timings(value: Any, template: Timings | None) -> Timings | None:
    if value is None:
        return None
    found = mapping(value, "A message's timings")
    base = template or Timings()
    for name in _TIMING_NUMBERS:  # fields added after this reader: numbers or nothing
        extra = getattr(base, name)
        if extra is not None and (isinstance(extra, bool) or not isinstance(extra, int | float)):
            raise ImportRefused("A message's timings hold something that is not a number.")
    optional = {key: number(found.get(key), -1.0) for key in
                ("ttft_ms", "tokens_per_second", "total_ms")}
    return replace(
        base,
        prompt_tokens=whole(found.get("prompt_tokens")),
        generated_tokens=whole(found.get("generated_tokens")) or 0,
        ttft_ms=optional["ttft_ms"] if optional["ttft_ms"] >= 0 else None,
        tokens_per_second=(optional["tokens_per_second"]
                           if optional["tokens_per_second"] >= 0 else None),
        total_ms=optional["total_ms"] if optional["total_ms"] >= 0 else None,
        source="server" if found.get("source") == "server" else "client",
    )


def _tool_call(value: Any) -> ToolCall:
    call = mapping(value, "A tool call")
    return ToolCall(id=text(call.get("id"), "A tool call's id", MAX_NAME),
                    name=text(call.get("name"), "A tool's name", MAX_NAME),
                    arguments=text(call.get("arguments"), "A tool call's arguments"))


def _source(value: Any) -> Source:
    source = mapping(value, "A source")
    return Source(
        number=whole(source.get("number")) or 0,
        document=text(source.get("document"), "A source's document", MAX_NAME * 5),
        page=whole(source.get("page")),
        snippet=text(source.get("snippet"), "A source's passage"),
        score=number(source.get("score"), signed=True),
        chunk_id=whole(source.get("chunk_id")),
    )
