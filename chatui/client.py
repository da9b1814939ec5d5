"""The only module that talks HTTP to the model server (OpenAI-compatible API).

``BackendClient(base_url)`` takes the API root that ``/models`` and
``/chat/completions`` hang off, ending in ``/v1`` for llama.cpp, vLLM and OpenAI
(``http://127.0.0.1:8080/v1``); nothing is added to it. One ``httpx.Client`` is
shared by every request (it is thread-safe) with room for 64 connections.

``stream_chat`` returns a ``ChatStream``: an iterator of ``chatui.events`` and a
context manager. The request goes out on the first ``next()``. Invariants:

- ``close()`` may be called from any thread, at any time, any number of times.
  It shuts the socket down, so a reader blocked on it wakes at once and the
  server sees the disconnect; the iterating thread then ends quietly
  (``StopIteration``). A close during the wait for the response headers takes
  effect when they arrive (httpx offers no socket to shut down before that).
- Nothing hangs: a watchdog ends a stream with ``BackendTimeout`` when no
  answer has started within ``first_token_timeout`` (keep-alive comments and
  the model name do not count), or when, once it has started, no event comes
  for ``stall_timeout``. One watchdog thread serves every stream (``_WATCHDOG``):
  an answer costs the thread that reads it, nothing more. Waiting for the headers is bounded by the
  httpx read timeout, which equals ``first_token_timeout`` (and so also caps any
  single silent read).
- Every failure is a ``chatui.errors.BackendError`` with a readable message;
  no httpx exception escapes.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx

from chatui.errors import (
    BackendError,
    BackendHTTPError,
    BackendTimeout,
    BackendUnavailable,
    StreamProtocolError,
)
from chatui.events import (
    ContentDelta,
    ContentWasReasoning,
    Done,
    FinishReason,
    PromptProgress,
    ReasoningDelta,
    StreamEvent,
    ToolCallDelta,
)
from chatui.sse import describe_error, lines_of, parse_stream

MAX_CONNECTIONS = 64
# A connection that broke before any response byte: the request may be sent again.
_BROKEN_BEFORE_ANSWER = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
DRAIN_SECONDS = 1.0
DRAIN_LINES = 100
ERROR_BODY_LIMIT = 8192
# Events that show the model has started answering (ends the first-token wait).
_ANSWER_EVENTS = (ContentDelta, ReasoningDelta, ContentWasReasoning, ToolCallDelta,
                  FinishReason, Done)


class BackendClient:
    """Talks to one model server. Safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        http: httpx.Client | None = None,
        connect_timeout: float = 10.0,
        first_token_timeout: float = 120.0,
        stall_timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(connect_timeout, read=first_token_timeout)
        self._first_token_timeout = first_token_timeout
        self._stall_timeout = stall_timeout
        self._owns_http = http is None
        self._http = http or httpx.Client(limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
        ))

    def list_models(self) -> list[str]:
        """Ids of the models the server offers (GET /models)."""
        url = f"{self.base_url}/models"
        try:
            response = self._http.get(url, headers=self._headers, timeout=self._timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise translate_error(exc, url) from exc
        if response.status_code >= 300:
            raise BackendHTTPError(response.status_code, _message_of(response.text, response))
        try:
            payload = response.json()
            entries = payload.get("data") or payload.get("models") or []
            return [str(e.get("id") or e.get("name") or e.get("model")) for e in entries]
        except (ValueError, AttributeError):
            raise StreamProtocolError(
                f"The model server at {url} sent a model list that is not the expected JSON: "
                f"{response.text[:120]!r}."
            ) from None

    def stream_chat(
        self, messages: list[dict[str, Any]], model: str | None, params: dict[str, Any],
        prompt: str | None = None,
    ) -> ChatStream:
        """Start streaming an answer; ``params`` (sampling etc.) pass through as given.
        With ``prompt``: a raw-prompt ``/completions`` instead (the embedded model's Continue)."""
        url = f"{self.base_url}/{'chat/completions' if prompt is None else 'completions'}"
        stream_options = {**params.get("stream_options", {}), "include_usage": True}
        what = {"messages": messages} if prompt is None else {"prompt": prompt}
        body: dict[str, Any] = {**params, **what, "stream": True, "stream_options": stream_options}
        if model:
            body["model"] = model
        headers = {**self._headers, "Accept": "text/event-stream"}
        try:
            request = self._http.build_request(
                "POST", url, json=body, headers=headers, timeout=self._timeout)
        except httpx.InvalidURL as exc:
            raise translate_error(exc, url) from exc
        return ChatStream(self._http, request, self._first_token_timeout, self._stall_timeout)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Closed(Exception):
    """Internal: the stream was closed on purpose; the iterator ends quietly."""


class ChatStream:
    """One streaming answer: iterate for events; ``close()`` from any thread stops it."""

    def __init__(
        self,
        http: httpx.Client,
        request: httpx.Request,
        first_token_timeout: float,
        stall_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._request = request
        self._url = str(request.url)
        self._first_token_timeout = first_token_timeout
        self._stall_timeout = stall_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None
        self._interruption: BaseException | None = None  # _Closed or BackendTimeout
        self._reading = False
        self._finished = False
        self._answering = False
        self._deadline = 0.0
        self._watching = True
        self._events = self._generate()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        with self._lock:
            if self._finished:
                raise StopIteration
            interruption = self._interruption
            self._reading = interruption is None
        if interruption is not None:
            self._finish()
            if isinstance(interruption, _Closed):
                raise StopIteration
            raise interruption
        try:
            return next(self._events)
        except _Closed:
            self._finish()
            raise StopIteration from None
        except BaseException:
            self._finish()
            raise
        finally:
            with self._lock:
                self._reading = False

    def close(self) -> None:
        """Stop the answer; safe from another thread while one is blocked reading."""
        self._interrupt(_Closed())
        with self._lock:
            reading = self._reading
        if not reading:
            self._finish()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _generate(self) -> Iterator[StreamEvent]:
        self._deadline = self._clock() + self._first_token_timeout
        _WATCHDOG.watch(self)
        try:
            response = self._send()
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._failure(exc) from exc
        with self._lock:
            self._response = response
            interruption = self._interruption
        if interruption is not None:
            raise interruption
        if response.status_code >= 300:
            raise BackendHTTPError(response.status_code, _read_error_message(response))
        lines = self._lines(response)
        for event in parse_stream(lines):
            if self._answering:
                self._deadline = self._clock() + self._stall_timeout
            elif isinstance(event, _ANSWER_EVENTS):
                self._answering = True
                self._deadline = self._clock() + self._stall_timeout
                _WATCHDOG.recheck()  # the stall limit may be shorter than the first
            elif isinstance(event, PromptProgress):  # reading a long prompt: alive, not stuck
                self._deadline = self._clock() + self._first_token_timeout
            if isinstance(event, Done):
                self._drain(lines)
            yield event

    def _send(self) -> httpx.Response:
        """Send the request; once more, on a new connection, if the connection broke
        before any of the answer came (``_BROKEN_BEFORE_ANSWER``).

        A kept-alive connection can die under a request: the server closed it as
        the request went out, or httpx's pool closed it as expired after handing it
        to this request (a window of a thread's time slice, seconds on a loaded
        machine; seen as "[Errno 9] Bad file descriptor" with 50 streams). Nothing
        of the answer came, so the server answers nothing twice.
        """
        try:
            return self._http.send(self._request, stream=True)
        except _BROKEN_BEFORE_ANSWER:
            if self._interruption is not None:
                raise
        return self._http.send(self._request, stream=True)

    def _drain(self, lines: Iterator[str]) -> None:
        """Read what follows ``[DONE]`` (normally just the end of the body).

        A fully read response returns its connection to the pool for the next
        answer; a server that keeps the body open gets ``DRAIN_SECONDS``.
        """
        self._deadline = min(self._deadline, self._clock() + DRAIN_SECONDS)
        _WATCHDOG.recheck()
        try:
            for _ in itertools.islice(lines, DRAIN_LINES):
                pass
        except (BackendError, _Closed):
            pass  # the answer is complete; only the connection is lost
        with self._lock:
            self._watching = False  # the answer is complete: no more timeouts
            if isinstance(self._interruption, BackendTimeout):
                self._interruption = None
        _WATCHDOG.recheck()

    def _lines(self, response: httpx.Response) -> Iterator[str]:
        try:
            yield from lines_of(response.iter_text())
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._failure(exc) from exc
        if self._interruption is not None:
            raise self._interruption  # the body "ended" because we shut the socket

    def _failure(self, exc: Exception) -> BaseException:
        """What a transport error means: our own close or timeout, or a real failure."""
        if self._interruption is not None:
            return self._interruption
        if isinstance(exc, httpx.ReadTimeout):
            return self._timeout_error()
        return translate_error(exc, self._url)

    def _timeout_error(self) -> BackendTimeout:
        if self._answering:
            return BackendTimeout(
                f"The model server at {self._url} stopped sending for "
                f"{self._stall_timeout:g} s in the middle of the answer."
            )
        return BackendTimeout(
            f"The model server at {self._url} did not start answering within "
            f"{self._first_token_timeout:g} s."
        )

    def _remaining(self) -> float | None:
        """Seconds until this stream times out; None once it needs no watching."""
        if not self._watching or self._finished:
            return None
        return self._deadline - self._clock()

    def _time_out(self) -> None:
        self._interrupt(self._timeout_error())

    def _interrupt(self, reason: BaseException) -> None:
        """Record why the stream ends and wake a blocked reader (it sees the reason)."""
        with self._lock:
            if self._finished or (isinstance(reason, BackendTimeout) and not self._watching):
                return
            if self._interruption is None:
                self._interruption = reason
            response = self._response
        if response is not None:
            _shutdown_socket(response)

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            response = self._response
        _WATCHDOG.recheck()  # drops this stream now, not at its deadline
        if response is not None:
            try:
                response.close()
            except (httpx.HTTPError, httpx.StreamError, OSError):
                pass  # the connection is being torn down anyway


class _Watchdog:
    """One thread that times out every stream (instead of a thread per stream).

    It sleeps until the earliest deadline of the streams it watches, then
    looks at each stream's deadline as it stands (a token moves it later, and
    nobody needs to say so); ``recheck`` wakes it when one moved earlier.
    Streams that finished or no longer need watching are dropped.
    """

    def __init__(self) -> None:
        self._streams: set[ChatStream] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, stream: ChatStream) -> None:
        with self._changed:
            self._streams.add(stream)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="chatui-stream-watchdog",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()

    def recheck(self) -> None:
        with self._changed:
            self._changed.notify()

    def _run(self) -> None:
        while True:
            expired: list[ChatStream] = []
            with self._changed:
                wake_in: float | None = None
                for stream in list(self._streams):
                    remaining = stream._remaining()
                    if remaining is None:
                        self._streams.discard(stream)
                    elif remaining <= 0:
                        self._streams.discard(stream)
                        expired.append(stream)
                    else:
                        wake_in = remaining if wake_in is None else min(wake_in, remaining)
                if not expired:
                    self._changed.wait(wake_in)
            for stream in expired:
                stream._time_out()


_WATCHDOG = _Watchdog()


def _shutdown_socket(response: httpx.Response) -> None:
    """Shut the connection down so a thread blocked in recv() returns at once.

    Closing the socket is not enough: on Linux a recv() blocked in another
    thread keeps waiting, and the server sees no disconnect.
    """
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already shut or closed


def translate_error(exc: Exception, url: str) -> BackendError:
    """A readable ``BackendError`` for an httpx failure while talking to ``url``."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return BackendUnavailable(f"The model server address {url!r} is not usable ({reason}).")
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendUnavailable(
            f"Cannot reach the model server at {url}: it did not accept the connection in time.")
    if isinstance(exc, httpx.ConnectError):
        return BackendUnavailable(
            f"Cannot reach the model server at {url} ({reason}). Is it running?")
    if isinstance(exc, httpx.PoolTimeout):
        return BackendTimeout(
            f"Too many answers are streaming at once; no free connection to {url}.")
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"The model server at {url} did not answer in time.")
    return BackendError(f"The connection to the model server at {url} broke ({reason}).")


def _read_error_message(response: httpx.Response) -> str:
    """The server's own words from an error response, read up to a limit."""
    body = b""
    try:
        for piece in response.iter_bytes():
            body += piece
            if len(body) >= ERROR_BODY_LIMIT:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass  # show what we have
    return _message_of(body.decode("utf-8", errors="replace"), response)


def _message_of(text: str, response: httpx.Response) -> str:
    try:
        message = describe_error(json.loads(text))
    except ValueError:
        message = None
    message = (message or text).strip() or response.reason_phrase or "no details given"
    return message if len(message) <= 300 else message[:299] + "…"
