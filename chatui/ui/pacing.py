"""Which steps of an answer the page shows, and when: a reader of ``chatui.answer.Answer``.

Gradio asks a streaming handler for its next screen only after it has sent the
previous one. The answer's runner thread streams regardless, so the screen
follows a clock:

- the first step that shows any answer is shown at once (time to first token);
  if none comes within ``quiet_after``, the caller is told (``None``), to show
  the question and a waiting answer (sooner would cost a frame, which delays
  the first token by the time Gradio takes to send it);
- after that, at most one frame per ``interval``, always the newest step, and a
  step that is waiting is shown when its time comes even if nothing follows;
- a step that adds nothing visible (usage, finish reason) is never a frame;
- when the answer ends, a step still waiting for its time is shown at once;
- a slow page stays current: the steps that arrived while a frame was being
  sent are collapsed into the newest, never shown one per frame;
- with ``heartbeat``, a quiet answer (a model that pauses) gives ``None``
  again every ``heartbeat`` s: the caller yields an empty frame, which is when
  Gradio can close a generator whose page went away (it cannot close one that
  is blocked here), so a closed page lets go of its reader within a heartbeat.

Errors of the answer are raised once it has ended, after its steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from chatui.answer import Progress


class Reader(Protocol):
    """What ``frames`` reads: an ``Answer`` (its starter) or a ``Follower``."""

    def take(self, timeout: float | None = None) -> tuple[list[Progress], bool]: ...

    @property
    def result(self) -> Progress | None: ...


def frames(answer: Reader, interval: float, quiet_after: float,
           heartbeat: float | None = None) -> Iterator[Progress | None]:
    """The steps to show, paced as the module says; ends when the answer does."""
    shown_size, shown_at = 0, 0.0
    waiting: Progress | None = None
    quiet_at: float | None = time.monotonic() + quiet_after
    while True:
        if waiting is not None:
            timeout: float | None = max(0.0, shown_at + interval - time.monotonic())
        elif quiet_at is not None:
            timeout = max(0.0, quiet_at - time.monotonic())
        else:
            timeout = heartbeat
        steps, ended = answer.take(timeout)
        if not steps and not ended and waiting is None:
            quiet_at = None
            yield None
            continue
        for step in reversed(steps):  # everything since the last frame: keep the newest
            if not step.done:
                if _size(step) != shown_size:
                    waiting = step
                break
        if ended:
            if waiting is not None:  # the last words at once, in a frame as light as the others
                yield waiting
            break
        if waiting is not None:
            if shown_size and time.monotonic() - shown_at < interval:
                continue
            shown_size, shown_at, quiet_at = _size(waiting), time.monotonic(), None
            yield waiting
            waiting = None
    answer.result  # noqa: B018 - raises the answer's error, if it failed


def _size(progress: Progress) -> int:
    answer = progress.message
    return len(answer.content) + len(answer.reasoning) + sum(
        len(call.name) + len(call.arguments) for call in answer.tool_calls)
