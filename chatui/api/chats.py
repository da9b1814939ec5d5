"""REST endpoints on chats as a whole: list (paged), create, import, history, branch, delete.

Each is a thin translation between HTTP and ``ChatService`` (see ``deps``):
the caller is ``Owner``, another owner's chat is 404 like one that does not
exist. Deleting a chat that is answering stops the answer first (the service
does), as the web UI's Delete does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from chatui import tree
from chatui.api.deps import Owner, Service, check_model, responses
from chatui.api.importing import IMPORT_BODY, import_chats
from chatui.api.schemas import (
    BranchSwitch,
    ChatCreate,
    ChatExport,
    ChatRecord,
    ChatSummaryRecord,
)
from chatui.export import conversation_markdown
from chatui.store import MAX_PAGE_SIZE

NEXT_CURSOR = "X-Next-Cursor"


def chats_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.get(
        "/chats", summary="List chats", response_model=list[ChatSummaryRecord],
        responses={**responses(422), 200: {"description": "One page of chats.", "headers": {
            NEXT_CURSOR: {"description": "The `cursor` of the next page; absent on the last.",
                          "schema": {"type": "string"}},
        }}},
    )
    def list_chats(
        service: Service,
        owner: Owner,
        response: Response,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Chats per page")] = 50,
        cursor: Annotated[str | None, Query(
            max_length=400, description=f"From the `{NEXT_CURSOR}` header of the page before",
        )] = None,
        q: Annotated[str, Query(
            max_length=1000, description="Only chats whose title or a message contains this",
        )] = "",
    ) -> list[ChatSummaryRecord]:
        """Your chats, most recently updated first, a page at a time.

        When there are more, the `X-Next-Cursor` header holds the `cursor` that
        asks for the next page (and `Link` points at it, `rel="next"`).
        """
        page = service.conversation_page(owner, limit, cursor, q)
        if page.next_cursor is not None:
            response.headers[NEXT_CURSOR] = page.next_cursor
            query = {"limit": limit, "cursor": page.next_cursor} | ({"q": q} if q else {})
            more = urlencode(query)
            response.headers["Link"] = f'<?{more}>; rel="next"'
        return [ChatSummaryRecord.of(s) for s in page.items]

    @router.post("/chats/new", summary="Create a chat", status_code=201,
                 response_model=ChatRecord, responses=responses(422))
    def create_chat(
        service: Service, owner: Owner, body: Annotated[ChatCreate | None, Body()] = None
    ) -> ChatRecord:
        """A new, empty chat. Unset settings take the server's defaults."""
        body = body or ChatCreate()
        fields = body.settings_fields()
        if "model" in fields:
            check_model(service, fields["model"])
        settings = replace(service.defaults, **fields)
        return ChatRecord.of(service.create(owner, body.title, settings))

    @router.post("/chats/import", summary="Import an exported chat", status_code=201,
                 response_model=ChatRecord, responses=responses(422),
                 openapi_extra=IMPORT_BODY)
    async def import_chat(request: Request, service: Service, owner: Owner) -> JSONResponse:
        """Store the chats of an export (chatui JSON, llama.cpp web UI, Open WebUI) under fresh ids.

        The format is told from the body itself; see `chatui.api.importing`.
        """
        return await import_chats(request, service, owner)

    @router.get(
        "/chats/{chat_id}/history", summary="A chat and its messages",
        response_model=ChatExport, responses={
            **responses(404, 422),
            200: {"content": {"text/markdown": {"schema": {"type": "string"}}},
                  "description": "JSON (default) or Markdown (`format=markdown`)."},
        },
    )
    def history(
        chat_id: str,
        service: Service,
        owner: Owner,
        tree_: Annotated[bool, Query(alias="tree", description="The whole tree, every branch")]
        = False,
        format: Annotated[Literal["json", "markdown"], Query()] = "json",
    ) -> ChatExport | Response:
        """The active branch (default) or every message (`tree=true`).

        JSON with `tree=true` is the export format: post it to `/chats/import`.
        Markdown is a readable transcript of the active branch (`tree` is ignored).
        """
        conversation = service.conversation(chat_id, owner)
        if format == "markdown":
            return Response(conversation_markdown(conversation), media_type="text/markdown")
        messages = list(conversation.messages.values()) if tree_ else tree.active_path(conversation)
        return ChatExport.of_messages(conversation, messages)

    @router.post("/chats/{chat_id}/branch", summary="Switch the active branch",
                 response_model=ChatRecord, responses=responses(404, 409, 422))
    def switch_branch(
        chat_id: str, body: BranchSwitch, service: Service, owner: Owner
    ) -> ChatRecord:
        """Show the branch through `message_id`, down to its newest message."""
        return ChatRecord.of(service.switch_branch(chat_id, body.message_id, owner))

    @router.delete("/chats/{chat_id}", summary="Delete a chat", status_code=204,
                   response_class=Response, responses=responses(404, 409, 422))
    def delete_chat(chat_id: str, service: Service, owner: Owner) -> Response:
        """Delete the chat and its documents; an answer being generated is stopped first."""
        service.delete(chat_id, owner)
        return Response(status_code=204)

    return router
