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
- Built from plain numbers: ``runtime.limits_for`` reads them from the configuration.
- An anonymous visitor (owner "anon:...") can become a new one by dropping its
  cookie, so each of its answers also counts against its network address
  (``network.address_key``), with the same limits: a bucket that a fresh cookie
  does not reset. Logins and API tokens are counted per user only (people
  behind one office router are not each other's limit). An anonymous answer
  whose address is unknown counts against one shared "unknown" bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from chatui.errors import LimitExceeded
from chatui.network import address_key
from chatui.users import is_anonymous

WINDOW_SECONDS = 60.0
ADDRESS_PREFIX = "address:"  # no owner starts so: "anon:...", "local", logins without ":"
UNKNOWN_ADDRESS = "unknown"


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

    def __init__(self, limits: Limits, owner: str, keys: tuple[str, ...]) -> None:
        self._limits = limits
        self.owner = owner
        self._keys = keys  # every bucket it counts in: the owner, maybe an address
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limits._release(self._keys)

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
        self._swept_at = clock()

    def admit(self, owner: str, address: str | None = None) -> Admission:
        """Count one more answer for ``owner``, or raise ``LimitExceeded``.

        ``address`` is where the request came from; it counts too when ``owner``
        is an anonymous visitor (see the module's invariants).
        """
        keys: tuple[str, ...] = (owner,)
        if is_anonymous(owner):
            keys += (ADDRESS_PREFIX + (address_key(address) if address else UNKNOWN_ADDRESS),)
        with self._lock:
            now = self._clock()
            self._sweep(now)
            for key in keys:  # every bucket is checked before any is counted
                self._check(key, now)
            for key in keys:
                if self.settings.answers_per_minute:
                    self._started[key] = self._recent(key, now)
                    self._started[key].append(now)
                self._running[key] = self._running.get(key, 0) + 1
        return Admission(self, owner, keys)

    def _check(self, key: str, now: float) -> None:
        """Raise ``LimitExceeded`` if bucket ``key`` is full (a user's, or an address's)."""
        settings = self.settings
        by_address = key.startswith(ADDRESS_PREFIX)
        running = self._running.get(key, 0)
        if settings.concurrent_answers and running >= settings.concurrent_answers:
            who = "Your network address already has" if by_address else "You already have"
            raise LimitExceeded(
                f"{who} {_answers(running)} being generated, the most this server allows "
                "at once. Wait for one to finish, or stop it, and try again."
            )
        started = self._recent(key, now)
        if settings.answers_per_minute and len(started) >= settings.answers_per_minute:
            wait = max(1, math.ceil(started[0] + WINDOW_SECONDS - now))
            did = ("Your network address has started" if by_address else "You have started")
            raise LimitExceeded(
                f"{did} {_answers(len(started))} in the last minute, the most this server "
                f"allows. Try again in {wait} seconds.",
                retry_after=wait,
            )

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

    def _sweep(self, now: float) -> None:
        """Forget windows with nothing left in them, once a minute.

        Every fresh anonymous id and every address gets a window; without this,
        a stream of one-off visitors would grow ``_started`` for ever.
        """
        if now - self._swept_at < WINDOW_SECONDS:
            return
        self._swept_at = now
        stale = [key for key, started in self._started.items()
                 if not started or started[-1] <= now - WINDOW_SECONDS]
        for key in stale:
            del self._started[key]

    def _release(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            for key in keys:
                left = self._running.get(key, 0) - 1
                if left > 0:
                    self._running[key] = left
                else:
                    self._running.pop(key, None)


def _answers(count: int) -> str:
    return f"{count} answer" if count == 1 else f"{count} answers"


def _documents(count: int) -> str:
    return f"{count} document" if count == 1 else f"{count} documents"
