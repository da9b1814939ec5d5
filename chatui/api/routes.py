"""The REST API's endpoints: thin translations between HTTP and ``ChatService``.

Mounted at ``/api/v1``. Every endpoint checks the bearer token first (see
``auth``), acts as ``request_owner(request)`` and calls the service only; errors
become JSON bodies in ``errors``. Generating endpoints validate everything they
can (chat, parent message, model, busy) before answering, so those failures are
HTTP statuses; a failure after a stream has begun is an ``event: error``.

Only one answer is generated per chat at a time. Two API calls on the same chat
are told apart here (``_Reservations``), so the second always gets 409 rather
than racing the first inside the service; the service's own ``ConversationBusy``
still covers an answer started from the web UI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from chatui import codec, tree
from chatui.api.auth import bearer_check, request_owner, token_owners
from chatui.api.errors import AnswerStopped, error_translating_route
from chatui.api.generation import Generation
from chatui.api.schemas import (
    BackendHealthRecord,
    BranchSwitch,
    CacheRecord,
    ChatCreate,
    ChatExport,
    ChatImport,
    ChatRecord,
    ChatSummaryRecord,
    ErrorBody,
    MessageCreate,
    MessageRecord,
    StatsRecord,
    StatusRecord,
    StopResult,
)
from chatui.api.streaming import EventStream
from chatui.cache import CachedStore
from chatui.errors import BackendError, ConversationBusy, InvalidRequest
from chatui.export import conversation_markdown
from chatui.runtime import Runtime
from chatui.service import ChatService, Progress
from chatui.storage import tree_problem

Owner = Annotated[str, Depends(request_owner)]


def _errors(*statuses: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses.

    ``by_ref`` names the schema instead of giving the model: FastAPI would
    otherwise document the error under a route's own media type (event-stream).
    """
    descriptions = {
        401: "Missing or wrong bearer token (when the API requires one).",
        404: "No such chat (or message).",
        409: "An answer is already being generated in this chat (`conversation_busy`); "
             "wait for it or stop it. Also `answer_stopped`: stopped before its first token.",
        422: "The request does not validate or makes no sense (`invalid_request`).",
        429: "A per-user limit is reached (`limit_exceeded`): answers at once or per minute. "
             "`Retry-After` says when to try again, when known.",
        502: "The model server answered with an error, or sent an unreadable stream.",
        503: "The model server cannot be reached (`backend_unavailable`), or the embedded "
             "model crashed and is being restarted or could not be (`backend_down`).",
        504: "The model server did not answer in time.",
    }
    if not by_ref:
        return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {s: {"description": descriptions[s], "content": json_error} for s in statuses}


GENERATION_ERRORS = (404, 409, 422, 429, 502, 503, 504)

STREAM_DESCRIPTION = """Like `/message`, as server-sent events (`text/event-stream`):

- `event: sources` — `[source, ...]`, once before the text when documents were retrieved
- `event: reasoning` — `{"content": "..."}`, more of the model's reasoning
- `event: delta` — `{"content": "..."}`, more of the answer
- `event: replace` — `{"content", "reasoning"}`: the text so far was reclassified; show these
- `event: message` — the stored answer record; the stream ends
- `event: error` — `{"type", "message"}`: the generation failed after it began; the stream ends

Errors found before the stream begins (unknown chat or parent, busy chat, bad
input) are plain HTTP errors. Closing the connection stops the generation; the
partial answer is stored with status `stopped`."""


class _Reservations:
    """Chats with an answer being generated for an API call."""

    def __init__(self, service: ChatService) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._chats: set[str] = set()

    def reserve(self, chat_id: str) -> None:
        with self._lock:
            if chat_id in self._chats or self._service.is_generating(chat_id):
                raise ConversationBusy(
                    "An answer is still being generated in this chat; "
                    "stop it or wait for it to finish."
                )
            self._chats.add(chat_id)

    def release(self, chat_id: str) -> None:
        with self._lock:
            self._chats.discard(chat_id)


