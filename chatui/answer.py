"""An answer being generated: the handle ``ChatService.start_*`` returns.

Like httpx's ``client.stream(...)``, starting is eager: by the time an ``Answer``
exists, the request was checked, admitted against the limits and its
conversation claimed, and every refusal has already been raised. What is left
can only fail while answering (the model server, the document search), and
those errors reach the reader after the steps that came before them.

One runner thread per answer (``chatui-answer``, a worker kept from answer to
answer: ``chatui.workers``) starts the upstream stream
and writes the store; the stream's tokens are read, and their steps published,
on the stream loop (``chatui.streamloop``: one thread for every answer's
stream) while the runner thread waits for the end. Nothing else touches the
stream or the store. Readers only take the steps published:

- ``events()``: every step, in a plain ``for`` loop (the terminal, tests);
- ``take(timeout)`` / ``atake(timeout)``: everything that arrived since the
  last take, at once, from a thread or the event loop. A reader slower than
  the tokens gets them in one batch (the UI keeps the newest; the REST stream
  writes them all in one write); ``aevents()`` is the async ``for`` form;
- ``result`` / ``aresult()``: the final, stored step once it has ended.

Steps go to one reader (the one that started the answer): each is handed out
once. ``stop()`` works from any thread at any time: it closes the upstream
stream, so the runner wakes within one token, stores the partial answer as
"stopped" (nothing if no token came) and ends. A reader that leaves
``events()`` or ``aevents()`` early stops the answer too (a client that hung
up). The web page does not: a generation belongs to the server, so the page
``detach()``es instead and the answer goes on, stored as it ends.

More readers can ``follow()`` the answer at any time (a page that opens the
chat again, another tab): a ``Follower`` is given the newest step at once (the
answer so far) and then the newest step each time it takes, until the end;
it ``close()``s when its page goes away. ``readers`` counts who reads now.

The runner gives the conversation and the admission back (``on_end``) before
readers see the end, so the next answer can start as soon as this one is shown
as finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from chatui import tree
from chatui.events import PromptProgress
from chatui.tree import Conversation, Message
from chatui.wakeups import Wakeup, resolve, wake
from chatui.workers import WORKERS


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of an answer: the answer so far and what just arrived.

    ``conversation`` is the stored state the answer is being written into
    (for a continued answer it still holds the old text); ``message`` is the
    answer as it stands now. ``done`` marks the final, stored answer.
    """

    conversation: Conversation
    message: Message
    content_delta: str = ""
    reasoning_delta: str = ""
    done: bool = False
    prompt: PromptProgress | None = None  # the server reading the prompt, before the text

    def path(self) -> list[Message]:
        """The active branch as it should be shown right now, answer included."""
        return [*tree.path_to(self.conversation, self.message.parent_id), self.message]


LEAVE_WAIT_SECONDS = 10.0


class Closable(Protocol):
    def close(self) -> None: ...


