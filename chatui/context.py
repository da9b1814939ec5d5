"""How full the model's context is on a conversation's active branch.

``context_use`` reads what the server reported for the newest answer on the
branch: its prompt tokens (plus those it took from its cache, llama.cpp's
``cache_n``, which its ``prompt_n`` leaves out) and the tokens it generated.
An answer without such numbers (stopped early, an older chat) is estimated from
characters the way ``chatui.prompt`` budgets the prompt. The next message
would overflow when what is used, plus the draft, plus the room kept for the
answer, is more than the context.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatui import tree
from chatui.prompt import estimate_tokens
from chatui.tree import Conversation, Message

DEFAULT_ANSWER_TOKENS = 512
WARN_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class ContextUse:
    used: int  # tokens the active branch takes (prompt + answer)
    size: int  # the context, in tokens
    measured: bool  # the server's numbers (else an estimate from characters)
    next_needs: int  # tokens the next exchange needs: used + the draft + room for the answer

    @property
    def fraction(self) -> float:
        return min(self.used / self.size, 1.0) if self.size > 0 else 1.0

    @property
    def overflows(self) -> bool:
        """Whether sending the draft now would not fit (the oldest history would be lost)."""
        return self.next_needs > self.size

    @property
    def level(self) -> str:
        """"ok", "high" (over 80 % used) or "full" (the next message does not fit)."""
        if self.overflows:
            return "full"
        return "high" if self.fraction >= WARN_FRACTION else "ok"

    def words(self) -> str:
        approx = "" if self.measured else "about "
        text = f"Context: {approx}{self.used:,} of {self.size:,} tokens ({self.fraction:.0%})"
        if self.overflows:
            text += (" — the next message will not fit: start a new chat "
                     "or shorten it.")
        elif self.level == "high":
            text += " — nearly full."
        return text


def branch_tokens(path: list[Message]) -> tuple[int, bool]:
    """Tokens the branch takes: the newest answer's reported numbers, else an estimate."""
    for index in range(len(path) - 1, -1, -1):
        message = path[index]
        timings = message.timings
        if message.role == "assistant" and timings is not None and timings.prompt_tokens:
            cached = (timings.cached_tokens or 0) if timings.source == "server" else 0
            used = timings.prompt_tokens + cached + timings.generated_tokens
            later = sum(estimate_tokens(m.content) + 4 for m in path[index + 1:])
            return used + later, not later
    return sum(estimate_tokens(m.content) + 4 for m in path), False


def context_use(
    conversation: Conversation, size: int, draft: str = "",
    answer_tokens: int | None = None,
) -> ContextUse:
    path = tree.active_path(conversation) if conversation.messages else []
    used, measured = branch_tokens(path)
    room = answer_tokens or conversation.settings.max_tokens or DEFAULT_ANSWER_TOKENS
    needs = used + (estimate_tokens(draft) + 4 if draft.strip() else 0) + room
    return ContextUse(used, size, measured, needs)
