"""Receiving uploads over HTTP: multipart parts into the upload folder, indexing off the loop.

``receive`` reads a multipart body with a cap on its size, checks the request
whole (``DocumentService.admit_upload``) and writes each part into the upload
folder, received for the caller (``DocumentService.receive``), so it becomes a
document through ``DocumentUploads`` like any upload. Indexing runs in a thread
of its own (``in_own_thread``, ``progress_events``), never in the thread pool
that every sync route shares.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from chatui.api.documents.bodies import FileResult, UploadProgress, UploadResult
from chatui.api.errors import error_body, status_and_type
from chatui.documents import MAX_FILES, DocumentService, FileProgress
from chatui.errors import ChatError, InvalidRequest
from chatui.uploads import UPLOAD_HARD_CAP, UploadedFile

log = logging.getLogger("chatui")
_T = TypeVar("_T")

BODY_CAP = 8
"""A request body over this many times ``--max-upload-mb`` (plus 1 MiB) is refused (413)."""


class _BodyTooLarge(Exception):
    pass


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def _capped(receive: Receive, limit: int | None) -> Receive:
    """``receive`` that raises ``_BodyTooLarge`` once more than ``limit`` bytes came."""
    seen = 0

    async def capped() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if limit is not None and seen > limit:
            raise _BodyTooLarge
        return message

    return capped


def _too_large(message: str) -> JSONResponse:
    return JSONResponse(error_body("payload_too_large", message), status_code=413)


async def receive(
    request: Request, documents: DocumentService, owner: str, chat_id: str | None
) -> list[UploadedFile] | Response:
    """The request's files, written to the upload folder and received for ``owner``."""
    per_file = documents.max_file_bytes * UPLOAD_HARD_CAP or None
    body = documents.max_file_bytes * BODY_CAP + 1024 * 1024 if per_file else None
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidRequest("Send the files as multipart/form-data, in the field `files`.")
    capped = Request(request.scope, _capped(request.receive, body))
    try:
        form = await capped.form(max_files=MAX_FILES + 1, max_fields=MAX_FILES + 1)
    except _BodyTooLarge:
        return _too_large("The request is too large; send fewer or smaller files.")
    except HTTPException as error:  # python-multipart could not read it
        raise InvalidRequest(f"The multipart body cannot be read: {error.detail}") from None
    try:
        if set(form.keys()) - {"files"}:
            raise InvalidRequest("Send the files in the field `files`, and nothing else.")
        parts = form.getlist("files")
        if not all(isinstance(p, UploadFile) and p.filename for p in parts):
            raise InvalidRequest("Each part of `files` must be a file, with a filename.")
        files = [p for p in parts if isinstance(p, UploadFile)]
        await run_in_threadpool(documents.admit_upload, owner, chat_id, len(files))
        for part in files:
            if per_file is not None and (part.size or 0) > per_file:
                return _too_large(f"{part.filename} is over the size this server takes.")
        return await run_in_threadpool(_write_all, documents, owner, chat_id, files)
    finally:
        await form.close()


def _write_all(
    documents: DocumentService, owner: str, chat_id: str | None, parts: list[UploadFile]
) -> list[UploadedFile]:
    written: list[UploadedFile] = []
    try:
        if chat_id is not None:
            documents.attach(owner, chat_id)  # "Use documents" on, before indexing
        for part in parts:
            part.file.seek(0)
            written.append((documents.receive(owner, part.file), part.filename or "unnamed"))
    except BaseException:
        for path, _name in written:
            documents.discard(path, owner)
        raise
    return written


# ----- indexing, off the event loop and off the shared thread pool -------------------


async def in_own_thread(work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)`` in a thread of its own: minutes of embedding must not hold one of
    the pool threads every sync route and the UI's events share. Leaving early (the
    client went away) does not stop it: the files still go in, and are deleted."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def succeeded(result: _T) -> None:
        if not done.done():  # else the request was cancelled meanwhile
            done.set_result(result)

    def failed(error: BaseException) -> None:
        if not done.done():
            done.set_exception(error)

    def run() -> None:
        try:
            result = work(*args)
        except BaseException as error:
            loop.call_soon_threadsafe(failed, error)
        else:
            loop.call_soon_threadsafe(succeeded, result)

    threading.Thread(target=run, name="chatui-documents-upload", daemon=True).start()
    return await done


# ----- the progress stream ----------------------------------------------------------


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def progress_events(
    documents: DocumentService, files: list[UploadedFile], owner: str, chat_id: str | None
) -> AsyncIterator[str]:
    """Index ``files`` in a thread of its own; its reports as events, then the result."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(event: str, data: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (event, data))
        except RuntimeError:  # the loop is gone (server stopping): nobody is listening
            pass

    def report(step: FileProgress) -> None:
        if step.outcome is not None:
            put("file", FileResult.of(step.outcome).model_dump(mode="json"))
            return
        put("progress", UploadProgress(name=step.name, file=step.number + 1, files=step.total,
                                       stage=step.stage,
                                       fraction=round(step.fraction, 4)).model_dump())

    def work() -> None:
        try:
            outcomes = documents.upload(files, owner, chat_id, report)
            put("result", UploadResult.of(outcomes, chat_id).model_dump(mode="json"))
        except ChatError as error:
            put("error", {"type": status_and_type(error)[1], "message": str(error)})
        except Exception as error:
            log.exception("A document upload failed")
            put("error", {"type": "internal_error", "message": f"The upload failed: {error}"})
        finally:
            put("end", None)

    worker = threading.Thread(target=work, name="chatui-documents-upload", daemon=True)
    started = False
    try:
        worker.start()
        started = True
        while True:
            event, data = await queue.get()
            if event == "end":
                return
            yield _sse(event, data)
    finally:
        if not started:
            for path, _name in files:
                documents.discard(path, owner)
