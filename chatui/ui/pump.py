"""Run one generation in its own thread and hand the screen the steps worth showing.

Why a thread: Gradio asks a streaming handler for its next screen only after it
has sent the previous one. Run inline, the service's request would wait for the
first screen (the question, the Stop button) to be sent, and a token arriving
just after a frame would wait for the next token to be shown. In a thread the
request starts at once, and the screen follows a clock:

- the first step that shows any answer is shown at once (time to first token);
  if none comes within ``quiet_after``, the caller is told, to show the
  question and a waiting answer (sooner would cost a frame, which delays the
  first token by the time Gradio takes to send it);
- after that, at most one frame per ``interval``, always the newest step, and a
  step that is waiting is shown when its time comes even if nothing follows;
- a step that adds nothing visible (usage, finish reason) is never a frame.

``cancel`` (the page went away) stops the service's generation, which keeps
the partial answer as "stopped". Errors of the generation are raised by
``steps`` once the generation has ended.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

from chatui.service import Progress

_END = object()


class Pump:
    def __init__(self, start: Callable[[], Iterator[Progress]], stop: Callable[[], object]) -> None:
        self._stop = stop
        self._queue: queue.Queue[object] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), name="chatui-answer",
                                        daemon=True)
        self._thread.start()

    def _run(self, start: Callable[[], Iterator[Progress]]) -> None:
        progresses: Iterator[Progress] = iter(())
        try:
            progresses = start()
            for progress in progresses:
                self._queue.put(progress)
                if self._cancelled.is_set():
                    break
        except Exception as error:
            self._queue.put(error)
        finally:
            close = getattr(progresses, "close", None)
            if close is not None:
                close()  # after a break: the service keeps the partial answer as stopped
            self._queue.put(_END)

    def steps(self, interval: float, quiet_after: float) -> Iterator[Progress | None]:
        """The steps to show, paced as the module says; ends when the generation does.

        ``None`` comes once, if ``quiet_after`` seconds pass with nothing to show
        yet: time to show that the answer is on its way.
        """
        shown_size, shown_at = 0, 0.0
        waiting: Progress | None = None
        failure: Exception | None = None
        quiet_at: float | None = time.monotonic() + quiet_after
        while True:
            if waiting is not None:
                timeout: float | None = max(0.0, shown_at + interval - time.monotonic())
            elif quiet_at is not None:
                timeout = max(0.0, quiet_at - time.monotonic())
            else:
                timeout = None
            items = self._take(timeout)
            if not items and waiting is None:
                quiet_at = None
                yield None
                continue
            ended = False
            for item in items:  # everything queued since the last frame: keep the newest step
                if item is _END:
                    ended = True
                elif isinstance(item, Exception):
                    failure = item
                elif isinstance(item, Progress) and not item.done and _size(item) != shown_size:
                    waiting = item
            if ended:
                break
            if waiting is not None:
                if shown_size and time.monotonic() - shown_at < interval:
                    continue
                shown_size, shown_at, quiet_at = _size(waiting), time.monotonic(), None
                yield waiting
                waiting = None
        if failure is not None:
            raise failure

    def _take(self, timeout: float | None) -> list[object]:
        """The next item (waiting up to ``timeout``) and every item queued behind it.

        Taking them all at once is what keeps a slow page current: when sending a
        frame takes longer than ``interval``, the steps that arrived meanwhile are
        collapsed into the newest, instead of being shown one per frame.
        """
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def cancel(self) -> None:
        """Stop the generation if it still runs (it is the conversation's only one)."""
        if self._thread.is_alive():
            self._cancelled.set()
            self._stop()


def _size(progress: Progress) -> int:
    answer = progress.message
    return len(answer.content) + len(answer.reasoning) + sum(
        len(call.name) + len(call.arguments) for call in answer.tool_calls)
