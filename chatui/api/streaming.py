"""An answer as server-sent events, and the response that stops it when the client leaves.

Stream format (``text/event-stream``), one JSON object per ``data:`` line::

    event: sources    [source, ...]            once, before the text, with RAG
    event: progress   {"processed", "cache", "total", "fraction", "tokens_per_second"}
                                               the server reading the prompt (llama-server)
    event: reasoning  {"content": "..."}       more of the model's reasoning
    event: delta      {"content": "..."}       more of the answer
    event: replace    {"content", "reasoning"} text so far was reclassified
                                               (a late </think>): show these instead
    event: message    {message record}         the stored answer; the stream ends
    event: error      {"type", "message"}      the generation failed; the stream ends

A comment line (``: keep-alive``) goes out every ``KEEPALIVE_SECONDS`` of silence.
Events that arrived together are written together (one write, same events):
the answer's runner publishes steps, and this reader takes all of them at once
on the event loop (``Answer.atake``), with no thread of its own.
"""

from __future__ import annotations

import json
from json import dumps as _dumps
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from chatui.answer import Answer, Progress
from chatui.api.errors import status_and_type
from chatui.api.schemas import MessageRecord, SourceRecord
from chatui.events import PromptProgress

KEEPALIVE_SECONDS = 15.0

STREAM_DESCRIPTION = """Like `/message`, as server-sent events (`text/event-stream`):

- `event: sources` — `[source, ...]`, once before the text when documents were retrieved
- `event: progress` — `{"processed", "cache", "total", "fraction", "tokens_per_second"}`:
  the server reading the prompt, before the first token (llama-server only)
- `event: reasoning` — `{"content": "..."}`, more of the model's reasoning
- `event: delta` — `{"content": "..."}`, more of the answer
- `event: replace` — `{"content", "reasoning"}`: the text so far was reclassified; show these
- `event: message` — the stored answer record; the stream ends
- `event: error` — `{"type", "message"}`: the generation failed after it began; the stream ends

Errors found before the stream begins (unknown chat or parent, busy chat, bad
input) are plain HTTP errors. Closing the connection stops the generation; the
partial answer is stored with status `stopped`."""


def progress_record(progress: PromptProgress) -> dict[str, Any]:
    """The ``progress`` event: llama-server's numbers, with the share of the work done."""
    return {"processed": progress.processed, "cache": progress.cache, "total": progress.total,
            "fraction": round(progress.fraction, 4),
            "tokens_per_second": progress.tokens_per_second}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _text_event(event: str, text: str) -> str:
    """``sse(event, {"content": text})`` without building the dict: one per token."""
    return f'event: {event}\ndata: {{"content": {_dumps(text, ensure_ascii=False)}}}\n\n'


class _EventWriter:
    """Turns progress steps into events, remembering what the client has already seen."""

    def __init__(self) -> None:
        self.sent_content = 0
        self.sent_reasoning = 0
        self.sent_sources = False

    def events(self, step: Progress) -> list[str]:
        message = step.message
        out = []
        if step.prompt is not None:
            out.append(sse("progress", progress_record(step.prompt)))
        if message.sources and not self.sent_sources:
            self.sent_sources = True
            out.append(sse("sources", [
                SourceRecord.model_validate(s, from_attributes=True, strict=False).model_dump()
                for s in message.sources
            ]))
        grew = (len(message.content) == self.sent_content + len(step.content_delta)
                and len(message.reasoning) == self.sent_reasoning + len(step.reasoning_delta))
        if not grew:
            out.append(sse("replace", {"content": message.content, "reasoning": message.reasoning}))
        else:
            if step.reasoning_delta:
                out.append(_text_event("reasoning", step.reasoning_delta))
            if step.content_delta:
                out.append(_text_event("delta", step.content_delta))
        self.sent_content, self.sent_reasoning = len(message.content), len(message.reasoning)
        if step.done:
            out.append(sse("message", MessageRecord.of(message).model_dump(mode="json")))
        return out


async def sse_events(answer: Answer) -> AsyncIterator[str]:
    """The answer as server-sent events; stops it if the stream is abandoned."""
    writer = _EventWriter()
    try:
        while True:
            steps, ended = await answer.atake(KEEPALIVE_SECONDS)
            if not steps and not ended:
                yield ": keep-alive\n\n"
                continue
            out: list[str] = []
            for step in steps:
                out.extend(writer.events(step))
            if ended:
                try:
                    answer.result  # noqa: B018 - it has ended: raises its error at once
                except Exception as error:
                    _, kind = status_and_type(error)
                    message = str(error) or "Something went wrong."
                    out.append(sse("error", {"type": kind, "message": message}))
            if out:
                yield "".join(out)
            if ended:
                return
    finally:
        answer.stop()  # does nothing once it has ended


class EventStream(StreamingResponse):
    """An answer as ``text/event-stream``; whatever ends the response stops the answer.

    Starlette ends the response when the client disconnects, without closing the
    body iterator; so the answer is stopped here, not left to the garbage
    collector. Stopping an answer that has ended does nothing.
    """

    media_type = "text/event-stream"

    def __init__(self, answer: Answer) -> None:
        super().__init__(
            sse_events(answer),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.answer.stop()
