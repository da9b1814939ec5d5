"""Run one of ``ChatService``'s generations off the event loop and hand its steps over.

``Generation`` drives the service's generator on a thread of its own (not the
shared threadpool, so fifty long answers cannot starve the other endpoints).
The generator is only ever touched by that thread, so cancelling never races
it: ``cancel()`` sets a flag the thread checks after each step, and a helper
thread calls ``service.stop``, which closes the upstream stream so a blocked
read wakes at once. Either way the thread then closes the generator, and the
service stores the partial answer marked "stopped".

Steps pass through a locked list: the thread appends, and wakes the event loop
only when the reader is waiting, so a busy stream costs one wake-up per batch
rather than one per token; the reader takes everything that has arrived at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import cast

from chatui.service import ChatService, Progress
from chatui.tree import Message

DISCONNECT_CHECK_SECONDS = 0.5


class End:
    """The last item of a generation: nothing follows."""


END = End()
Item = Progress | Exception | End


class Generation:
    """One answer being generated on its own thread; read it with ``take``."""

    def __init__(
        self,
        service: ChatService,
        conversation_id: str,
        start: Callable[[], Iterator[Progress]],
        on_end: Callable[[], None],
    ) -> None:
        self._service = service
        self._conversation_id = conversation_id
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()  # touched on the event loop only
        self._lock = threading.Lock()
        self._items: list[Item] = []
        self._reader_waiting = False
        self._cancelled = threading.Event()
        self.finished = threading.Event()
        threading.Thread(
            target=self._run, args=(start,), name="chatui-api-generation", daemon=True
        ).start()

    # ----- the generation's thread -------------------------------------------

    def _run(self, start: Callable[[], Iterator[Progress]]) -> None:
        try:
            # The service's generations are generators: closing one is how it is stopped.
            steps = cast(Generator[Progress, None, None], start())
            try:
                for step in steps:
                    self._put(step)
                    if self._cancelled.is_set():
                        break
            finally:
                steps.close()  # closing early is a Stop: the partial answer is kept
        except Exception as error:
            self._put(error)
        finally:
            self._on_end()
            self.finished.set()
            self._put(END)

    def _put(self, item: Item) -> None:
        with self._lock:
            self._items.append(item)
            wake, self._reader_waiting = self._reader_waiting, False
        if wake:
            # RuntimeError: the event loop is gone (server shutting down); nobody reads.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._arrived.set)

    # ----- the reader, on the event loop ---------------------------------------

    async def take(self, timeout: float) -> list[Item]:
        """Everything that arrived since the last call; [] after ``timeout`` s of silence."""
        self._arrived.clear()
        with self._lock:
            if self._items:
                items, self._items = self._items, []
                return items
            self._reader_waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout)
        with self._lock:
            self._reader_waiting = False
            items, self._items = self._items, []
        return items

    async def cancel(self) -> None:
        """Stop the generation (the reader went away); safe to call more than once.

        Returns at once; a helper thread calls ``service.stop`` until it takes:
        the generation may not have claimed the chat yet (its first step is
        still saving the question), and then there is nothing to stop for a moment.
        """
        if self.finished.is_set() or self._cancelled.is_set():
            return
        self._cancelled.set()
        threading.Thread(target=self._stop_upstream, name="chatui-api-stop", daemon=True).start()

    def _stop_upstream(self) -> None:
        while not self.finished.is_set():
            if self._service.stop(self._conversation_id):
                return
            self.finished.wait(0.02)

    async def final(self, is_disconnected: Callable[[], Awaitable[bool]]) -> Message | None:
        """Wait for the stored answer (None if stopped before it began).

        Raises the generation's error. Cancels it if the client hangs up meanwhile
        (checked every ``DISCONNECT_CHECK_SECONDS``).
        """
        answer: Message | None = None
        failure: Exception | None = None
        next_check = time.monotonic() + DISCONNECT_CHECK_SECONDS
        ended = False
        try:
            while not ended:
                items = await self.take(DISCONNECT_CHECK_SECONDS)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + DISCONNECT_CHECK_SECONDS
                    if await is_disconnected():
                        await self.cancel()
                for item in items:
                    if isinstance(item, End):
                        ended = True
                    elif isinstance(item, Exception):
                        failure = item
                    elif item.done:
                        answer = item.message
        finally:
            await self.cancel()  # only does something if we are leaving early
        if failure is not None:
            raise failure
        return answer
