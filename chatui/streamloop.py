"""The event loop every answer's model-server stream is read on: one thread for all of them.

A thread per stream, blocked in ``recv()`` and woken per token, costs more
with each stream: 50 streams on 2 cores spent ~50 µs of CPU per token in
thread wake-ups and GIL hand-offs where one loop reading all 50 spent ~30
(issue 14). So ``ChatStream`` reads on this loop, and the runner publishes
each token from here; the answer's own thread only starts the stream and
stores the end.

The loop starts with the first stream and lives as long as the process (a
daemon thread, ``chatui-streams``). Nothing blocking may run on it: a store
write or a document search stays on the answer's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_NAME = "chatui-streams"

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def stream_loop() -> asyncio.AbstractEventLoop:
    """The loop (started on first use)."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name=THREAD_NAME, daemon=True).start()
            _loop = loop
        return _loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the loop and wait for its result, from any other thread."""
    return asyncio.run_coroutine_threadsafe(coroutine, stream_loop()).result()


def call_soon(callback: Any, *args: object) -> None:
    """Call ``callback(*args)`` on the loop: now if already on it, else as soon as it can."""
    loop = stream_loop()
    if _running_loop() is loop:
        callback(*args)
    else:
        loop.call_soon_threadsafe(callback, *args)


def on_stream_loop() -> bool:
    """Whether the caller runs on the stream loop."""
    return _loop is not None and _running_loop() is _loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

