"""A generation as server-sent events, and the response that stops it when the client leaves.

Stream format (``text/event-stream``), one JSON object per ``data:`` line::

    event: sources    [source, ...]            once, before the text, with RAG
    event: reasoning  {"content": "..."}       more of the model's reasoning
    event: delta      {"content": "..."}       more of the answer
    event: replace    {"content", "reasoning"} text so far was reclassified
                                               (a late </think>): show these instead
    event: message    {message record}         the stored answer; the stream ends
    event: error      {"type", "message"}      the generation failed; the stream ends

A comment line (``: keep-alive``) goes out every ``KEEPALIVE_SECONDS`` of silence.
Events that arrived together are written together (one write, same events).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from chatui.api.errors import status_and_type
from chatui.api.generation import End, Generation
from chatui.api.schemas import MessageRecord, SourceRecord
from chatui.service import Progress

KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class _EventWriter:
    """Turns progress steps into events, remembering what the client has already seen."""

    def __init__(self) -> None:
        self.sent_content = 0
        self.sent_reasoning = 0
        self.sent_sources = False

    def events(self, step: Progress) -> list[str]:
        message = step.message
        out = []
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
                out.append(sse("reasoning", {"content": step.reasoning_delta}))
            if step.content_delta:
                out.append(sse("delta", {"content": step.content_delta}))
        self.sent_content, self.sent_reasoning = len(message.content), len(message.reasoning)
        if step.done:
            out.append(sse("message", MessageRecord.of(message).model_dump(mode="json")))
        return out


async def sse_events(generation: Generation) -> AsyncIterator[str]:
    """The generation as server-sent events; cancels it if the stream is abandoned."""
    writer = _EventWriter()
    try:
        while True:
            items = await generation.take(KEEPALIVE_SECONDS)
            if not items:
                yield ": keep-alive\n\n"
                continue
            out: list[str] = []
            for item in items:
                if isinstance(item, End):
                    break
                if isinstance(item, Exception):
                    _, kind = status_and_type(item)
                    message = str(item) or "Something went wrong."
                    out.append(sse("error", {"type": kind, "message": message}))
                else:
                    out.extend(writer.events(item))
            if out:
                yield "".join(out)
            if any(isinstance(item, End) for item in items):
                return
    finally:
        await generation.cancel()


class EventStream(StreamingResponse):
    """A generation as ``text/event-stream``; whatever ends the response stops the generation.

    Starlette ends the response when the client disconnects, without closing the
    body iterator; so the generation is cancelled here, not left to the garbage
    collector. Cancelling a finished generation does nothing.
    """

    media_type = "text/event-stream"

    def __init__(self, generation: Generation) -> None:
        super().__init__(
            sse_events(generation),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.generation = generation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.generation.cancel()
