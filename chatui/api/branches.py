"""REST endpoints on a chat's tree: the branch map, prune a subtree, fork a path.

- ``GET /chats/{id}/tree``: every message as a node of the map (``chatui.branchmap``),
  depth first, with its place among its siblings and whether the chat shows it;
- ``DELETE /chats/{id}/messages/{message_id}``: the message and everything below
  it, nothing else; if the chat showed it, the chat shows the newest branch left
  under its parent. Refused (409) while the chat is answering;
- ``POST /chats/{id}/fork``: a new chat (same owner, same settings, fresh ids)
  holding the path from the first message down to ``message_id``.

Owner-scoped like every endpoint: another owner's chat is 404. Message ids from
the path or the body are checked like every id from outside.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from chatui import branchmap
from chatui.api.deps import Owner, Service, responses
from chatui.api.schemas import ChatRecord, MessageId
from chatui.codec import ID_PATTERN
from chatui.forking import fork
from chatui.settings import MAX_NAME


class NodeRecord(BaseModel):
    id: str
    parent_id: str | None
    role: Literal["system", "user", "assistant", "tool"]
    preview: str = Field(description="The first words of the message, whitespace folded.")
    model: str | None
    status: str
    created_at: float
    depth: int = Field(description="How many branch points lie above this message.")
    position: int = Field(description="1-based place among its siblings (its `2` of `2/3`).")
    siblings: int = Field(description="How many siblings, itself included (its `3` of `2/3`).")
    children: int
    active: bool = Field(description="Whether the chat shows it (on the active branch).")
    current: bool = Field(description="Whether it is the active branch's last message.")


class TreeRecord(BaseModel):
    id: str
    current_leaf_id: str | None
    branches: int = Field(description="How many different paths (leaves) the tree has.")
    nodes: list[NodeRecord] = Field(description="Every message, depth first, oldest sibling "
                                    "first; full texts: `GET /chats/{id}/history?tree=true`.")


class ForkRequest(BaseModel):
    model_config = {"extra": "forbid"}
    message_id: MessageId = Field(min_length=1, max_length=MAX_NAME,
                                  description="The last message the new chat holds.")


PathMessageId = Annotated[str, Path(pattern=ID_PATTERN, min_length=1, max_length=MAX_NAME,
                                    description="Letters, digits, - and _.")]


def branches_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.get("/chats/{chat_id}/tree", summary="The chat's branch map",
                response_model=TreeRecord, responses=responses(404, 422))
    def chat_tree(chat_id: str, service: Service, owner: Owner) -> TreeRecord:
        """Every message of every branch as a node: role, first words, model, siblings."""
        mapped = branchmap.branch_map(service.conversation(chat_id, owner))
        return TreeRecord(
            id=mapped.conversation_id, current_leaf_id=mapped.current_leaf_id,
            branches=mapped.branches,
            nodes=[NodeRecord(**{f: getattr(n, f) for f in NodeRecord.model_fields})
                   for n in mapped.nodes],
        )

    @router.delete("/chats/{chat_id}/messages/{message_id}", summary="Prune a branch",
                   response_model=ChatRecord, responses=responses(404, 409, 422))
    async def prune(chat_id: str, message_id: PathMessageId, service: Service, owner: Owner
                    ) -> ChatRecord:
        """Delete the message and everything below it; its siblings and parents stay.

        The chat's `current_leaf_id` moves to the newest message left under the
        parent when the deleted branch was the one shown.
        """
        chat = await run_in_threadpool(service.delete_message, chat_id, message_id, owner)
        return ChatRecord.of(chat)

    @router.post("/chats/{chat_id}/fork", summary="Fork a chat at a message", status_code=201,
                 response_model=ChatRecord, responses=responses(404, 422))
    async def fork_chat(chat_id: str, body: ForkRequest, service: Service, owner: Owner
                        ) -> ChatRecord:
        """A new chat holding the path from the first message down to `message_id`."""
        chat = await run_in_threadpool(fork, service, chat_id, body.message_id, owner)
        return ChatRecord.of(chat)

    return router
