"""REST endpoints that answer: send (or edit, or regenerate) and get the answer, as one
JSON body or as server-sent events; and Stop.

Starting is eager (``ChatService.start_*``): everything that can be refused
(unknown chat or parent, busy chat, bad input, a limit, the model known to be
down) is refused before any answer begins, so those are HTTP statuses; a
failure after a stream has begun is an ``event: error``. One answer per chat
at a time: the second call gets 409, whether the first came from the API or
the web UI. The answer's own runner thread streams and stores it; these
endpoints read it on the event loop (``Answer.atake``), with no thread of their
own. A client that hangs up stops the answer; the partial answer is stored,
marked stopped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from chatui.answer import Answer
from chatui.api.deps import Address, Owner, Service, check_model, responses
from chatui.api.errors import AnswerStopped
from chatui.api.schemas import MessageCreate, MessageRecord, StopResult
from chatui.api.streaming import STREAM_DESCRIPTION, EventStream
from chatui.errors import InvalidRequest
from chatui.service import ChatService
from chatui.tree import Message

GENERATION_ERRORS = (404, 409, 422, 429, 502, 503, 504)
DISCONNECT_CHECK_SECONDS = 0.5


def start_answer(
    service: ChatService, chat_id: str, body: MessageCreate, owner: str, address: str | None
) -> Answer:
    """Check the request against the chat and start its answer (raises if refused)."""
    conversation = service.conversation(chat_id, owner)
    overrides = body.overrides()
    if "model" in overrides:
        check_model(service, overrides["model"])
    if body.continue_id is not None:
        return service.start_continue(chat_id, body.continue_id, owner=owner, address=address)
    if body.reproduce_id is not None:
        return service.start_reproduce(chat_id, body.reproduce_id, owner=owner, address=address)
    if body.regenerate_id is not None:
        answer = conversation.message(body.regenerate_id)
        if answer.role != "assistant" or answer.parent_id is None:
            raise InvalidRequest("Only an answer can be regenerated.")
        if set(overrides) - {"model"}:
            raise InvalidRequest("When regenerating, only the model can be overridden.")
        return service.start_regenerate(chat_id, answer.id, owner=owner,
                                        model=overrides.get("model"), address=address)
    assert body.content is not None  # MessageCreate's validator
    explicit_parent = "parent_id" in body.model_fields_set
    settings = replace(conversation.settings, **overrides) if overrides else None
    return service.start_send(
        chat_id, body.content, owner=owner,
        parent_id=body.parent_id if explicit_parent else None,
        branch_from_current=not explicit_parent, settings=settings, address=address,
    )


async def final_answer(answer: Answer, is_disconnected: Callable[[], Awaitable[bool]]
                       ) -> Message | None:
    """The stored answer (None if stopped before it began); raises the answer's error.

    Stops the answer if the client hangs up meanwhile (checked every
    ``DISCONNECT_CHECK_SECONDS``) or if this request is cancelled.
    """
    next_check = time.monotonic() + DISCONNECT_CHECK_SECONDS
    try:
        while not (await answer.atake(DISCONNECT_CHECK_SECONDS))[1]:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + DISCONNECT_CHECK_SECONDS
                if await is_disconnected():
                    answer.stop()
    finally:
        answer.stop()  # does nothing once it has ended
    final = answer.result  # it has ended: at once
    return final.message if final is not None else None


def messages_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post("/chats/{chat_id}/message", summary="Send a message and get the answer",
                 response_model=MessageRecord, responses=responses(*GENERATION_ERRORS))
    async def post_message(
        chat_id: str, body: MessageCreate, request: Request, service: Service, owner: Owner,
        address: Address,
    ) -> MessageRecord:
        """Store the message, generate the answer, store it and return it.

        Edit and regenerate are branches: see the request body's description.
        """
        answer = await run_in_threadpool(start_answer, service, chat_id, body, owner, address)
        message = await final_answer(answer, request.is_disconnected)
        if message is None:
            raise AnswerStopped("The answer was stopped before it began.")
        return MessageRecord.of(message)

    @router.post("/chats/{chat_id}/stream", summary="Send a message; stream the answer",
                 response_class=EventStream, status_code=200, description=STREAM_DESCRIPTION,
                 responses={**responses(*GENERATION_ERRORS, by_ref=True), 200: {
                     "description": "Server-sent events",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def stream_message(
        chat_id: str, body: MessageCreate, service: Service, owner: Owner, address: Address,
    ) -> EventStream:
        answer = await run_in_threadpool(start_answer, service, chat_id, body, owner, address)
        return EventStream(answer)

    @router.post("/chats/{chat_id}/stop", summary="Stop the answer being generated",
                 response_model=StopResult, responses=responses(404, 422))
    def stop(chat_id: str, service: Service, owner: Owner) -> StopResult:
        """The partial answer is stored with status `stopped`."""
        return StopResult(stopped=service.stop(chat_id, owner))

    return router
