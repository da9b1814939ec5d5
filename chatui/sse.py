"""Parse an OpenAI-compatible ``/v1/chat/completions`` event stream. Pure: no I/O.

``parse_stream`` takes the decoded text lines of the response body and yields
typed ``chatui.events``. It follows the SSE rules (fields ``data``, ``event``,
``id``, ``retry``; ``:`` comments; a blank line ends an event; several ``data``
lines join with newlines) and the shapes llama.cpp, vLLM and OpenAI send.

Reasoning arrives either in ``delta.reasoning_content`` / ``delta.reasoning`` or
inside the content between ``<think>`` and ``</think>``. The content rules, the
same wherever the server cut its chunks (tags may be split across chunks):

- a ``<think>`` opener counts only at the start of the content (after
  whitespace); what follows it up to ``</think>`` (or the end) is reasoning;
- without an opener, the first ``</think>`` means everything before it was
  reasoning: ``ContentWasReasoning`` is emitted and content starts again;
- whitespace right after ``</think>`` is dropped; later tags are plain text.

Errors raise: an error object in the stream -> ``BackendStreamError`` with the
server's words; anything that is not JSON or not a stream -> ``StreamProtocolError``.

How a stream ends: ``data: [DONE]`` ends it with ``Done``. A body that simply
stops ends with ``Done`` too if a finish reason came (some servers leave out
``[DONE]``); without either the answer was cut off (the server crashed or a
proxy gave up), so what arrived is emitted and then ``StreamProtocolError``
(``ENDED_EARLY``) is raised: the service keeps it marked as an error, never
as a complete answer (llama.cpp's own web UI marks such an answer partial).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from chatui.errors import BackendStreamError, StreamProtocolError
from chatui.events import (
    ContentDelta,
    ContentWasReasoning,
    Done,
    FinishReason,
    ModelName,
    PromptProgress,
    ReasoningDelta,
    ServerBuild,
    ServerTimings,
    StreamEvent,
    ToolCallDelta,
    Usage,
)

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
_LINE_END = re.compile(r"\r\n|\r|\n")
ENDED_EARLY = ("The model server ended the answer early: its stream stopped before saying "
               "the answer was finished, so it may be cut off.")


def parse_stream(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Yield the events of a chat completion stream, ending with ``Done``."""
    parser = StreamParser()
    for line in lines:
        yield from parser.feed(line)
        if parser.done:
            return
    yield from parser.end()


class StreamParser:
    """``parse_stream`` a line at a time, for a reader that gets its lines by itself.

    ``feed`` and ``end`` yield the events a line (or the end of the body) makes,
    then raise what it means, as ``parse_stream`` does; after ``done`` (the
    ``Done`` event), nothing more is read.
    """

    __slots__ = ("_chunks", "_data", "_event_name")

    def __init__(self) -> None:
        self._chunks = _ChunkReader()
        self._data: list[str] = []
        self._event_name = ""

    @property
    def done(self) -> bool:
        return self._chunks.done

    def feed(self, line: str) -> Iterator[StreamEvent]:
        line = line.rstrip("\r\n")
        if not line:
            data, self._data = self._data, []
            event_name, self._event_name = self._event_name, ""
            if data:
                yield from self._chunks.read(data, event_name)
            return
        if line.startswith(":"):
            return  # a comment, e.g. ": keep-alive"
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event_name = value
        elif field == "error":
            raise BackendStreamError(_server_said(_loads_or_text(value)))
        elif line.lstrip().startswith(("{", "[", "<")):
            raise StreamProtocolError(
                f"The model server did not send an event stream; it sent {_snippet(line)}."
            )
        # "id", "retry" and unknown fields carry nothing we use.

    def end(self) -> Iterator[StreamEvent]:
        """The body has ended: what an event left unfinished, then how the stream ended."""
        data, self._data = self._data, []
        if data:
            yield from self._chunks.read(data, self._event_name)
        if not self._chunks.done:
            yield from self._chunks.end_of_body()


