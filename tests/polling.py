"""Waiting on conditions instead of on the clock, for tests on a loaded machine.

``wait_until(predicate)`` polls until ``predicate()`` returns something true and
returns that value; after ``timeout`` seconds it raises ``AssertionError`` with
the message and the last value seen. The timeout only turns a hang into a
failure: it is generous (``PATIENCE``), never a claim about speed.

``run_to_end(action)`` calls ``action()`` in a thread and returns what it returns
(or raises what it raises); still running after ``PATIENCE``, it is a hang and an
``AssertionError``, rather than a test stuck until pytest-timeout.

``Hold`` keeps a ``FakeBackend`` answer mid-stream until the test opens it, so a
test can look at "both answers are running now" without racing the clock.

The rules these serve: no test asserts how long something took (speed figures
belong in ``bench/``); a fake server's silence that must not end within a test
is ``FOREVER``; and whatever else could end a wait (a client's timeouts) is set
to at least ``PATIENCE``, so only the behaviour under test can make the test pass
in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 60.0  # seconds: how long a wait may take on a busy machine before it is a failure
FOREVER = 600.0  # seconds: a fake server's silence that outlasts any test


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = PATIENCE,
    interval: float = 0.02,
    message: str = "the condition was not met",
) -> T:
    """``predicate()``'s first true value; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout:g} s (last value: {value!r})")
        time.sleep(interval)


def run_to_end(action: Callable[[], T], message: str = "it never ended") -> T:
    """``action()``'s result (or exception), run in a thread; ``AssertionError`` on a hang."""
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, action()))
        except BaseException as error:  # raised again in the caller
            outcome.append((False, error))

    threading.Thread(target=run, name="run-to-end", daemon=True).start()
    returned, value = wait_until(lambda: outcome[0] if outcome else None, message=message)
    if not returned:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


class Hold:
    """A gate for scripted answers: ``hold(chunks)`` plays up to ``after`` pieces, then waits.

    ``Script(chunks=hold(Script.text_answer(...).chunks))`` sends the first
    ``after`` pieces at once and the rest only after ``release()`` (which a test
    calls in ``finally``, so a failing test never leaves the fake server waiting
    long; it gives up on its own after ``FOREVER``).
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self._open = threading.Event()

    def __call__(self, chunks: Iterable[tuple[float, str]]) -> list[tuple[float, str]]:
        return _HeldChunks(chunks, self.after, self._open)

    def release(self) -> None:
        self._open.set()


class _HeldChunks(list[tuple[float, str]]):
    """A chunk list whose iteration (the fake server playing it) pauses at the gate."""

    def __init__(self, chunks: Iterable[tuple[float, str]], after: int,
                 gate: threading.Event) -> None:
        super().__init__(chunks)
        self._after = after
        self._gate = gate

    def __iter__(self) -> Iterator[tuple[float, str]]:
        for number, chunk in enumerate(super().__iter__()):
            if number == self._after:
                self._gate.wait(FOREVER)
            yield chunk
