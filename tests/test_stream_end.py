"""An answer whose stream stops early is kept as partial, never stored as complete.

A model server that crashes, or a proxy that gives up, can end the response body
cleanly in the middle of an answer: no ``data: [DONE]`` and no finish reason. The
scripted server on 127.0.0.1 plays exactly that; the service and the REST API must
keep what arrived marked as an error ("ended the answer early"), like llama.cpp's own
web UI marks it partial.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.errors import StreamProtocolError
from chatui.service import ChatService
from chatui.filestore import FileStore
from tests.apiharness import Api, assert_error, parse_sse, read_history, running_api
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(60)
OWNER = "local"

EARLY = "ended the answer early"


def cut_off(*pieces: str) -> Script:
    """Content deltas, then the body ends: no finish reason, no [DONE]."""
    return Script.sse([
        {"model": "fake-model", "choices": [{"index": 0, "delta": {"content": piece}}]}
        for piece in pieces
    ], done=False)


@pytest.fixture
def service(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[ChatService]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=30, stall_timeout=30)
    store = FileStore(tmp_path / "data")
    yield ChatService(store, client, default_model="fake-model")
    client.close()
    store.close()


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path) as running:
        yield running


# ----- the service -------------------------------------------------------------------


def test_a_cut_off_answer_is_stored_as_an_error_with_what_arrived(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(cut_off("Step one: preheat ", "the oven to 2"))
    chat = service.create(OWNER)
    shown: list[str] = []
    with pytest.raises(StreamProtocolError, match=EARLY):
        for step in service.start_send(chat.id, "How do I bake bread?", owner=OWNER).events():
            shown.append(step.content_delta)
    assert "".join(shown) == "Step one: preheat the oven to 2"
    answer = tree.active_path(service.conversation(chat.id, OWNER))[-1]
    assert (answer.role, answer.status) == ("assistant", "error")
    assert answer.content == "Step one: preheat the oven to 2"
    assert answer.error is not None and EARLY in answer.error


def test_a_cut_off_continuation_keeps_the_old_text_and_is_marked(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.text_answer("Once upon a time"), cut_off(", there was a"))
    chat = service.create(OWNER)
    first = list(service.start_send(chat.id, "Tell me a story", owner=OWNER).events())[-1].message
    with pytest.raises(StreamProtocolError, match=EARLY):
        list(service.start_continue(chat.id, first.id, owner=OWNER).events())
    answer = service.conversation(chat.id, OWNER).message(first.id)
    assert (answer.content, answer.status) == ("Once upon a time, there was a", "error")


def test_a_stream_cut_off_before_any_text_leaves_no_empty_answer(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.sse([
        {"model": "fake-model", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    ], done=False))
    chat = service.create(OWNER)
    with pytest.raises(StreamProtocolError, match=EARLY):
        list(service.start_send(chat.id, "Hello?", owner=OWNER).events())
    assert [m.role for m in tree.active_path(service.conversation(chat.id, OWNER))] == ["user"]


# ----- the REST API --------------------------------------------------------------------


def test_rest_message_says_502_and_the_history_shows_the_partial_answer(
    api: Api, fake_backend: FakeBackend
) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(cut_off("Half of ", "the answer"))
    message = assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "q"}),
                           502, "stream_protocol_error")
    assert EARLY in message
    answer: dict[str, Any] = read_history(api, chat_id)["messages"][-1]
    assert (answer["role"], answer["content"], answer["status"]) == (
        "assistant", "Half of the answer", "error")
    assert EARLY in answer["error"]


def test_rest_stream_ends_with_an_error_event_not_a_complete_message(
    api: Api, fake_backend: FakeBackend
) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(cut_off("Half of ", "the answer"))
    response = api.http.post(f"/chats/{chat_id}/stream", json={"content": "q"})
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["delta", "delta", "error"]
    assert events[-1][1]["type"] == "stream_protocol_error"
    assert EARLY in events[-1][1]["message"]
    answer = read_history(api, chat_id)["messages"][-1]
    assert (answer["content"], answer["status"]) == ("Half of the answer", "error")
