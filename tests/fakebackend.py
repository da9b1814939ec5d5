"""A scripted OpenAI-compatible model server on 127.0.0.1, for tests and benches.

``FakeBackend()`` starts a real HTTP server (stdlib, one thread per connection)
on a free port; ``base_url`` ends in ``/v1``. It serves:

- ``GET /v1/models``: the ids in ``models``;
- ``POST /v1/chat/completions`` (and ``/v1/completions``): the next ``Script``
  given to ``enqueue`` (first in, first out), or, when none is queued, a short
  default answer ("Hello from the fake backend.");
- ``GET /props`` and ``GET /version`` (beside ``/v1``) when ``props`` / ``version``
  are set: a llama-server's or a vLLM's self-description; else 404 as before.

A ``Script`` is a status, headers and a list of ``(delay_seconds, raw_text)``
pieces, each written and flushed on its own (HTTP chunked encoding), so tests
control exactly what arrives when. Everything received is kept in ``received``
(and the chat request bodies in ``requests``). A client that drops the
connection while a script plays is counted in ``disconnects``; it is noticed
while waiting out a delay (the socket turns readable with EOF) or when a write
fails.
"""

from __future__ import annotations

import collections
import json
import re
import select
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "fake-model"
DEFAULT_ANSWER = "Hello from the fake backend."


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections when twenty arrive at once


@dataclass(frozen=True, slots=True)
class Script:
    """What the server sends for one request."""

    chunks: Sequence[tuple[float, str]] = ()
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/event-stream"})
    header_delay: float = 0.0  # wait before even the status line

    @classmethod
    def sse(cls, events: list[dict[str, Any]], delay: float = 0.0, done: bool = True) -> Script:
        """One ``data: {json}`` event per dict, each after ``delay`` s, then ``[DONE]``."""
        chunks = [(delay, f"data: {json.dumps(event)}\n\n") for event in events]
        if done:
            chunks.append((0.0, "data: [DONE]\n\n"))
        return cls(chunks=chunks)

    @classmethod
    def text_answer(
        cls,
        text: str = DEFAULT_ANSWER,
        tokens_per_chunk: int = 1,
        delay: float = 0.0,
        model: str = DEFAULT_MODEL,
        usage: bool = True,
        timings: dict[str, Any] | None = None,
    ) -> Script:
        """An OpenAI-style answer: words are "tokens", ``tokens_per_chunk`` per chunk.

        Ends with finish_reason "stop" (carrying llama.cpp ``timings`` if given),
        a usage chunk with empty ``choices`` (when ``usage``) and ``[DONE]``.
        """
        tokens = re.findall(r"\s*\S+\s*|\s+", text) or [""]
        pieces = ["".join(tokens[i:i + tokens_per_chunk])
                  for i in range(0, len(tokens), tokens_per_chunk)]
        events = [_chunk(model, {"content": piece}) for piece in pieces]
        events[0]["choices"][0]["delta"]["role"] = "assistant"
        final = _chunk(model, {}, finish_reason="stop")
        if timings is not None:
            final["timings"] = timings
        tail = [final]
        if usage:
            tail.append({**_chunk(model, {}), "choices": [], "usage": {
                "prompt_tokens": 12, "completion_tokens": len(tokens),
                "total_tokens": 12 + len(tokens)}})
        body = cls.sse(events, delay=delay, done=False).chunks
        return cls(chunks=[*body, *cls.sse(tail).chunks])

    @classmethod
    def error(cls, status: int, body: dict[str, Any] | str) -> Script:
        """An HTTP error: a JSON body for a dict, plain text for a string."""
        if isinstance(body, str):
            return cls(chunks=[(0.0, body)], status=status,
                       headers={"Content-Type": "text/plain; charset=utf-8"})
        return cls.json_response(body, status)

    @classmethod
    def json_response(cls, body: Any, status: int = 200) -> Script:
        return cls(chunks=[(0.0, json.dumps(body))], status=status,
                   headers={"Content-Type": "application/json"})

    @classmethod
    def stall(cls, after_chunks: int, seconds: float, text: str = DEFAULT_ANSWER) -> Script:
        """A text answer that goes silent for ``seconds`` after ``after_chunks`` pieces.

        ``after_chunks=0`` sends the headers and then nothing for ``seconds``.
        """
        chunks = list(cls.text_answer(text).chunks)
        delay, text_piece = chunks[after_chunks]
        chunks[after_chunks] = (delay + seconds, text_piece)
        return cls(chunks=chunks)

    @classmethod
    def replay(cls, recorded: str, delay: float = 0.0) -> Script:
        """Play a recorded stream text back, one SSE event (up to a blank line) at a time."""
        events = re.findall(r".*?\n\n|.+$", recorded, flags=re.S)
        return cls(chunks=[(delay, event) for event in events])


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    client_port: int = 0  # the same port means the same (reused) connection


