"""The REST API's documents: ``/api/v1/documents``, thin over ``documents.DocumentService``.

    POST   /documents[?chat_id=]            multipart ``files`` (one or more): a result per file
    POST   /documents/stream[?chat_id=]     the same, with its progress as server-sent events
    GET    /documents[?chat_id=]            your library, plus that chat's attachments
    DELETE /documents/{id}[?chat_id=]       one document of that listing
    GET    /documents/search?q=&mode=&k=[&chat_id=]

``chat_id`` names one of your chats (404 otherwise): uploads go to it (and its
"Use documents" setting is turned on, as the web UI does), the listing and the
search see your library plus its attachments, and only a document of that
listing can be deleted; without it, your library alone. Another owner's
document is 404, like an unknown one.

Each received part is written into the upload folder and received for the
caller (``DocumentUploads.write``), so it becomes a document the one way any
upload does. A request is refused whole, before anything is written, when it
cannot be read as multipart or has no files or too many (422), when a part is
over ``UPLOAD_HARD_CAP`` times the file size limit or the body over
``BODY_CAP`` times it (413), or when the caller cannot add one document more
(429). Otherwise each file has its own result: added, duplicate, or refused
with a reason (too large, unsupported type, limit, ...).

``build_api`` includes this router with the chat routes' route class: the
bearer token is checked first and errors are translated the same way. Here
the routes and their OpenAPI text; ``bodies`` the request and response
bodies; ``receiving`` the multipart parts, the indexing thread and the events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from rag_index import SUPPORTED_EXTENSIONS

from chatui.api.deps import Owner
from chatui.api.documents.bodies import DocumentRecord, SearchHit, SearchResult, UploadResult
from chatui.api.documents.receiving import in_own_thread, progress_events, receive
from chatui.api.schemas import ErrorBody
from chatui.documents import DEFAULT_K, MAX_FILES, MAX_K, MAX_QUERY_CHARS, DocumentService

__all__ = ["documents_router"]

ChatId = Annotated[str | None, Query(
    description="One of your chats: its attachments too, besides your library.",
    max_length=200)]


# ----- OpenAPI ----------------------------------------------------------------------

_DESCRIPTIONS = {
    404: "No such chat (`chat_id`), or no such document in this scope (or another owner's).",
    413: "A file, or the whole request, is over the size the server takes; nothing was "
         "stored. Send fewer or smaller files.",
    422: "Not a multipart body with `files`, too many files, or a bad parameter.",
    429: "A per-user limit (`limit_exceeded`): no room for one document more, or too many "
         "of your uploads already waiting.",
    503: "The document model is still loading or cannot be loaded (`backend_unavailable`).",
}


def _errors(*statuses: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these statuses; ``by_ref`` for a route whose own type is not JSON."""
    if not by_ref:
        return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {s: {"description": _DESCRIPTIONS[s], "content": json_error} for s in statuses}


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {
        "type": "array", "minItems": 1, "maxItems": MAX_FILES,
        "items": {"type": "string", "format": "binary"},
        "description": f"The files ({' '.join(sorted(SUPPORTED_EXTENSIONS))}); each part needs "
                       "a filename.",
    }},
}}}}}

_EVENT = {  # one server-sent event, as OpenAPI tools read a text/event-stream
    "type": "object", "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["progress", "file", "result", "error"]},
        "data": {"type": "string", "description": "A JSON object (see the description)."},
    },
}

STREAM_DESCRIPTION = """Like `POST /documents`, with progress as server-sent events:

- `event: progress` — `{"name", "file", "files", "stage", "fraction"}`, as a file is read,
  embedded and saved
- `event: file` — one file's result (as in `files` of `POST /documents`), when it is done
- `event: result` — the whole result, as `POST /documents` returns it; the stream ends
- `event: error` — `{"type", "message"}`: the upload failed after it began; the stream ends

Errors found before the stream begins are plain HTTP errors. Closing the stream
does not stop the upload: the files still go in."""


# ----- the router -------------------------------------------------------------------


def documents_router(
    route_class: type[APIRoute], service: Callable[[], DocumentService]
) -> APIRouter:
    """The /documents routes; ``service`` gives the runtime's ``DocumentService`` when called.

    (Called per request, not at build time: a runtime built only to read the
    spec has none.)
    """
    router = APIRouter(prefix="/documents", route_class=route_class)

    @router.post("", summary="Upload documents", response_model=UploadResult,
                 openapi_extra=_UPLOAD_BODY, responses=_errors(404, 413, 422, 429, 503))
    async def upload(request: Request, owner: Owner, chat_id: ChatId = None) -> Any:
        """Index the files into your library, or attach them to `chat_id`; a result per file."""
        documents = service()
        received = await receive(request, documents, owner, chat_id)
        if isinstance(received, Response):
            return received
        outcomes = await in_own_thread(documents.upload, received, owner, chat_id)
        return UploadResult.of(outcomes, chat_id)

    @router.post("/stream", summary="Upload documents; stream the progress",
                 response_class=StreamingResponse, description=STREAM_DESCRIPTION,
                 openapi_extra=_UPLOAD_BODY, responses={
                     **_errors(404, 413, 422, 429, 503, by_ref=True), 200: {
                         "description": "Server-sent events",
                         "content": {"text/event-stream": {"schema": _EVENT}}}})
    async def upload_stream(request: Request, owner: Owner, chat_id: ChatId = None) -> Response:
        documents = service()
        received = await receive(request, documents, owner, chat_id)
        if isinstance(received, Response):
            return received
        return StreamingResponse(progress_events(documents, received, owner, chat_id),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @router.get("", summary="List documents", response_model=list[DocumentRecord],
                responses=_errors(404, 422))
    def list_documents(owner: Owner, chat_id: ChatId = None) -> list[DocumentRecord]:
        """Your library, and with `chat_id` that chat's attachments too; oldest first."""
        return [DocumentRecord.of(e) for e in service().listing(owner, chat_id)]

    @router.get("/search", summary="Search documents", response_model=SearchResult,
                responses=_errors(404, 422, 503))
    def search_documents(
        owner: Owner,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS,
                                description="Words or a question.")],
        mode: Annotated[Literal["hybrid", "dense", "bm25"], Query()] = "hybrid",
        k: Annotated[int, Query(ge=1, le=MAX_K, description="Passages wanted.")] = DEFAULT_K,
        chat_id: ChatId = None,
    ) -> SearchResult:
        """The best passages in your library (and `chat_id`'s attachments), best first."""
        hits = service().search(q, owner, chat_id, mode=mode, k=k)
        return SearchResult(query=q, mode=mode, hits=[SearchHit.of(h) for h in hits])

    @router.delete("/{document_id}", summary="Delete a document", status_code=204,
                   response_class=Response, responses=_errors(404, 422))
    def delete_document(document_id: str, owner: Owner, chat_id: ChatId = None) -> Response:
        """Only a document of the listing for the same `chat_id` (your library without it)."""
        service().delete(document_id, owner, chat_id)
        return Response(status_code=204)

    return router
