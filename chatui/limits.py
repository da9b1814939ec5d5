"""Per-user limits: answers at once, answers per minute, documents stored.

One ``Limits`` object is shared by every way in: ``ChatService`` admits each
generation through it, whether the web UI or the REST API asked, and
``uploads.DocumentUploads`` checks it before a file is ingested. A limit that
is hit raises ``LimitExceeded`` with a sentence for the user; nothing else
changes, so everyone else is served as before.

Invariants:

- An ``Admission`` counts against its owner from ``admit`` until ``release``
  (idempotent, also on ``with`` exit). The count and the per-minute window are
  checked and updated under one lock, so two requests racing for the last slot
  cannot both get it.
- Only admitted answers count towards the per-minute window; refused attempts
  do not, so a refused user is not punished further for trying.
- A limit of 0 means no limit. ``UserLimits.none()`` is the single local user's:
  it is you.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from chatui.config import Config
from chatui.errors import LimitExceeded
from chatui.users import is_shared

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class UserLimits:
    concurrent_answers: int = 2
    answers_per_minute: int = 20
    max_documents: int = 100

    @classmethod
    def none(cls) -> UserLimits:
        return cls(concurrent_answers=0, answers_per_minute=0, max_documents=0)


class Admission:
    """One answer being generated for ``owner``; ``release`` gives the slot back."""

    def __init__(self, limits: Limits, owner: str) -> None:
        self._limits = limits
        self.owner = owner
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limits._release(self.owner)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Limits:
    def __init__(
        self, settings: UserLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or UserLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._started: dict[str, deque[float]] = {}

    def admit(self, owner: str) -> Admission:
        """Count one more answer for ``owner``, or raise ``LimitExceeded``."""
        settings = self.settings
        with self._lock:
            running = self._running.get(owner, 0)
            if settings.concurrent_answers and running >= settings.concurrent_answers:
                raise LimitExceeded(
                    f"You already have {_answers(running)} being generated, the most this "
                    "server allows at once. Wait for one to finish, or stop it, and try again."
                )
            now = self._clock()
            started = self._recent(owner, now)
            if settings.answers_per_minute and len(started) >= settings.answers_per_minute:
                wait = max(1, math.ceil(started[0] + WINDOW_SECONDS - now))
                raise LimitExceeded(
                    f"You have started {_answers(len(started))} in the last minute, the most "
                    f"this server allows. Try again in {wait} seconds.",
                    retry_after=wait,
                )
            if settings.answers_per_minute:
                started.append(now)
                self._started[owner] = started
            self._running[owner] = running + 1
        return Admission(self, owner)

    def running(self, owner: str) -> int:
        """Answers being generated for ``owner`` right now."""
        with self._lock:
            return self._running.get(owner, 0)

    def check_documents(self, owner: str, stored: int, adding: int) -> None:
        """Raise ``LimitExceeded`` unless ``owner`` may keep ``adding`` more documents."""
        most = self.settings.max_documents
        if most and stored + adding > most:
            room = max(0, most - stored)
            raise LimitExceeded(
                f"You have {_documents(stored)} stored and this server keeps at most {most} "
                f"per user, so {'no more' if room == 0 else f'only {room} more'} can be added. "
                "Delete some documents first."
            )

    def _recent(self, owner: str, now: float) -> deque[float]:
        started = self._started.pop(owner, deque())
        while started and started[0] <= now - WINDOW_SECONDS:
            started.popleft()
        if started:
            self._started[owner] = started
        return started

    def _release(self, owner: str) -> None:
        with self._lock:
            left = self._running.get(owner, 0) - 1
            if left > 0:
                self._running[owner] = left
            else:
                self._running.pop(owner, None)


def _answers(count: int) -> str:
    return f"{count} answer" if count == 1 else f"{count} answers"


def _documents(count: int) -> str:
    return f"{count} document" if count == 1 else f"{count} documents"


def limits_for(config: Config) -> Limits:
    """The configured limits when the app is shared; none for the single local user."""
    if not is_shared(config):
        return Limits(UserLimits.none())
    return Limits(UserLimits(
        concurrent_answers=config.user_concurrency,
        answers_per_minute=config.user_requests_per_minute,
        max_documents=config.user_max_documents,
    ))
