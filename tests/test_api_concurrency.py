"""Many streams at once: all finish, each chat stores its own answer, and no client's
connection is reset.

Twenty streams on twenty chats, checked against the store; fifty 1,000-token streams
through the whole app as served (``chatui.server.web_server``), twice on the same
client connections; and the keep-alive race behind the resets issue 14 saw: an idle
connection closed by its timer while the client's next request sat unread in it.

How fast they are together is measured by ``bench/bench_api.py`` (``--concurrent``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from chatui.embedded import free_port
from chatui.server import web_server
from tests.apiharness import parse_sse, running_api
from tests.fakebackend import FakeBackend, Script
from tests.polling import PATIENCE, Hold, wait_until

STREAMS = 20


@pytest.mark.timeout(300)
def test_twenty_concurrent_streams_all_complete_and_are_stored(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    answer = " ".join(f"token{number}" for number in range(30))
    held = Hold(after=3)  # every answer stops after three tokens until all twenty have begun
    fake_backend.enqueue(*[Script(chunks=held(Script.text_answer(answer).chunks))] * STREAMS)
    with running_api(fake_backend.base_url, tmp_path) as api:
        chat_ids = [api.new_chat(title=f"Chat {number}")["id"] for number in range(STREAMS)]

        async def stream(client: httpx.AsyncClient, number: int) -> list[tuple[str, object]]:
            response = await client.post(
                f"/chats/{chat_ids[number]}/stream", json={"content": f"Question {number}"}
            )
            assert response.status_code == 200
            return parse_sse(response.text)

        async def all_streams() -> list[list[tuple[str, object]]]:
            limits = httpx.Limits(max_connections=STREAMS)
            async with httpx.AsyncClient(base_url=api.url, timeout=60, limits=limits) as client:
                return await asyncio.gather(*(stream(client, n) for n in range(STREAMS)))

        results: list[list[tuple[str, object]]] = []
        client = threading.Thread(target=lambda: results.extend(asyncio.run(all_streams())))
        client.start()
        try:  # one at a time, the second would never reach the model server
            wait_until(lambda: len(fake_backend.requests) == STREAMS,
                       message="not every stream reached the model server at once")
            assert all(api.service.is_generating(chat_id, "local") for chat_id in chat_ids)
        finally:
            held.release()
        client.join()

        assert len(results) == STREAMS
        assert len(fake_backend.requests) == STREAMS
        for number, events in enumerate(results):
            name, final = events[-1]
            assert name == "message", events[-1]
            assert isinstance(final, dict)
            assert final["status"] == "complete"
            assert final["content"] == answer
            streamed = "".join(data["content"] for kind, data in events  # type: ignore[index]
                               if kind == "delta")
            assert streamed == answer
            stored = api.service.conversation(chat_ids[number], "local")
            messages = sorted(stored.messages.values(), key=lambda m: m.created_at)
            assert [m.role for m in messages] == ["user", "assistant"]
            assert messages[0].content == f"Question {number}"
            assert messages[1].id == final["id"] == stored.current_leaf_id
            assert messages[1].content == answer
        assert not any(api.service.is_generating(chat_id, "local") for chat_id in chat_ids)


MANY = 50
LONG_ANSWER = " ".join(f"t{number}" for number in range(1000))


@pytest.mark.timeout(600)
def test_fifty_long_streams_twice_on_the_same_connections_all_arrive_whole(
    fake_backend: FakeBackend, running_app: Callable[..., AbstractContextManager[str]]
) -> None:
    """50 x 1,000-token streams through the app as served, then 50 more reusing the
    client's kept-alive connections: every one ends with its whole text, none is reset."""
    fake_backend.enqueue(*[Script.text_answer(LONG_ANSWER)] * (2 * MANY))
    with running_app(fake_backend.base_url) as url:

        async def stream(client: httpx.AsyncClient, chat_id: str) -> str:
            async with client.stream("POST", f"/chats/{chat_id}/stream",
                                     json={"content": "Count."}) as response:
                assert response.status_code == 200
                return (await response.aread()).decode()

        async def rounds() -> list[str]:
            limits = httpx.Limits(max_connections=MANY * 2)
            async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=PATIENCE,
                                         limits=limits) as client:
                texts: list[str] = []
                for _ in range(2):
                    chats = [(await client.post("/chats/new", json={})).json()["id"]
                             for _ in range(MANY)]
                    texts += await asyncio.gather(*(stream(client, chat) for chat in chats))
                return texts

        texts = asyncio.run(rounds())
    assert len(texts) == 2 * MANY
    for text in texts:
        events = parse_sse(text)
        assert events[-1][0] == "message", events[-3:]
        assert "".join(data["content"] for kind, data in events if kind == "delta") == LONG_ANSWER
        assert events[-1][1]["content"] == LONG_ANSWER


