"""Fold stream events into the answer being built, and time it.

``Accumulator`` is the one place where deltas become text: content, reasoning,
tool calls (fragments joined by ``index``, else by ``id``, else onto the last
call), the model name, the finish reason, usage and the server's timings.

Timing is measured with an injectable monotonic clock. The clock starts when the
accumulator is made (make it just before sending the request); the first token
is the first content, reasoning or tool-call delta; tokens per second count the
tokens after the first one over the time from the first delta to the last.
``timings()`` prefers the server's own numbers (llama.cpp's ``timings``) when it
sent them; the time to first token is always what we measured when we have it,
since that is what the user waited (the server's ``prompt_ms`` leaves out
queueing and the network).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from chatui.events import (
    ContentDelta,
    ContentWasReasoning,
    Done,
    FinishReason,
    ModelName,
    ReasoningDelta,
    ServerTimings,
    StreamEvent,
    ToolCallDelta,
    Usage,
)
from chatui.tree import Timings, ToolCall

T = TypeVar("T")


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []


class Accumulator:
    """The answer so far. Feed it every event with ``add``; read it any time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._first_token_at: float | None = None
        self._last_token_at: float | None = None
        self._finished_at: float | None = None
        self._text_deltas = 0
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[object, _ToolCallParts] = {}
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.server_timings: ServerTimings | None = None
        self.done = False

    @property
    def content(self) -> str:
        return _joined(self._content)

    @property
    def reasoning(self) -> str:
        return _joined(self._reasoning)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        if not self._calls:  # read once per token: no tuple to build for plain text
            return ()
        return tuple(
            ToolCall(id=parts.id or f"call_{number}", name=parts.name or "",
                     arguments="".join(parts.arguments))
            for number, parts in enumerate(self._calls.values())
        )

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, (ContentDelta, ReasoningDelta, ToolCallDelta)):
            self._saw_token(counts=not isinstance(event, ToolCallDelta))
        if isinstance(event, ContentDelta):
            self._content.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ContentWasReasoning):
            self._reasoning.extend(self._content)
            self._content.clear()
        elif isinstance(event, ToolCallDelta):
            self._add_tool_fragment(event)
        elif isinstance(event, ModelName):
            self.model = event.name
        elif isinstance(event, FinishReason):
            self.finish_reason = event.reason
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, ServerTimings):
            self.server_timings = event
        elif isinstance(event, Done):
            self.done = True
            self._finished_at = self._clock()

    def timings(self) -> Timings:
        end = self._finished_at if self._finished_at is not None else self._clock()
        first, last = self._first_token_at, self._last_token_at
        ttft_ms = None if first is None else (first - self._started) * 1000
        usage = self.usage or Usage(None, None)
        generated = usage.completion_tokens
        if generated is None:
            generated = self._text_deltas
        speed = None
        if first is not None and last is not None and last > first and generated > 1:
            speed = (generated - 1) / (last - first)
        total_ms = (end - self._started) * 1000
        server = self.server_timings
        if server is None:
            return Timings(usage.prompt_tokens, generated, ttft_ms, speed, total_ms, "client")
        return Timings(
            prompt_tokens=_either(server.prompt_tokens, usage.prompt_tokens),
            generated_tokens=_either(server.predicted_tokens, generated),
            ttft_ms=_either(ttft_ms, server.prompt_ms),
            tokens_per_second=_either(server.predicted_per_second, speed),
            total_ms=total_ms,
            source="server",
        )

    def _saw_token(self, counts: bool) -> None:
        now = self._clock()
        if self._first_token_at is None:
            self._first_token_at = now
        self._last_token_at = now
        if counts:
            self._text_deltas += 1

    def _add_tool_fragment(self, delta: ToolCallDelta) -> None:
        key: object
        if delta.index is not None:
            key = ("index", delta.index)
        elif delta.id is not None:
            key = next(
                (k for k, parts in self._calls.items() if parts.id == delta.id), ("id", delta.id)
            )
        elif self._calls:
            key = next(reversed(self._calls))
        else:
            key = ("index", 0)
        parts = self._calls.setdefault(key, _ToolCallParts())
        parts.id = parts.id or delta.id
        parts.name = parts.name or delta.name
        parts.arguments.append(delta.arguments)


def _either(value: T | None, fallback: T) -> T:
    return fallback if value is None else value


def _joined(parts: list[str]) -> str:
    """Join the pieces once and keep the result, so reading stays cheap."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""
