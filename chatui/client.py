"""The only module that talks HTTP to the model server (OpenAI-compatible API).

``BackendClient(base_url)`` takes the API root that ``/models`` and
``/chat/completions`` hang off, ending in ``/v1`` for llama.cpp, vLLM and OpenAI
(``http://127.0.0.1:8080/v1``); nothing is added to it. Its requests share one
``httpx.Client`` (the model list) and one ``httpx.AsyncClient`` (the answers,
read on ``chatui.streamloop``'s loop), each with room for 64 connections.

``stream_chat`` returns a ``ChatStream`` of ``chatui.events``: ``async for`` on
the stream loop, or a plain iterator from any other thread, and a context
manager. The request goes out on the first ``next()``. Invariants:

- ``close()`` may be called from any thread, at any time, any number of times.
  A read in progress ends at once (its task is cancelled, the connection
  closed, so the server sees the disconnect) and the reader ends quietly
  (``StopIteration``), whether it waits for the headers or for a token.
- Nothing hangs: a stream ends with ``BackendTimeout`` when no answer has
  started within ``first_token_timeout`` (keep-alive comments and the model
  name do not count), or when, once it has started, no event comes for
  ``stall_timeout``: one timer on the loop per stream, which a token does not
  touch (it moves the deadline; the timer looks again when it fires). Waiting
  for the headers is also bounded by the httpx read timeout, which equals
  ``first_token_timeout`` (and so also caps any single silent read).
- Every failure is a ``chatui.errors.BackendError`` with a readable message;
  no httpx exception escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any, cast

import httpx

from chatui import streamloop
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
from chatui.sse import LineSplitter, StreamParser, describe_error

MAX_CONNECTIONS = 64
MAX_IDLE_CONNECTIONS = 8
"""Connections kept open between requests. httpcore's pool (1.0.9) checks every idle
connection against every other on each request and each response's end (httpcore
#1035): 50 streams at once from a client that kept 50 cost it 0.52-0.59 s of CPU, and
their requests went out 185-230 ms after the first; keeping 8, 0.27-0.32 s and 30-33 ms."""
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
        stream_http: httpx.AsyncClient | None = None,
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
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS,
                              max_keepalive_connections=MAX_IDLE_CONNECTIONS)
        self._http = http or httpx.Client(limits=limits)
        self._owns_stream_http = stream_http is None
        self._stream_http = stream_http or httpx.AsyncClient(limits=limits)

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
            request = self._stream_http.build_request(
                "POST", url, json=body, headers=headers, timeout=self._timeout)
        except httpx.InvalidURL as exc:
            raise translate_error(exc, url) from exc
        return ChatStream(self._stream_http, request, self._first_token_timeout,
                          self._stall_timeout)

    def close(self) -> None:
        """Close the HTTP clients this object created."""
        if self._owns_http:
            self._http.close()
        if self._owns_stream_http and not self._stream_http.is_closed:
            streamloop.run(self._stream_http.aclose())

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Closed(Exception):
    """Internal: the stream was closed on purpose; the iterator ends quietly."""


_END = object()  # ``__next__``'s word from the loop that the stream has ended


class ChatStream:
    """One streaming answer, read on the stream loop (``chatui.streamloop``).

    ``async for`` on that loop (the runner does), or ``for`` from any other
    thread (each ``next`` waits for the loop); ``close()`` from any thread
    stops it. Its state is only touched on the loop, so it needs no lock.
    """

    def __init__(
        self, http: httpx.AsyncClient, request: httpx.Request, first_token_timeout: float,
        stall_timeout: float,
    ) -> None:
        self._http = http
        self._request = request
        self._url = str(request.url)
        self._first_token_timeout = first_token_timeout
        self._stall_timeout = stall_timeout
        self._loop = streamloop.stream_loop()
        self._response: httpx.Response | None = None
        self._interruption: BaseException | None = None  # _Closed or BackendTimeout
        self._finished = False
        self._answering = False
        self._watching = True  # False once the answer is complete: no more timeouts
        self._deadline = 0.0  # loop time at which the stream times out
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[Any] | None = None  # the task inside a read right now
        self._cancelled = False  # the reader was cancelled by ``_interrupt``
        self._finishing: set[asyncio.Task[None]] = set()
        self._events = self._generate()

    # ----- from a thread ---------------------------------------------------------

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        event = streamloop.run(self._next_or_end())
        if event is _END:
            raise StopIteration
        return cast(StreamEvent, event)

    async def _next_or_end(self) -> object:
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return _END

    def close(self) -> None:
        """Stop the answer; from any thread, at any time, any number of times."""
        streamloop.call_soon(self._interrupt, _Closed())

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ----- on the loop -----------------------------------------------------------

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._finished:
            raise StopAsyncIteration
        if self._interruption is not None:
            await self._finish()
            raise self._ending()
        task = self._reader = asyncio.current_task()
        try:
            return await self._events.__anext__()
        except asyncio.CancelledError:
            await self._finish()
            if not self._cancelled:
                raise  # not ours: the loop is shutting down
            self._cancelled = False
            if task is not None:
                task.uncancel()
            raise self._ending() from None
        except BaseException:
            await self._finish()
            raise
        finally:
            self._reader = None

    def _ending(self) -> BaseException:
        """What the reader sees of an interruption: a quiet end, or the timeout."""
        reason = self._interruption
        return StopAsyncIteration() if reason is None or isinstance(reason, _Closed) else reason

    async def _generate(self) -> AsyncGenerator[StreamEvent, None]:
        self._deadline = self._loop.time() + self._first_token_timeout
        self._arm()
        try:
            response = await self._send()
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._failure(exc) from exc
        self._response = response
        if response.status_code >= 300:
            raise BackendHTTPError(response.status_code, await _read_error_message(response))
        parser, lines = StreamParser(), LineSplitter()
        pieces = response.aiter_text()
        try:
            async for piece in pieces:
                for line in lines.feed(piece):
                    for event in parser.feed(line):
                        self._note(event)
                        if isinstance(event, Done):
                            await self._drain(pieces)
                        yield event
                    if parser.done:
                        return
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._failure(exc) from exc
        for line in lines.end():
            for event in parser.feed(line):
                yield event
        for event in parser.end():
            yield event

    def _note(self, event: StreamEvent) -> None:
        """Move the deadline on: an event came."""
        if self._answering:
            self._deadline = self._loop.time() + self._stall_timeout
        elif isinstance(event, _ANSWER_EVENTS):
            self._answering = True
            self._deadline = self._loop.time() + self._stall_timeout
            self._arm()  # the stall limit may be shorter than the first
        elif isinstance(event, PromptProgress):  # reading a long prompt: alive, not stuck
            self._deadline = self._loop.time() + self._first_token_timeout

    async def _send(self) -> httpx.Response:
        """Send the request; once more, on a new connection, if the connection broke
        before any of the answer came (``_BROKEN_BEFORE_ANSWER``).

        A kept-alive connection can die under a request: the server closed it as
        the request went out (seen as "[Errno 9] Bad file descriptor" with 50
        streams). Nothing of the answer came, so the server answers nothing twice.
        """
        try:
            return await self._http.send(self._request, stream=True)
        except _BROKEN_BEFORE_ANSWER:
            if self._interruption is not None:
                raise
        return await self._http.send(self._request, stream=True)

    async def _drain(self, pieces: AsyncIterator[str]) -> None:
        """Read what follows ``[DONE]`` (normally just the end of the body).

        A fully read response returns its connection to the pool for the next
        answer; a server that keeps the body open gets ``DRAIN_SECONDS``.
        """
        self._watching = False  # the answer is complete: no more timeouts
        if self._timer is not None:
            self._timer.cancel()
        lines = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                async for piece in pieces:
                    lines += piece.count("\n")
                    if lines >= DRAIN_LINES:
                        break
        except (TimeoutError, httpx.HTTPError, httpx.StreamError):
            pass  # the answer is complete; only the connection is lost
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            self._cancelled = False  # closed while draining: the answer is still whole
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()

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

    def _arm(self) -> None:
        """Time the stream out at its deadline (a token moves the deadline, not the timer)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._finished or not self._watching:
            return
        if self._loop.time() < self._deadline:
            self._arm()  # events came meanwhile
        else:
            self._interrupt(self._timeout_error())

    def _interrupt(self, reason: BaseException) -> None:
        """Record why the stream ends and wake its reader (it sees the reason)."""
        if self._finished or (isinstance(reason, BackendTimeout) and not self._watching):
            return
        if self._interruption is None:
            self._interruption = reason
        if self._reader is None:
            if not isinstance(reason, _Closed):
                return  # a timeout between reads: the next read raises it
            task = self._loop.create_task(self._finish())  # closed: let the connection go now
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
        elif not self._cancelled:
            self._cancelled = True
            self._reader.cancel()

    async def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        if self._reader is None:
            with contextlib.suppress(RuntimeError):  # (RuntimeError: it is running)
                await self._events.aclose()
        if self._response is not None:
            with contextlib.suppress(httpx.HTTPError, httpx.StreamError, OSError):
                await self._response.aclose()


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


async def _read_error_message(response: httpx.Response) -> str:
    """The server's own words from an error response, read up to a limit."""
    body = b""
    try:
        async for piece in response.aiter_bytes():
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