def test_the_keep_alive_outlasts_the_clients_idle_pools() -> None:
    """httpx drops an idle connection after 5 s; the server must not close it first."""
    server = web_server(FastAPI(), "127.0.0.1", free_port())
    assert server.config.timeout_keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]


@contextmanager
def _blocking_server(keep_alive: float, hold: Callable[[], object]) -> Iterator[int]:
    """``web_server`` with a ``GET /ok`` and a ``GET /hold`` that runs ``hold`` on its loop."""
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/hold")
    async def held() -> dict[str, bool]:
        await hold()  # type: ignore[misc]
        return {"ok": True}

    port = free_port()
    server = web_server(app, "127.0.0.1", port)
    server.config.timeout_keep_alive = keep_alive  # type: ignore[assignment]
    thread = threading.Thread(target=server.run, name="uvicorn-keepalive-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), message="uvicorn did not start")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE)


def _get(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


def _read_response(sock: socket.socket) -> bytes:
    """One whole small response (headers and its Content-Length body), or what came."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def _race(keep_alive: float) -> bytes | None:
    """Idle connection A's timer falls due while the loop is busy; A's next request
    arrives after the loop looked at its sockets and before the timer runs.

    The answer A got to that request (b"" or an error text if it was closed or
    reset); None if the machine was too slow to set the race up in time.
    """
    due, resumed, sent = threading.Event(), threading.Event(), threading.Event()
    holding_at: list[float] = []

    async def hold() -> None:
        holding_at.append(time.monotonic())
        due.wait(PATIENCE)  # blocks the loop: A's idle timer falls due meanwhile
        await asyncio.sleep(0)  # the next loop turn: its select() first, then the due timer,
        resumed.set()  # queued behind this task's next step, which runs now
        sent.wait(PATIENCE)  # ... while A's next request arrives, unread

    with _blocking_server(keep_alive, hold) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as a, \
            socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as b:
        asked_at = time.monotonic()
        _get(a, "/ok")
        assert _read_response(a).startswith(b"HTTP/1.1 200")  # A's idle timer is armed now
        answered_at = time.monotonic()
        try:
            _get(b, "/hold")
            wait_until(lambda: holding_at, message="GET /hold did not start")
            if holding_at[0] >= asked_at + keep_alive:
                return None  # A's timer may have run before the loop was held
            wait_until(lambda: time.monotonic() > answered_at + keep_alive + 0.05,
                       message="the clock stood still")
            due.set()
            wait_until(resumed.is_set, message="the held request did not go on")
            _get(a, "/ok")  # on loopback it is in A's receive queue when sendall returns
        finally:
            due.set()
            sent.set()
        assert _read_response(b).startswith(b"HTTP/1.1 200")
        try:
            return _read_response(a)
        except OSError as error:  # ConnectionResetError: what the clients in issue 14 saw
            return repr(error).encode()


def test_an_idle_connection_is_not_closed_under_a_request_that_arrived() -> None:
    """A keep-alive timer that runs while the next request waits unread must not close
    the connection (that resets it); the request is answered."""
    for keep_alive in (0.5, 2.0, 8.0):  # longer if the machine was too slow to set it up
        answer = _race(keep_alive)
        if answer is not None:
            assert answer.startswith(b"HTTP/1.1 200"), answer
            return
    pytest.fail("the race could not be set up even with an 8 s keep-alive")
