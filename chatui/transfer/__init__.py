"""Chats to and from files: chatui's JSON and Markdown, and other chat UIs' exports.

    read_chats(data, owner, check_native)  bytes of an uploaded file -> checked
                             ``Conversation`` values (chatui's own JSON first through
                             ``check_native``: the REST import schema's check)
    export_json(c) / export_markdown(c)  the two downloads (``codec`` / ``chatui.export``)

The format is told from the contents, never from a file name:

    native.py     chatui's own export (``GET /api/v1/chats/{id}/history?tree=true``)
    llamacpp.py   llama.cpp's web UI: JSONL sessions, a ZIP of them, or its legacy JSON
    openwebui.py  Open WebUI's chat export JSON (``chat.history.messages``, ``currentId``)
    building.py   every rule an import keeps (tree, ids, sizes), for all three

Everything in a file is hostile: ``read_chats`` refuses with ``ImportRefused``
(an ``InvalidRequest``: 422 for the REST API, a notice in the page) and a
sentence saying what is wrong; it stores nothing (the chat service does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from chatui import codec
from chatui.export import conversation_markdown
from chatui.transfer import llamacpp, native, openwebui
from chatui.transfer.building import ImportRefused, build
from chatui.tree import Conversation

MAX_IMPORT_BYTES = 32 * 2**20  # a file to import, and an archive's unpacked contents
MAX_CHATS = 1000  # chats in one file

__all__ = ["MAX_CHATS", "MAX_IMPORT_BYTES", "ImportRefused", "detect", "export_json",
           "export_markdown", "read_chats"]


Check = Callable[[Mapping[str, Any]], None]
"""Raises ``ImportRefused`` for a chatui export its schema refuses (see ``read_chats``)."""


def read_chats(data: bytes, owner: str,
               check_native: Check | None = None) -> tuple[tuple[Conversation, ...], str]:
    """The chats in ``data`` (fresh ids, owned by ``owner``) and the format's name.

    ``check_native`` sees a chatui export first: the edges pass the REST schema's
    check, so a field of the wrong type is refused, not dropped to its default.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(f"The file is larger than {MAX_IMPORT_BYTES // 2**20} MiB.")
    if not data.strip():
        raise ImportRefused("The file is empty.")
    name, drafts = _drafts(data, check_native)
    if not drafts:
        raise ImportRefused(f"This {name} file holds no chat.")
    if len(drafts) > MAX_CHATS:
        raise ImportRefused(f"This file holds {len(drafts):,} chats; at most {MAX_CHATS:,} "
                            "can be imported at once.")
    keep = name == native.FORMAT
    return tuple(build(draft, owner, keep_ids=keep) for draft in drafts), name


def detect(data: bytes) -> str | None:
    """Which format ``data`` is in (``native.FORMAT``, ...), or None."""
    try:
        return _drafts(data)[0]
    except ImportRefused:
        return None


def _drafts(data: bytes, check_native: Check | None = None) -> tuple[str, list[Any]]:
    if data.startswith(llamacpp.ZIP_MAGIC):
        return llamacpp.FORMAT, llamacpp.read_zip(data, MAX_IMPORT_BYTES)
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("The file is not text (UTF-8) nor a ZIP archive: it is not a "
                            "chat export.") from None
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past what json reads
        if llamacpp.is_jsonl(raw):  # JSON lines: "extra data" after the first one
            return llamacpp.FORMAT, llamacpp.read_jsonl(raw)
        raise ImportRefused("The file is not JSON: import a chat exported from chatui, "
                            "llama.cpp's web UI or Open WebUI.") from None
    if llamacpp.is_session(parsed):  # a JSONL export of one line: a chat with no messages
        return llamacpp.FORMAT, llamacpp.read_jsonl(raw)
    if native.looks_like(parsed):
        if check_native is not None:
            check_native(parsed)
        return native.FORMAT, [native.read(parsed)]
    if llamacpp.looks_like_json(parsed):
        return llamacpp.FORMAT, llamacpp.read_json(parsed)
    if openwebui.looks_like(parsed):
        return openwebui.FORMAT, openwebui.read(parsed)
    raise ImportRefused("This JSON is not a chat export chatui knows: import a chat exported "
                        "from chatui, llama.cpp's web UI or Open WebUI.")


def export_json(conversation: Conversation) -> str:
    """The whole tree, as ``GET /chats/{id}/history?tree=true`` gives it (re-importable)."""
    return json.dumps(codec.conversation_to_dict(conversation), ensure_ascii=False, indent=1)


def export_markdown(conversation: Conversation) -> str:
    """The active branch as a readable transcript (``chatui.export``)."""
    return conversation_markdown(conversation)
