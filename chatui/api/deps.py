"""What every REST endpoint depends on: the chat service, the caller, their address.

``build_api`` binds the runtime's service to each request (``bind``, run by the
route class before the endpoint); endpoints ask for it with ``Service`` and for
the caller with ``Owner``, so the per-resource routers (``chats``, ``messages``,
``status``) are plain functions of their inputs, not closures over a runtime.
``responses`` documents the error statuses a route can answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from chatui.api.auth import request_owner
from chatui.api.schemas import ErrorBody
from chatui.errors import BackendError, InvalidRequest
from chatui.service import ChatService

_SERVICE = "chatui_service"


def bind(request: Request, service: ChatService) -> None:
    """Make ``service`` the one this request's endpoint gets as ``Service``."""
    setattr(request.state, _SERVICE, service)


# These are ``async`` only so that FastAPI calls them on the event loop: they do no
# I/O, and a sync dependency costs a trip through the shared thread pool per call.


async def chat_service(request: Request) -> ChatService:
    service: ChatService = getattr(request.state, _SERVICE)
    return service


async def caller(request: Request) -> str:
    """Whose chats this call sees (``auth.request_owner``)."""
    return request_owner(request)


async def request_address(request: Request) -> str | None:
    """Where the call came from (counted by the limits for anonymous owners)."""
    return request.client.host if request.client else None


Service = Annotated[ChatService, Depends(chat_service)]
Owner = Annotated[str, Depends(caller)]
Address = Annotated[str | None, Depends(request_address)]


def check_model(service: ChatService, model: str) -> None:
    """422 for a model the server does not offer (when it can list them)."""
    try:
        models = service.models()
    except BackendError:
        return  # the server cannot list its models; let it judge the name
    if models and model not in models:
        raise InvalidRequest(
            f"The model server has no model {model!r}; it offers: {', '.join(models)}."
        )


_DESCRIPTIONS = {
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


def responses(*statuses: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses.

    ``by_ref`` names the schema instead of giving the model: FastAPI would
    otherwise document the error under a route's own media type (event-stream).
    """
    if not by_ref:
        return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {s: {"description": _DESCRIPTIONS[s], "content": json_error} for s in statuses}
