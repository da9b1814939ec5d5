"""REST endpoints on chats as a whole: list, create, import, history, branch, delete.

Each is a thin translation between HTTP and ``ChatService`` (see ``deps``):
the caller is ``Owner``, another owner's chat is 404 like one that does not
exist. Deleting a chat that is answering stops the answer first (the service
does), as the web UI's Delete does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.routing import APIRoute

from chatui import codec, tree
from chatui.api.deps import Owner, Service, check_model, responses
from chatui.api.schemas import (
    BranchSwitch,
    ChatCreate,
    ChatExport,
    ChatImport,
    ChatRecord,
    ChatSummaryRecord,
)
from chatui.codec import tree_problem
from chatui.errors import InvalidRequest
from chatui.export import conversation_markdown


def chats_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.get("/chats", summary="List chats", response_model=list[ChatSummaryRecord])
    def list_chats(service: Service, owner: Owner) -> list[ChatSummaryRecord]:
        """Your chats, most recently updated first."""
        return [ChatSummaryRecord.of(s) for s in service.conversations(owner)]

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
                 response_model=ChatRecord, responses=responses(422))
    def import_chat(service: Service, owner: Owner, body: ChatImport) -> ChatRecord:
        """Store a chat exported by `GET /chats/{id}/history` (JSON) under a fresh id."""
        data = body.conversation_dict()
        if len({m["id"] for m in data["messages"]}) != len(data["messages"]):
            raise InvalidRequest("Two messages have the same id.")
        conversation = codec.conversation_from_dict(data)
        problem = tree_problem(replace(conversation, id="import"))
        if problem:
            raise InvalidRequest(f"This is not a chat that can be imported: {problem}.")
        return ChatRecord.of(service.import_conversation(conversation, owner))

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
