"""``POST /chats/import``: a chat export from chatui, llama.cpp's web UI or Open WebUI.

The body is the file as it is (JSON, JSONL or a ZIP archive); its format is
told from the contents (``chatui.transfer``), so the content type does not
matter. The body is read up to ``transfer.MAX_IMPORT_BYTES`` and no further.
A file with several chats (an "export all") stores them all; the answer is
the first one's record, and ``X-Chatui-Imported`` lists every new id.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from chatui import transfer
from chatui.api.schemas import ChatImport, ChatRecord
from chatui.errors import InvalidRequest
from chatui.service import ChatService
from chatui.tree import Conversation

IMPORTED_HEADER = "X-Chatui-Imported"

IMPORT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {
        **ChatImport.model_json_schema(ref_template="#/components/schemas/{model}"),
        "description": "chatui's export (`GET /chats/{id}/history?tree=true`); Open WebUI's "
                       "chat export (a list of chats with `chat.history`) and llama.cpp's "
                       "legacy JSON (`{conv, messages}`) are read too.",
    }},
    "application/x-ndjson": {"schema": {
        "type": "string", "description": "llama.cpp web UI's export (`.jsonl` sessions)"}},
    "application/zip": {"schema": {
        "type": "string", "format": "binary",
        "description": "llama.cpp web UI's export of all chats (`.jsonl` files in a ZIP)"}},
}}}
IMPORT_BODY["requestBody"]["content"]["application/json"]["schema"].pop("$defs", None)


async def read_body(request: Request) -> bytes:
    """The request's body, refused once it passes the import size limit."""
    limit = transfer.MAX_IMPORT_BYTES
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise InvalidRequest(f"The file is larger than {limit // 2**20} MiB.")
    return bytes(received)


def store(service: ChatService, owner: str, data: bytes) -> tuple[Conversation, ...]:
    """Read every chat in ``data``, then store them (nothing is stored if one is refused)."""
    chats, _format = transfer.read_chats(data, owner, ChatImport.check)
    return tuple(service.import_conversation(chat, owner) for chat in chats)


async def import_chats(request: Request, service: ChatService, owner: str) -> JSONResponse:
    data = await read_body(request)
    stored = await run_in_threadpool(store, service, owner, data)
    record = ChatRecord.of(stored[0]).model_dump(mode="json")
    return JSONResponse(record, status_code=201,
                        headers={IMPORTED_HEADER: ",".join(c.id for c in stored)})
