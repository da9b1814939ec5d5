"""llama.cpp's web UI exports (``tools/ui``, ``ConversationTransferService``).

Three shapes, told apart by their contents as llama.cpp's own import does:

- JSONL (today's "export"): a ``{"type": "session", "harness": "llama.app", ...conv}``
  line, then one ``{"type": "message", "message": {...}}`` line per message;
  several sessions may follow each other in one file;
- a ZIP of such ``.jsonl`` files ("export all");
- the legacy JSON: ``{"conv": {...}, "messages": [...]}`` or a list of them.

``conv``: ``id``, ``name``, ``currNode``, ``lastModified`` (ms). A message:
``id``, ``parent``, ``children``, ``type`` ("root", "system", "text", "think"),
``role``, ``content``, ``timestamp`` (ms), ``reasoningContent`` (older: ``thinking``),
``toolCalls`` (a JSON text or list), ``model``, ``timings`` (``prompt_n``,
``predicted_n``, ``predicted_ms``, ``prompt_ms``), ``extra`` (attached files; the
text of text-like ones is kept after the message). The empty "root" message every
llama.cpp chat starts with is dropped, and a system message at the top becomes
the chat's system prompt; their children move up.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from chatui.settings import MAX_NAME, MAX_TEXT
from chatui.transfer.building import (
    ChatDraft,
    Draft,
    ImportRefused,
    foreign_id,
    listing,
    mapping,
    number,
    text,
    whole,
)
from chatui.tree import Settings, Timings, ToolCall

FORMAT = "llama.cpp"
ZIP_MAGIC = b"PK"
MAX_ZIP_ENTRIES = 1000
TEXT_ATTACHMENTS = frozenset({"TEXT", "PDF", "context", "MCP_PROMPT", "MCP_RESOURCE"})


def looks_like_json(data: Any) -> bool:
    """The legacy JSON: ``{"conv", "messages"}`` or a list of them."""
    items = data if isinstance(data, list) else [data]
    return bool(items) and all(isinstance(i, Mapping) and "conv" in i and "messages" in i
                               for i in items)


def is_session(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("type") == "session"


def is_jsonl(raw: str) -> bool:
    """Whether the first line is a session record (the file is not one JSON value)."""
    first = raw.lstrip().split("\n", 1)[0]
    try:
        return is_session(json.loads(first))
    except (ValueError, RecursionError):  # RecursionError: nested past what json reads
        return False


def read_jsonl(raw: str) -> list[ChatDraft]:
    sessions: list[tuple[Mapping[str, Any], list[Any]]] = []
    for number_, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = mapping(json.loads(line), f"Line {number_}")
        except (ValueError, RecursionError):
            raise ImportRefused(f"Line {number_} of the file is not JSON.") from None
        if record.get("type") == "session":
            sessions.append((record, []))
        elif record.get("type") == "message":
            if not sessions:
                raise ImportRefused("The file has a message before any chat (session) line.")
            sessions[-1][1].append(record.get("message"))
    return [_chat(conv, messages) for conv, messages in sessions]


def read_zip(raw: bytes, max_bytes: int) -> list[ChatDraft]:
    """Every ``.jsonl`` entry of the archive; the uncompressed total is capped too."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ImportRefused("The file starts like a ZIP archive but is not one.") from None
    with archive:
        entries = [i for i in archive.infolist() if i.filename.lower().endswith(".jsonl")]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ImportRefused(f"The archive holds more than {MAX_ZIP_ENTRIES} chats.")
        chats: list[ChatDraft] = []
        left = max_bytes
        for entry in entries:
            with archive.open(entry) as stream:
                data = stream.read(left + 1)
            left -= len(data)
            if left < 0:
                raise ImportRefused("The archive unpacks to more than the import size limit "
                                    f"({max_bytes // 2**20} MiB).")
            try:
                chats.extend(read_jsonl(data.decode("utf-8")))
            except UnicodeDecodeError:
                raise ImportRefused(f"{entry.filename[:80]} is not UTF-8 text.") from None
    return chats


def read_json(data: Any) -> list[ChatDraft]:
    items = data if isinstance(data, list) else [data]
    return [_chat(mapping(item.get("conv"), "A chat"), listing(item.get("messages"),
                                                               "A chat's messages"))
            for item in items]