def lines_of(pieces: Iterable[str]) -> Iterator[str]:
    """The lines of an event stream whose text arrives in pieces (``parse_stream``'s input).

    A line ends at CRLF, LF or CR, as the SSE rules say, and nowhere else: a U+2028
    inside a JSON string (llama-server sends it as it is) stays text, where
    ``str.splitlines`` and httpx's ``iter_lines`` cut the line there.
    """
    lines = LineSplitter()
    for piece in pieces:
        yield from lines.feed(piece)
    yield from lines.end()


class LineSplitter:
    """``lines_of`` a piece at a time: ``feed`` gives the lines a piece completes."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, piece: str) -> list[str]:
        text = self._rest + piece
        held = "\r" if text.endswith("\r") else ""  # perhaps half of a CRLF
        lines = _LINE_END.split(text[:-1] if held else text)
        self._rest = lines.pop() + held
        return lines

    def end(self) -> list[str]:
        lines = _LINE_END.split(self._rest)
        self._rest = ""
        return lines[:-1] + ([lines[-1]] if lines[-1] else [])


def describe_error(payload: Any) -> str | None:
    """The human message inside an error body, in the shapes servers use.

    ``{"error": {"message": ...}}``, ``{"error": "..."}``, ``{"message": ...}``
    and FastAPI's ``{"detail": ...}``; ``None`` when there is none.
    """
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg")
        return str(message) if message else json.dumps(error)
    if isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
        if value:
            return json.dumps(value)
    return None


class _ChunkReader:
    """Turns each SSE event's JSON into stream events; remembers across chunks."""

    __slots__ = ("_model_sent", "_saw_data", "_saw_finish", "_think", "done")

    def __init__(self) -> None:
        self.done = False
        self._saw_data = False
        self._saw_finish = False
        self._model_sent = False
        self._think = _ThinkSplitter()

    def read(self, data: list[str], event_name: str) -> list[StreamEvent]:
        self._saw_data = True
        text = "\n".join(data)
        if text.strip() == "[DONE]":
            return self.finish()
        if event_name == "error":
            raise BackendStreamError(_server_said(_loads_or_text(text)))
        try:
            chunk = json.loads(text)
        except json.JSONDecodeError:
            if len(data) > 1:  # some servers forget the blank line between events
                return [event for line in data if not self.done
                        for event in self.read([line], event_name)]
            raise StreamProtocolError(
                f"The model server sent something that is not valid JSON: {_snippet(text)}."
            ) from None
        return self._chunk_events(chunk)

    def end_of_body(self) -> Iterator[StreamEvent]:
        """The body ended without ``[DONE]``: fine after a finish reason, else cut off."""
        if self._saw_data and not self._saw_finish:
            yield from self._think.flush()  # what arrived is kept, as a partial answer
            raise StreamProtocolError(ENDED_EARLY)
        yield from self.finish()

    def finish(self) -> list[StreamEvent]:
        if not self._saw_data:
            raise StreamProtocolError("The model server ended the stream without sending anything.")
        self.done = True
        return [*self._think.flush(), Done()]

    def _chunk_events(self, chunk: Any) -> list[StreamEvent]:
        if not isinstance(chunk, dict):
            raise StreamProtocolError("The model server sent a chunk that is not a JSON object: "
                                      f"{_snippet(json.dumps(chunk))}.")
        if chunk.get("error"):
            raise BackendStreamError(_server_said(chunk))
        events: list[StreamEvent] = []
        model = chunk.get("model")
        if model and not self._model_sent:
            self._model_sent = True
            events.append(ModelName(str(model)))
            fingerprint = chunk.get("system_fingerprint")
            if isinstance(fingerprint, str) and fingerprint:
                events.append(ServerBuild(fingerprint[:200]))
        progress = chunk.get("prompt_progress")
        if isinstance(progress, dict):
            events.extend(_prompt_progress(progress))
        choices = chunk.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if content is None and "text" in choice:  # /v1/completions sends choices[0].text
            content = choice.get("text")
        if isinstance(content, str) and content:
            events.extend(self._think.feed(content))
        for call in delta.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            events.append(ToolCallDelta(
                index=call.get("index"), id=call.get("id") or None,
                name=function.get("name") or None, arguments=function.get("arguments") or "",
            ))
        if choice.get("finish_reason"):
            self._saw_finish = True
            events.extend(self._think.flush())
            events.append(FinishReason(str(choice["finish_reason"])))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            events.append(Usage(usage.get("prompt_tokens"), usage.get("completion_tokens")))
        timings = chunk.get("timings")
        if isinstance(timings, dict):
            events.append(ServerTimings(
                timings.get("prompt_n"), timings.get("prompt_ms"), timings.get("predicted_n"),
                timings.get("predicted_ms"), timings.get("predicted_per_second"),
                timings.get("cache_n"),
            ))
        return events