def build_api(runtime: Runtime) -> APIRouter:
    """The /api/v1 router. Raises SystemExit if the API would be exposed without a token."""
    service = runtime.service
    tokens = token_owners(runtime.config)
    router = APIRouter(
        route_class=error_translating_route(bearer_check(tokens)),
        dependencies=[Depends(HTTPBearer(auto_error=False))] if tokens else [],
        responses=_errors(401, by_ref=True) if tokens else {},
    )
    reservations = _Reservations(service)

    def check_model(model: str) -> None:
        try:
            models = service.models()
        except BackendError:
            return  # the server cannot list its models; let it judge the name
        if models and model not in models:
            raise InvalidRequest(
                f"The model server has no model {model!r}; it offers: {', '.join(models)}."
            )

    def plan(chat_id: str, body: MessageCreate, owner: str) -> Callable[..., Iterator[Progress]]:
        """Check the request against the chat; the generation to start (takes ``admission=``)."""
        conversation = service.conversation(chat_id, owner)
        overrides = body.overrides()
        if "model" in overrides:
            check_model(overrides["model"])
        if body.regenerate_id is not None:
            answer = conversation.message(body.regenerate_id)
            if answer.role != "assistant" or answer.parent_id is None:
                raise InvalidRequest("Only an answer can be regenerated.")
            if set(overrides) - {"model"}:
                raise InvalidRequest("When regenerating, only the model can be overridden.")
            return partial(service.regenerate, chat_id, answer.id, owner=owner,
                           model=overrides.get("model"))
        assert body.content is not None  # MessageCreate's validator
        if not body.content.strip():
            raise InvalidRequest("The message is empty.")
        explicit_parent = "parent_id" in body.model_fields_set
        if explicit_parent and body.parent_id is not None:
            conversation.message(body.parent_id)
        settings = replace(conversation.settings, **overrides) if overrides else None
        return partial(
            service.send, chat_id, body.content, owner=owner,
            parent_id=body.parent_id if explicit_parent else None,
            branch_from_current=not explicit_parent, settings=settings,
        )

    async def start(chat_id: str, body: MessageCreate, owner: str) -> Generation:
        steps = await run_in_threadpool(plan, chat_id, body, owner)
        service.require_backend()  # the embedded model is down: 503 before anything is stored
        reservations.reserve(chat_id)
        try:
            admission = service.admit(owner)  # over a limit: 429 before any stream begins
        except BaseException:
            reservations.release(chat_id)
            raise

        def ended() -> None:
            reservations.release(chat_id)
            admission.release()

        try:
            return Generation(service, chat_id, partial(steps, admission=admission), ended)
        except BaseException:
            ended()
            raise

    @router.get("/chats", summary="List chats", response_model=list[ChatSummaryRecord])
    def list_chats(owner: Owner) -> list[ChatSummaryRecord]:
        """Your chats, most recently updated first."""
        return [ChatSummaryRecord.of(s) for s in service.conversations(owner)]

    @router.post("/chats/new", summary="Create a chat", status_code=201,
                 response_model=ChatRecord, responses=_errors(422))
    def create_chat(owner: Owner, body: Annotated[ChatCreate | None, Body()] = None) -> ChatRecord:
        """A new, empty chat. Unset settings take the server's defaults."""
        body = body or ChatCreate()
        fields = body.settings_fields()
        if "model" in fields:
            check_model(fields["model"])
        settings = replace(service.defaults, **fields)
        return ChatRecord.of(service.create(owner, body.title, settings))

    @router.post("/chats/import", summary="Import an exported chat", status_code=201,
                 response_model=ChatRecord, responses=_errors(422))
    def import_chat(owner: Owner, body: ChatImport) -> ChatRecord:
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
            **_errors(404, 422),
            200: {"content": {"text/markdown": {"schema": {"type": "string"}}},
                  "description": "JSON (default) or Markdown (`format=markdown`)."},
        },
    )
    def history(
        chat_id: str,
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

    @router.post("/chats/{chat_id}/message", summary="Send a message and get the answer",
                 response_model=MessageRecord, responses=_errors(*GENERATION_ERRORS))
    async def post_message(
        chat_id: str, body: MessageCreate, request: Request, owner: Owner
    ) -> MessageRecord:
        """Store the message, generate the answer, store it and return it.

        Edit and regenerate are branches: see the request body's description.
        """
        generation = await start(chat_id, body, owner)
        answer = await generation.final(request.is_disconnected)
        if answer is None:
            raise AnswerStopped("The answer was stopped before it began.")
        return MessageRecord.of(answer)

    @router.post("/chats/{chat_id}/stream", summary="Send a message; stream the answer",
                 response_class=EventStream, status_code=200, description=STREAM_DESCRIPTION,
                 responses={**_errors(*GENERATION_ERRORS, by_ref=True), 200: {
                     "description": "Server-sent events",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def stream_message(chat_id: str, body: MessageCreate, owner: Owner) -> EventStream:
        return EventStream(await start(chat_id, body, owner))

    @router.post("/chats/{chat_id}/branch", summary="Switch the active branch",
                 response_model=ChatRecord, responses=_errors(404, 409, 422))
    def switch_branch(chat_id: str, body: BranchSwitch, owner: Owner) -> ChatRecord:
        """Show the branch through `message_id`, down to its newest message."""
        return ChatRecord.of(service.switch_branch(chat_id, body.message_id, owner))

    @router.post("/chats/{chat_id}/stop", summary="Stop the answer being generated",
                 response_model=StopResult, responses=_errors(404, 422))
    def stop(chat_id: str, owner: Owner) -> StopResult:
        """The partial answer is stored with status `stopped`."""
        service.conversation(chat_id, owner)
        return StopResult(stopped=service.stop(chat_id))

    @router.delete("/chats/{chat_id}", summary="Delete a chat", status_code=204,
                   response_class=Response, responses=_errors(404, 409, 422))
    def delete_chat(chat_id: str, owner: Owner) -> Response:
        service.conversation(chat_id, owner)  # another owner's chat is 404, busy or not
        if service.is_generating(chat_id):
            raise ConversationBusy("An answer is being generated in this chat; stop it first.")
        service.delete(chat_id, owner)
        return Response(status_code=204)

    @router.get("/status", summary="Model server health", response_model=StatusRecord)
    def status() -> StatusRecord:
        """Whether the model server answers; for the embedded model, its crashes and restarts."""
        health = service.backend_health()
        return StatusRecord(backend=BackendHealthRecord.of(health) if health else None)

    @router.get("/stats", summary="Cache statistics", response_model=StatsRecord)
    def stats() -> StatsRecord:
        """Hits and misses of the conversation cache in front of the store."""
        store = service.store
        cache = CacheRecord.of(store.stats()) if isinstance(store, CachedStore) else None
        return StatsRecord(cache=cache)

    return router