def _chat(conv: Mapping[str, Any], messages: list[Any] | Any) -> ChatDraft:
    drafts = [_draft(m) for m in messages]
    by_id = {d.id: d for d in drafts}
    dropped: dict[str, str | None] = {}  # a dropped message -> where its children go
    system_prompt = ""
    for message, draft in zip(messages, drafts, strict=True):
        kind = message.get("type")
        top = draft.parent is None or by_id.get(draft.parent, draft).role == "root"
        if kind == "root" or draft.role == "root":
            dropped[draft.id] = draft.parent
        elif draft.role == "system" and top and not system_prompt:
            system_prompt = draft.content[:MAX_TEXT]
            dropped[draft.id] = draft.parent
    kept = []
    for draft in drafts:
        if draft.id in dropped:
            continue
        parent = draft.parent
        seen = 0
        while parent is not None and parent in dropped and seen <= len(dropped):
            parent, seen = dropped[parent], seen + 1
        kept.append(replace(draft, parent=parent))
    current = conv.get("currNode")
    current = current if isinstance(current, str) and current not in dropped else None
    return ChatDraft(
        title=text(conv.get("name"), "The chat's name", MAX_NAME * 5),
        drafts=tuple(kept), current=current,
        updated_at=number(conv.get("lastModified")) / 1000 or None,
        settings=Settings(system_prompt=system_prompt) if system_prompt else None,
    )


def _draft(value: Any) -> Draft:
    message = mapping(value, "A message")
    parent = message.get("parent")
    role = text(message.get("role"), "A message's role", 40)
    if message.get("type") == "root":
        role = "root"
    elif message.get("type") == "think" or role == "model":
        role = "assistant"
    return Draft(
        id=foreign_id(message.get("id"), "A message"),
        parent=foreign_id(parent, "A message's parent") if parent is not None else None,
        role=role,
        content=text(message.get("content"), "A message") + _attached_text(message.get("extra")),
        created_at=number(message.get("timestamp")) / 1000,
        reasoning=text(message.get("reasoningContent") or message.get("thinking"),
                       "A message's reasoning"),
        model=text(message.get("model"), "A model name", MAX_NAME) or None,
        timings=_timings(message.get("timings")),
        tool_calls=_tool_calls(message.get("toolCalls")),
    )


def _attached_text(value: Any) -> str:
    """The text of files attached to a message (text files, PDFs read as text, MCP
    prompts and resources): the model read them with it, so the chat keeps them, after
    the message, under each file's name. Images, audio and video are left out."""
    if not isinstance(value, list):
        return ""
    parts = []
    for item in value:
        if not isinstance(item, Mapping) or item.get("type") not in TEXT_ATTACHMENTS:
            continue
        body = item.get("content")
        if isinstance(body, str) and body.strip():
            name = text(item.get("name"), "An attachment's name", MAX_NAME) or "attachment"
            parts.append(f"\n\n**{name}**\n\n```\n{text(body, name)}\n```")
    return "".join(parts)


def _timings(value: Any) -> Timings | None:
    if not isinstance(value, Mapping):
        return None
    generated = whole(value.get("predicted_n")) or 0
    predicted_ms = number(value.get("predicted_ms"))
    prompt_ms = number(value.get("prompt_ms"))
    return Timings(
        prompt_tokens=whole(value.get("prompt_n")),
        generated_tokens=generated,
        ttft_ms=prompt_ms or None,
        tokens_per_second=generated / predicted_ms * 1000 if predicted_ms else None,
        total_ms=(prompt_ms + predicted_ms) or None,
        source="server",
    )


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    if isinstance(value, str):
        if not value.strip():
            return ()
        try:
            value = json.loads(value)
        except ValueError:
            raise ImportRefused("A message's tool calls are not JSON.") from None
    calls = []
    for item in listing(value, "A message's tool calls"):
        call = mapping(item, "A tool call")
        found = call.get("function")
        function: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        arguments = function.get("arguments")
        calls.append(ToolCall(
            id=text(call.get("id"), "A tool call's id", MAX_NAME),
            name=text(function.get("name"), "A tool's name", MAX_NAME),
            arguments=arguments if isinstance(arguments, str)
            else json.dumps(arguments) if arguments is not None else "",
        ))
    return tuple(calls)