class FakeBackend:
    """A running fake server; ``close()`` (or leaving ``with``) stops it."""

    def __init__(self, models: list[str] | None = None, *, props: dict[str, Any] | None = None,
                 version: dict[str, Any] | None = None) -> None:
        self.models = list(models or [DEFAULT_MODEL])
        self.props = props  # GET /props answers this when set (a llama-server)
        self.version = version  # GET /version answers this when set (a vLLM)
        self.received: list[Received] = []
        self.disconnects = 0
        self._scripts: collections.deque[Script] = collections.deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, args=(0.02,),
                         name="fake-backend", daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[Any]:
        """JSON bodies of the chat completion requests, oldest first."""
        return [r.body for r in self.received if r.path.endswith("/chat/completions")]

    @property
    def completion_requests(self) -> list[Any]:
        """JSON bodies of the raw-prompt ``/v1/completions`` requests, oldest first."""
        return [r.body for r in self.received if r.path.rstrip("/") == "/v1/completions"]

    def enqueue(self, *scripts: Script) -> None:
        """Scripts for the next chat requests, played in order."""
        self._scripts.extend(scripts)

    def next_script(self) -> Script:
        try:
            return self._scripts.popleft()
        except IndexError:
            return Script.text_answer()

    def count_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ClientGone(Exception):
    pass


def _handler_for(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # each chunk leaves at once, as from a real server

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up between requests

        def do_GET(self) -> None:
            backend.received.append(
                Received("GET", self.path, dict(self.headers), None, self.client_address[1]))
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "owned_by": "fake"} for m in backend.models]
                self._play(Script.json_response({"object": "list", "data": data}))
            elif self.path.rstrip("/") == "/props" and backend.props is not None:
                self._play(Script.json_response(backend.props))
            elif self.path.rstrip("/") == "/version" and backend.version is not None:
                self._play(Script.json_response(backend.version))
            else:
                self._play(Script.error(404, "Not Found"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", errors="replace")
            backend.received.append(
                Received("POST", self.path, dict(self.headers), body, self.client_address[1]))
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/v1/completions"):
                self._play(Script.error(404, "Not Found"))
            elif not isinstance(body, dict):
                self._play(Script.error(400, {"error": {"message": "Body is not JSON."}}))
            else:
                self._play(backend.next_script())

        def _play(self, script: Script) -> None:
            try:
                self._wait(script.header_delay)
                self.send_response(script.status)
                for name, value in script.headers.items():
                    self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for delay, text in script.chunks:
                    self._wait(delay)
                    data = text.encode()
                    if data:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.write(b"0\r\n\r\n")
            except (_ClientGone, BrokenPipeError, ConnectionResetError):
                backend.count_disconnect()
                self.close_connection = True

        def _wait(self, seconds: float) -> None:
            """Sleep, but notice at once if the client hangs up meanwhile."""
            if seconds <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], seconds)
            if readable:
                try:
                    gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    raise _ClientGone
                time.sleep(seconds)  # unexpected bytes; just finish the delay

    return Handler


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_732_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
