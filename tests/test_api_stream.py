"""POST /chats/{id}/stream: the events, and what happens when the client goes away or collides.

A client that disconnects stops the upstream generation (the fake server sees
the disconnect) and the partial answer is stored as "stopped". Two requests on
one chat: the second is 409.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.api import streaming
from chatui.tree import Message, Source
from tests.apiharness import Api, parse_sse, running_api
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, Hold, wait_until

WORDS = " ".join(f"w{number}" for number in range(40))


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    # Timeouts of FOREVER: a stalled answer ends only through what the test does.
    with running_api(fake_backend.base_url, tmp_path, connect_timeout=1.0,
                     first_token_timeout=FOREVER, stall_timeout=FOREVER) as running:
        yield running


def stored_messages(api: Api, chat_id: str) -> list[Message]:
    return list(api.service.conversation(chat_id, "local").messages.values())


def replay(events: list[tuple[str, Any]]) -> tuple[str, str]:
    """Content and reasoning as a client builds them from the events."""
    content = reasoning = ""
    for name, data in events:
        if name == "delta":
            content += data["content"]
        elif name == "reasoning":
            reasoning += data["content"]
        elif name == "replace":
            content, reasoning = data["content"], data["reasoning"]
    return content, reasoning


def read_until_first_delta(response: httpx.Response) -> Iterator[str]:
    """Read up to the first text; the line iterator, to read on (dropping it closes the stream)."""
    lines = response.iter_lines()
    for line in lines:
        if line == "event: delta":
            return lines
    raise AssertionError("the stream ended before any text")


def test_stream_sends_reasoning_deltas_then_the_stored_message(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.sse([
        {"model": "fake-model", "choices": [{"index": 0, "delta": {"reasoning_content": "Hmm, "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "easy."}}]},
        {"choices": [{"index": 0, "delta": {"content": "Four"}}]},
        {"choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": "stop"}]},
    ]))
    chat_id = api.new_chat()["id"]
    response = api.http.post(f"/chats/{chat_id}/stream", json={"content": "2+2?"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["reasoning", "reasoning", "delta", "delta", "message"]
    final = events[-1][1]
    assert replay(events) == (final["content"], final["reasoning"]) == ("Four.", "Hmm, easy.")
    assert final["status"] == "complete"
    stored = api.service.conversation(chat_id, "local").message(final["id"])
    assert (stored.content, stored.reasoning, stored.status) == ("Four.", "Hmm, easy.", "complete")


def test_a_late_think_tag_replaces_the_text_so_far(api: Api, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.sse([
        {"choices": [{"index": 0, "delta": {"content": "Let me think"}}]},
        {"choices": [{"index": 0, "delta": {"content": "</think>"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Answer."}}]},
    ]))
    chat_id = api.new_chat()["id"]
    events = parse_sse(api.http.post(f"/chats/{chat_id}/stream", json={"content": "q"}).text)
    assert "replace" in [name for name, _ in events]
    final = events[-1][1]
    assert (final["content"], final["reasoning"]) == ("Answer.", "Let me think")
    assert replay(events) == ("Answer.", "Let me think")


def test_a_failure_mid_stream_is_an_error_event_and_keeps_the_partial_answer(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.sse([
        {"choices": [{"index": 0, "delta": {"content": "Half an "}}]},
        {"choices": [{"index": 0, "delta": {"content": "answer"}}]},
        {"error": {"message": "the GPU fell over"}},
    ], done=False))
    chat_id = api.new_chat()["id"]
    response = api.http.post(f"/chats/{chat_id}/stream", json={"content": "q"})
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["delta", "delta", "error"]
    assert events[-1][1]["type"] == "backend_stream_error"
    assert "the GPU fell over" in events[-1][1]["message"]
    answer = stored_messages(api, chat_id)[-1]
    assert (answer.role, answer.content, answer.status) == ("assistant", "Half an answer", "error")


class Library:
    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]:
        return [Source(1, "guide.pdf", 2, "Chatui stores chats as files.", 0.8, 17)]

    def forget(self, owner: str, conversation_id: str) -> int:
        return 0


def test_sources_come_first_when_documents_are_used(api: Api) -> None:
    api.service.retriever = Library()
    chat_id = api.new_chat(rag_enabled=True)["id"]
    events = parse_sse(api.http.post(f"/chats/{chat_id}/stream", json={"content": "How?"}).text)
    assert events[0] == ("sources", [{
        "number": 1, "document": "guide.pdf", "page": 2,
        "snippet": "Chatui stores chats as files.", "score": 0.8, "chunk_id": 17}])
    assert events[-1][1]["sources"] == events[0][1]


def test_keep_alive_comments_while_the_model_is_silent(
    api: Api, fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "KEEPALIVE_SECONDS", 0.05)
    first_token = Hold(after=0)  # the model is silent until the client has had a keep-alive
    fake_backend.enqueue(Script(chunks=first_token(Script.text_answer().chunks)))
    chat_id = api.new_chat()["id"]
    try:
        with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "q"}) as response:
            lines = response.iter_lines()
            assert next(lines) == ": keep-alive"
            first_token.release()
            text = "\n".join([": keep-alive", *lines])
    finally:
        first_token.release()
    assert parse_sse(text)[-1][0] == "message"


def test_disconnect_stops_the_generation_and_keeps_the_partial_answer(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    chat_id = api.new_chat()["id"]
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Count"}) as response:
        read_until_first_delta(response)
    wait_until(lambda: fake_backend.disconnects == 1)
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    answer = stored_messages(api, chat_id)[-1]
    assert answer.role == "assistant"
    assert answer.status == "stopped"
    assert answer.content and WORDS.startswith(answer.content) and answer.content != WORDS
    # The chat is free again.
    assert api.http.post(f"/chats/{chat_id}/message", json={"content": "Next"}).status_code == 200


def test_disconnect_before_the_first_token_leaves_no_answer(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
    chat_id = api.new_chat()["id"]
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Hi"}) as response:
        assert response.status_code == 200
        wait_until(lambda: len(fake_backend.requests) == 1)  # the model is thinking
    wait_until(lambda: fake_backend.disconnects == 1)
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    assert [m.role for m in stored_messages(api, chat_id)] == ["user"]


def test_disconnect_at_once_still_stops_the_generation(api: Api, fake_backend: FakeBackend) -> None:
    """The client may leave before the generation has even claimed the chat."""
    for _ in range(3):
        fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
        chat_id = api.new_chat()["id"]
        with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Hi"}):
            pass
        wait_until(partial(lambda c: len(stored_messages(api, c)) == 1, chat_id))
        wait_until(partial(lambda c: not api.service.is_generating(c, "local"), chat_id))
        wait_until(lambda: fake_backend.disconnects == len(fake_backend.requests))
        assert [m.role for m in stored_messages(api, chat_id)] == ["user"]


def test_disconnect_from_a_plain_message_call_stops_it_too(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    chat_id = api.new_chat()["id"]
    with pytest.raises(httpx.ReadTimeout):  # the client gives up waiting for the whole answer
        api.http.post(f"/chats/{chat_id}/message", json={"content": "Count"}, timeout=0.5)
    wait_until(lambda: fake_backend.disconnects == 1)
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    assert stored_messages(api, chat_id)[-1].status == "stopped"


def test_a_second_request_on_a_busy_chat_is_409(api: Api, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    chat_id = api.new_chat()["id"]
    other_id = api.new_chat()["id"]
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Count"}) as response:
        lines = read_until_first_delta(response)
        for method, path, body in [
            ("POST", f"/chats/{chat_id}/message", {"content": "x"}),
            ("POST", f"/chats/{chat_id}/stream", {"content": "x"}),
            ("POST", f"/chats/{chat_id}/branch", {"message_id": "x"}),
        ]:
            busy = api.http.request(method, path, json=body)
            assert busy.status_code == 409, (path, busy.text)
            assert busy.json()["error"]["type"] == "conversation_busy"
        assert api.http.post(f"/chats/{other_id}/message", json={"content": "x"}).status_code == 200
        stopped = api.http.post(f"/chats/{chat_id}/stop")
        assert stopped.json() == {"stopped": True}
        events = parse_sse("\n".join(["event: delta", *lines]))
    assert events[-1][0] == "message"
    assert events[-1][1]["status"] == "stopped"
    assert stored_messages(api, chat_id)[-1].status == "stopped"


def test_deleting_a_chat_that_is_answering_stops_the_answer_then_deletes(
    api: Api, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    chat_id = api.new_chat()["id"]
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Count"}) as response:
        lines = read_until_first_delta(response)
        deleted = api.http.delete(f"/chats/{chat_id}")
        assert deleted.status_code == 204, deleted.text
        rest = list(lines)  # the stream ends by itself: stopped
    events = parse_sse("\n".join(["event: delta", *rest]))
    assert events[-1][0] == "message" and events[-1][1]["status"] == "stopped"
    assert fake_backend.disconnects == 1  # the upstream request ended before the delete
    assert api.http.get(f"/chats/{chat_id}/history").status_code == 404
    assert chat_id not in [chat["id"] for chat in api.http.get("/chats").json()]
    assert api.service.store.list() == []  # the stopped answer did not bring it back


def test_two_simultaneous_requests_on_one_chat_one_wins(
    api: Api, fake_backend: FakeBackend
) -> None:
    held = Hold(after=1)  # the winner's answer waits until the loser has been told
    fake_backend.enqueue(Script(chunks=held(Script.text_answer("a b c d e").chunks)))
    chat_id = api.new_chat()["id"]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            barrier.wait()
            response = client.post(f"/chats/{chat_id}/message", json={"content": "q"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: statuses, message="neither request was answered")
    finally:
        held.release()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    assert [m.role for m in stored_messages(api, chat_id)] == ["user", "assistant"]
