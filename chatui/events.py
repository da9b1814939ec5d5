"""Typed events of one streamed chat answer, as parsed from the server's SSE.

These are plain immutable values: ``chatui.sse`` produces them from text lines,
``chatui.client`` hands them out while the answer streams, and
``chatui.accumulate.Accumulator`` folds them into the answer being built.

Invariants the parser keeps:

- text deltas (``ContentDelta``, ``ReasoningDelta``) never carry an empty string;
- ``ModelName`` comes at most once, before any text of the answer it names;
- ``Done`` comes last and at most once; nothing follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """More text of the visible answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """More text of the model's reasoning ("thinking"), shown apart from the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentWasReasoning:
    """A ``</think>`` arrived without a ``<think>`` opener.

    Some chat templates put the opener into the prompt, so the model's output
    starts straight with its reasoning. Everything emitted as content so far was
    reasoning; content starts again after this event.
    """


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call; fragments with the same ``index`` belong together.

    ``index`` is ``None`` when the server leaves it out; then ``id`` (or, failing
    that, the previous fragment) says which call the fragment continues.
    ``arguments`` is a piece of a JSON text, to be concatenated.
    """

    index: int | None
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ModelName:
    """The model that answers, as the server names it."""

    name: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts the server reported (OpenAI ``usage``)."""

    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class ServerTimings:
    """llama.cpp's own measurements (its ``timings`` object)."""

    prompt_tokens: int | None
    prompt_ms: float | None
    predicted_tokens: int | None
    predicted_ms: float | None
    predicted_per_second: float | None
    cache_tokens: int | None = None  # prompt tokens reused from the server's cache (cache_n)


@dataclass(frozen=True, slots=True)
class PromptProgress:
    """llama-server reading the prompt (``return_progress``), before the first token.

    ``cache`` tokens were already in its cache; the work is ``total - cache``.
    """

    processed: int
    cache: int
    total: int
    time_ms: float | None = None

    @property
    def fraction(self) -> float:
        work = self.total - self.cache
        return 1.0 if work <= 0 else min(max((self.processed - self.cache) / work, 0.0), 1.0)

    @property
    def tokens_per_second(self) -> float | None:
        if not self.time_ms:
            return None
        return max(self.processed - self.cache, 0) / (self.time_ms / 1000)


@dataclass(frozen=True, slots=True)
class ServerBuild:
    """Which build of the server answered (``system_fingerprint``)."""

    fingerprint: str


@dataclass(frozen=True, slots=True)
class FinishReason:
    """Why generation ended: "stop", "length", "tool_calls", ..."""

    reason: str


@dataclass(frozen=True, slots=True)
class Done:
    """The server finished the answer."""


StreamEvent: TypeAlias = (
    ContentDelta
    | ReasoningDelta
    | ContentWasReasoning
    | ToolCallDelta
    | ModelName
    | Usage
    | ServerTimings
    | FinishReason
    | Done
    | PromptProgress
    | ServerBuild
)