class Answer:
    """One answer being generated in ``conversation_id``; see the module docstring."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: list[Progress] = []
        self._waking: list[Wakeup] = []  # async readers waiting for a step
        self._final: Progress | None = None
        self._error: Exception | None = None
        self._stopped = False
        self._stream: Closable | None = None
        self._started = False
        self._ended = False
        self._finished = threading.Event()
        self._attached = True  # the starter reads ``_pending``; once detached, nothing is kept
        self._latest: Progress | None = None  # the newest step, for followers
        self._followers: list[Follower] = []

    # ----- the runner's side ---------------------------------------------------

    def run(self, job: Iterator[Progress], on_end: Callable[[], None]) -> None:
        """Start the runner (a worker thread, ``chatui.workers``): it publishes ``job``'s
        steps, then calls ``on_end``."""
        self._started = True
        WORKERS.run(lambda: self._run(job, on_end), "chatui-answer")

    def _run(self, job: Iterator[Progress], on_end: Callable[[], None]) -> None:
        try:
            for step in job:
                self.publish(step)
        except Exception as error:
            self._error = error
        finally:
            try:
                on_end()
            finally:
                self.end()

    def end(self) -> None:
        """Mark the answer ended: readers see the end, ``wait`` returns. Idempotent.

        The runner calls it last; the service, for a claim that never ran.
        """
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._finished.set()  # inside the lock: a reader told "ended" may ask
            waking, self._waking = self._waking, []
            self._arrived.notify_all()
        wake(waking)

    def publish(self, step: Progress) -> None:
        """Hand a step to the readers (the runner, from its thread or the stream loop)."""
        with self._lock:
            if self._attached:
                self._pending.append(step)
            if step.done:
                self._final = step
            self._latest = step
            waking, self._waking = self._waking, []
            if self._followers:
                for follower in self._followers:
                    follower._fresh = True
                self._arrived.notify_all()
            else:
                self._arrived.notify()
        if waking:
            wake(waking)

    def attach(self, stream: Closable) -> bool:
        """The runner's upstream stream, for ``stop`` to close; False if already stopped."""
        with self._lock:
            self._stream = stream
            stopped = self._stopped
        if stopped:
            stream.close()
        return not stopped

    @property
    def started(self) -> bool:
        """Whether its runner was started (a claim for a quick change never is)."""
        return self._started

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ----- anyone ------------------------------------------------------------------

    def stop(self) -> bool:
        """End the answer, keeping what came; True if it was still running."""
        with self._lock:
            if self._ended or not self._started:
                return False  # over, or a claim that never ran (a quick change, a refusal)
            self._stopped = True
            stream = self._stream
        if stream is not None:
            stream.close()  # wakes the runner's blocked read at once
        return True

    @property
    def ended(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the answer has ended (stored, failed or stopped); False on timeout."""
        return self._finished.wait(timeout)

    @property
    def result(self) -> Progress | None:
        """The final, stored step (None if stopped before any token); waits for the end.

        Raises the answer's error. From async code, wait with ``atake`` (or
        ``aresult``) first: once the answer has ended this returns at once.
        """
        self._finished.wait()
        if self._error is not None:
            raise self._error
        return self._final

    async def aresult(self) -> Progress | None:
        """``result`` for the event loop (takes, and drops, the steps still to come)."""
        while not (await self.atake(None))[1]:
            pass
        return self.result

    # ----- more readers --------------------------------------------------------------

    def follow(self) -> Follower:
        """A new reader: the answer so far at its first take, then the newest steps."""
        follower = Follower(self)
        with self._lock:
            follower._fresh = self._latest is not None
            self._followers.append(follower)
        return follower

    def detach(self) -> None:
        """The starting reader leaves without stopping the answer (a page that went away)."""
        with self._lock:
            self._attached = False
            self._pending = []

    @property
    def readers(self) -> int:
        """How many readers are attached now: the starter (until it detaches) and followers."""
        with self._lock:
            return int(self._attached) + len(self._followers)

    # ----- the reader ---------------------------------------------------------------

    def take(self, timeout: float | None = None) -> tuple[list[Progress], bool]:
        """Every step since the last take (waiting up to ``timeout`` s for one), and whether
        the answer has ended (then nothing more will come)."""
        with self._arrived:
            if not self._pending and not self._ended:
                self._arrived.wait(timeout)
            steps, self._pending = self._pending, []
            return steps, self._ended

    async def atake(self, timeout: float | None = None) -> tuple[list[Progress], bool]:
        """``take`` for the event loop: waits without a thread.

        Once per token per reader, so it waits on a bare future and a timer
        (no ``asyncio.Event``, no ``wait_for`` task): about 40 % less of the
        event loop's time per step with 50 streams (issue 14).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pending or self._ended:
                steps, self._pending = self._pending, []
                return steps, self._ended
            arrived: asyncio.Future[None] = loop.create_future()
            waiting = (loop, arrived)
            self._waking.append(waiting)
        timer = loop.call_later(timeout, resolve, arrived) if timeout is not None else None
        try:
            await arrived
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock, contextlib.suppress(ValueError):
                self._waking.remove(waiting)
        with self._lock:
            steps, self._pending = self._pending, []
            return steps, self._ended

    def events(self) -> Iterator[Progress]:
        """Every step, then the answer's error if it failed.

        Leaving early stops the answer and waits (up to ``LEAVE_WAIT_SECONDS``)
        for its partial text to be stored, as closing a generator used to.
        """
        complete = False
        try:
            while True:
                steps, ended = self.take()
                yield from steps
                if ended:
                    complete = True
                    break
        finally:
            if not complete and self.stop():
                self.wait(LEAVE_WAIT_SECONDS)
        self.result  # noqa: B018 - raises the answer's error, if it failed

    async def aevents(self) -> AsyncIterator[Progress]:
        """``events`` for the event loop."""
        complete = False
        try:
            while True:
                steps, ended = await self.atake(None)
                for step in steps:
                    yield step
                if ended:
                    complete = True
                    break
        finally:
            if not complete:
                self.stop()
        self.result  # noqa: B018 - raises the answer's error, if it failed


class Follower:
    """A reader of an answer that did not start it; see ``Answer.follow``.

    It never stops the answer: ``close()`` only detaches it (idempotent).
    Steps are coalesced: each take gives the newest step (or none), which holds
    the whole answer so far.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.conversation_id = answer.conversation_id
        self._fresh = False  # a step this follower has not taken yet (under the answer's lock)

    def take(self, timeout: float | None = None) -> tuple[list[Progress], bool]:
        """The newest step since the last take (waiting up to ``timeout`` s), and whether
        the answer has ended."""
        answer = self.answer
        with answer._arrived:
            if not self._fresh and not answer._ended:
                answer._arrived.wait_for(lambda: self._fresh or answer._ended, timeout)
            latest = answer._latest if self._fresh else None
            self._fresh = False
            return ([latest] if latest is not None else []), answer._ended

    @property
    def result(self) -> Progress | None:
        """The answer's final step (see ``Answer.result``)."""
        return self.answer.result

    def close(self) -> None:
        """Stop reading; the answer goes on."""
        with self.answer._lock, contextlib.suppress(ValueError):
            self.answer._followers.remove(self)

