"""Open WebUI's chat export: "Download > Export chat (.json)" and "Export All Chats".

Both are a JSON list of chat records as its API returns them (one record for a
single chat)::

    [{"id", "title", "created_at", "updated_at" (seconds), ...,
      "chat": {"title", "models": [...], "system" or "params": {"system"},
               "history": {"currentId": "...",
                           "messages": {"<id>": {"id", "parentId", "childrenIds",
                                                 "role", "content", "timestamp" (s),
                                                 "model", "usage", "error", "done"}}},
               "messages": [...the active branch, kept for old readers...]}}]

The tree is ``history.messages`` with ``parentId``; ``currentId`` is the message
shown. An old chat without ``history`` is read from its ``messages`` list, one
after the other. Reasoning is a ``<details type="reasoning">`` block at the
start of an answer's content: it becomes the message's reasoning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatui.settings import MAX_NAME, MAX_TEXT
from chatui.transfer.building import (
    ChatDraft,
    Draft,
    foreign_id,
    listing,
    mapping,
    number,
    text,
    whole,
)
from chatui.tree import Settings, Timings

FORMAT = "Open WebUI"
_REASONING = re.compile(
    r"<details\s+type=\"reasoning\"[^>]*>\s*(?:<summary>.*?</summary>)?(.*?)</details>\s*",
    re.DOTALL,
)


def _inner(item: Any) -> Mapping[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    chat = item.get("chat")
    if isinstance(chat, Mapping) and ("history" in chat or "messages" in chat):
        return chat
    return item if isinstance(item.get("history"), Mapping) else None


def looks_like(data: Any) -> bool:
    items = data if isinstance(data, list) else [data]
    return bool(items) and all(_inner(item) is not None for item in items)


def read(data: Any) -> list[ChatDraft]:
    items = data if isinstance(data, list) else [data]
    return [_chat(mapping(item, "A chat")) for item in items]


def _chat(record: Mapping[str, Any]) -> ChatDraft:
    chat = _inner(record) or {}
    history = chat.get("history")
    if isinstance(history, Mapping) and history.get("messages") is not None:
        entries = mapping(history.get("messages"), "The chat's messages")
        drafts = tuple(_draft(value) for value in entries.values())
        current = history.get("currentId")
    else:  # an old chat: the list, each message answering the one before
        drafts, parent = (), None
        for index, value in enumerate(listing(chat.get("messages"), "The chat's messages")):
            draft = _draft({"id": str(index), **mapping(value, "A message"), "parentId": parent})
            drafts, parent = (*drafts, draft), draft.id
        current = parent
    found = chat.get("params")
    params: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    system = chat.get("system") or params.get("system")
    system_prompt = text(system, "The system prompt", MAX_TEXT) if system else ""
    created = number(record.get("created_at"), -1.0)
    return ChatDraft(
        title=text(record.get("title") or chat.get("title"), "The title", MAX_NAME * 5),
        drafts=drafts, current=current if isinstance(current, str) else None,
        created_at=_seconds(created) if created >= 0 else None,
        updated_at=_seconds(number(record.get("updated_at"))) or None,
        settings=Settings(system_prompt=system_prompt) if system_prompt else None,
    )


def _draft(value: Any) -> Draft:
    message = mapping(value, "A message")
    parent = message.get("parentId")
    content = text(message.get("content"), "A message")
    reasoning = ""
    found = _REASONING.match(content.lstrip())
    if found:
        reasoning = "\n".join(line.removeprefix(">").removeprefix(" ")
                              for line in found.group(1).strip().splitlines())
        content = content.lstrip()[found.end():]
    error = message.get("error")
    problem = ""
    if isinstance(error, Mapping):
        problem = text(error.get("content"), "A message's error", 10_000)
    elif isinstance(error, str):
        problem = error[:10_000]
    model = message.get("model") or message.get("modelName")
    return Draft(
        id=foreign_id(message.get("id"), "A message"),
        parent=foreign_id(parent, "A message's parent") if parent is not None else None,
        role=text(message.get("role"), "A message's role", 40),
        content=content,
        created_at=_seconds(number(message.get("timestamp"))),
        reasoning=reasoning,
        model=text(model, "A model name", MAX_NAME) if isinstance(model, str) else None,
        timings=_timings(message.get("usage")),
        status="error" if problem else "complete",
        error=problem or None,
    )


def _timings(usage: Any) -> Timings | None:
    if not isinstance(usage, Mapping):
        return None
    generated = whole(usage.get("completion_tokens")) or whole(usage.get("eval_count")) or 0
    speed = number(usage.get("response_token/s"), -1.0)
    return Timings(
        prompt_tokens=whole(usage.get("prompt_tokens")) or whole(usage.get("prompt_eval_count")),
        generated_tokens=generated,
        tokens_per_second=speed if speed >= 0 else None,
        source="server",
    )


def _seconds(stamp: float) -> float:
    """Open WebUI writes seconds, but a few fields hold milliseconds: tell them apart."""
    return stamp / 1000 if stamp > 1e11 else stamp
