"""The one place where chatui's errors become HTTP statuses and JSON error bodies.

Every error the API answers has the body ``{"error": {"type": ..., "message": ...}}``:

    401 unauthorized          missing or wrong bearer token
    404 not_found             unknown chat or message (or another owner's)
    409 conversation_busy     an answer is already being generated in this chat
    409 answer_stopped        the answer was stopped before its first token
    422 invalid_request       the body or query does not validate, is no JSON, or makes no sense
    429 limit_exceeded        a per-user limit: answers at once or per minute (Retry-After if known)
    502 backend_http_error    the model server answered with an error status
    502 backend_stream_error  the model server reported an error mid-stream
    502 stream_protocol_error the model server sent something unreadable
    502 backend_error         the connection to the model server broke
    503 backend_unavailable   the model server cannot be reached
    503 backend_down          the embedded model crashed: being restarted, or it gave up
    504 backend_timeout       the model server did not answer in time
    500 store_error           the conversation store cannot read or write

FastAPI's exception handlers belong to the app, but ``build_api`` returns a
router; so the router's ``route_class`` (made by ``error_translating_route``)
wraps each endpoint: it checks the token first, then turns ``ChatError``,
``RequestValidationError`` and the API's own errors into these responses.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from chatui.errors import (
    BackendDown,
    BackendError,
    BackendHTTPError,
    BackendStreamError,
    BackendTimeout,
    BackendUnavailable,
    ChatError,
    ConversationBusy,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    StoreError,
    StreamProtocolError,
)


class Unauthorized(ChatError):
    """The request carries no bearer token, or the wrong one (in ``chatui.errors``' tree)."""


class AnswerStopped(ChatError):
    """The answer was stopped (by another client) before anything was generated."""


# Most specific first: the first matching class wins.
_STATUS: list[tuple[type[Exception], int, str]] = [
    (Unauthorized, 401, "unauthorized"),
    (AnswerStopped, 409, "answer_stopped"),
    (NotFound, 404, "not_found"),
    (ConversationBusy, 409, "conversation_busy"),
    (InvalidRequest, 422, "invalid_request"),
    (LimitExceeded, 429, "limit_exceeded"),
    (BackendUnavailable, 503, "backend_unavailable"),
    (BackendDown, 503, "backend_down"),
    (BackendTimeout, 504, "backend_timeout"),
    (BackendHTTPError, 502, "backend_http_error"),
    (BackendStreamError, 502, "backend_stream_error"),
    (StreamProtocolError, 502, "stream_protocol_error"),
    (BackendError, 502, "backend_error"),
    (StoreError, 500, "store_error"),
    (ChatError, 500, "internal_error"),
]


def status_and_type(error: Exception) -> tuple[int, str]:
    """HTTP status and error type for a chatui or API error."""
    for cls, status, kind in _STATUS:
        if isinstance(error, cls):
            return status, kind
    return 500, "internal_error"


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def error_response(error: Exception) -> JSONResponse:
    status, kind = status_and_type(error)
    message = str(error) or "Something went wrong."
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, LimitExceeded) and error.retry_after is not None:
        headers = {"Retry-After": str(round(error.retry_after))}
    return JSONResponse(error_body(kind, message), status_code=status, headers=headers)


def validation_message(error: RequestValidationError) -> str:
    """Pydantic's errors as one readable line: ``body.temperature: Input should be ...``."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        text = str(item.get("msg", "is not valid"))
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts) or "The request is not valid."


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def error_translating_route(authorize: Callable[[Request], None]) -> type[APIRoute]:
    """An ``APIRoute`` class that authorizes every call and translates errors at the edge."""

    class ChatAPIRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def translated(request: Request) -> Response:
                try:
                    authorize(request)
                    return await handler(request)
                except RequestValidationError as error:
                    return JSONResponse(
                        error_body("invalid_request", validation_message(error)), status_code=422
                    )
                except (ChatError, Unauthorized, AnswerStopped) as error:
                    return error_response(error)
                except HTTPException as error:  # FastAPI's own: a body it cannot parse
                    if error.status_code != 400:
                        raise
                    message = "The request body cannot be read as JSON."
                    return JSONResponse(error_body("invalid_request", message), status_code=422)

            return translated

    return ChatAPIRoute