class _ThinkSplitter:
    """Splits content into content and reasoning by ``<think>`` tags (rules above).

    Text that may be the start of a tag is held back in ``_pending`` until the
    next piece shows whether it is one. Modes: "start" (only whitespace so far),
    "reasoning" (inside <think>), "unopened" (content; a </think> would mean the
    opener was missing), "after" (just closed; dropping whitespace), "content".
    """

    __slots__ = ("_mode", "_pending")

    def __init__(self) -> None:
        self._mode = "start"
        self._pending = ""

    def feed(self, text: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        text, self._pending = self._pending + text, ""
        while text:
            text = self._step(text, events)
        return events

    def flush(self) -> list[StreamEvent]:
        """Emit held-back text as it stands (the answer is over)."""
        text, self._pending = self._pending, ""
        if self._mode == "start":
            self._mode = "unopened"
        if not text:
            return []
        return [ReasoningDelta(text) if self._mode == "reasoning" else ContentDelta(text)]

    def _step(self, text: str, events: list[StreamEvent]) -> str:
        """Consume the start of ``text`` in the current mode; return the rest."""
        mode = self._mode
        if mode == "content":
            events.append(ContentDelta(text))
            return ""
        if mode == "after":
            rest = text.lstrip()
            if rest:
                self._mode = "content"
            return rest
        if mode == "start":
            rest = text.lstrip()
            if rest.startswith(OPEN_TAG):
                self._mode = "reasoning"
                return rest[len(OPEN_TAG):]
            if not rest or OPEN_TAG.startswith(rest):
                self._pending = text
                return ""
            self._mode = "unopened"
            return text
        before, tag, after = text.partition(CLOSE_TAG)
        if tag:
            if mode == "unopened":
                events.append(ContentWasReasoning())
            if before:
                events.append(ReasoningDelta(before))
            self._mode = "after"
            return after
        held = _partial_tag_length(text, CLOSE_TAG)
        emit, self._pending = text[: len(text) - held], text[len(text) - held:]
        if emit:
            events.append(ReasoningDelta(emit) if mode == "reasoning" else ContentDelta(emit))
        return ""


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    if tag[0] not in text:  # nearly every token: no tag can be starting (cost per token)
        return 0
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0


def _prompt_progress(progress: dict[str, Any]) -> list[StreamEvent]:
    """llama-server's ``prompt_progress`` object, if its numbers are numbers."""
    values: list[int] = []
    for name in ("processed", "cache", "total"):
        value = progress.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return []
        values.append(value)
    time_ms = progress.get("time_ms")
    ms = (float(time_ms) if isinstance(time_ms, int | float)
               and not isinstance(time_ms, bool) and time_ms >= 0 else None)
    return [PromptProgress(values[0], values[1], values[2], ms)]


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _server_said(payload: Any) -> str:
    if isinstance(payload, str):
        message = payload.strip()
    else:
        message = describe_error(payload) or json.dumps(payload)
    return f"The model server reported an error: {_truncate(message or 'no details given')}"


def _truncate(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _snippet(text: str, limit: int = 120) -> str:
    return repr(_truncate(text, limit))
