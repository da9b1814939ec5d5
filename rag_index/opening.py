"""A value made once, in a background thread, that callers wait for with a timeout.

``Library`` opens its index this way: loading the embedding model takes
seconds (torch), so the app starts without it and the first document call, or
``start()`` after the page is up, begins the work. Every caller then gets the
same value, or the same error, raised in words (never a traceback of the
background thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ModelUnavailable, RagError

T = TypeVar("T")


class Opening(Generic[T]):
    def __init__(self, make: Callable[[], T], *, name: str, still_loading: str) -> None:
        self._make = make
        self._name = name
        self._still_loading = still_loading
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: Exception | None = None

    @property
    def value(self) -> T | None:
        """The value once made, else None (never waits)."""
        return self._value

    @property
    def error(self) -> Exception | None:
        """Why making it failed, if it did."""
        return self._error

    def make_now(self) -> None:
        """Make it in this thread (errors raise here); for a model already in memory."""
        self._value = self._make()
        self._done.set()

    def start(self) -> None:
        """Begin making it in a background thread, once; returns at once."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def wait(self, timeout: float) -> T:
        """The value, started if need be and waited for up to ``timeout`` seconds."""
        value = self._value
        if value is not None:
            return value
        self.start()
        if not self._done.wait(timeout):
            raise ModelUnavailable(self._still_loading)
        if self._value is None:
            assert self._error is not None
            raise self._error.with_traceback(None)  # the same error for every caller
        return self._value

    def _run(self) -> None:
        try:
            self._value = self._make()
        except (RagError, ValueError) as error:
            self._error = error
        except Exception as error:
            self._error = ModelUnavailable(f"The document index could not be opened: {error}")
        finally:
            self._done.set()
