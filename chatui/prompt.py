"""Turn the active branch (and retrieved sources) into the request's messages.

The prompt is: the system prompt, then, when sources were retrieved, a block of
numbered sources with the instruction to cite them as [n], then the messages of
the branch. The branch is trimmed first (its oldest messages left out, never the
last) and then the sources (lowest-ranked first, then shortened), so the whole
prompt fits the model's context with room left for the answer; ``Prompt`` says
what was left out, for the answer to tell.
Token counts are estimated from characters, conservatively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatui.tree import Message, Source

CHARS_PER_TOKEN = 3  # conservative: real English text is closer to 4
MIN_SOURCE_CHARS = 200

CITE_INSTRUCTION = (
    "Answer using the numbered sources below when they are relevant, and cite "
    "them in your answer as [1], [2], ... matching their numbers. If the sources "
    "do not contain the answer, say so."
)


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def _source_block(sources: Sequence[Source]) -> str:
    lines = [CITE_INSTRUCTION, ""]
    for source in sources:
        where = source.document + (f", page {source.page}" if source.page else "")
        lines.append(f"[{source.number}] ({where})\n{source.snippet}\n")
    return "\n".join(lines).rstrip()


def fit_sources(sources: Sequence[Source], budget_tokens: int) -> list[Source]:
    """Keep the best-ranked sources that fit in ``budget_tokens``, shortening the last."""
    kept: list[Source] = []
    used = estimate_tokens(CITE_INSTRUCTION)
    for source in sources:
        cost = estimate_tokens(source.snippet) + 12
        room = budget_tokens - used
        if cost <= room:
            kept.append(source)
            used += cost
            continue
        chars = (room - 12) * CHARS_PER_TOKEN
        if chars >= MIN_SOURCE_CHARS:
            kept.append(replace(source, snippet=source.snippet[:chars].rstrip() + " …"))
        break
    return kept


def history_messages(path: Sequence[Message]) -> list[dict[str, Any]]:
    """The branch as chat messages; failed answers with no text are skipped."""
    result: list[dict[str, Any]] = []
    for message in path:
        if message.role == "assistant" and not message.content and not message.tool_calls:
            continue
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        result.append(entry)
    return result


@dataclass(frozen=True, slots=True)
class Prompt:
    """The request's messages, the sources that went in, and how many of the oldest
    messages of the branch were left out so that the rest fits the context."""

    messages: list[dict[str, Any]]
    sources: list[Source]
    dropped: int = 0


def fit_history(history: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """The newest messages that fit ``budget`` tokens (the last one always), and how many
    older ones were left out. A conversation starts with a question: so does what is kept."""
    costs = [estimate_tokens(m["content"]) + 4 for m in history]
    start, used = len(history), 0
    while start > 0 and (used + costs[start - 1] <= budget or start == len(history)):
        start -= 1
        used += costs[start]
    while 0 < start < len(history) - 1 and history[start]["role"] != "user":
        start += 1
    return history[start:], start


def build_prompt(
    path: Sequence[Message],
    system_prompt: str,
    sources: Sequence[Source],
    context_tokens: int,
    answer_tokens: int,
) -> Prompt:
    """The request for ``path``: the history trimmed (oldest first) to fit, then sources."""
    history = history_messages(path)
    room = context_tokens - answer_tokens - estimate_tokens(system_prompt) - 64
    history, dropped = fit_history(history, room)
    used = sum(estimate_tokens(m["content"]) + 4 for m in history)
    kept = fit_sources(sources, room - used) if sources else []
    block = _source_block(kept) if kept else ""
    system_parts = [part for part in (system_prompt.strip(), block) if part]
    messages: list[dict[str, Any]] = []
    if system_parts:
        messages.append({"role": "system", "content": "\n\n".join(system_parts)})
    return Prompt(messages + history, kept, dropped)


def build_messages(
    path: Sequence[Message],
    system_prompt: str,
    sources: Sequence[Source],
    context_tokens: int,
    answer_tokens: int,
) -> tuple[list[dict[str, Any]], list[Source]]:
    """Messages for the request, and the sources that actually went into it."""
    prompt = build_prompt(path, system_prompt, sources, context_tokens, answer_tokens)
    return prompt.messages, prompt.sources
