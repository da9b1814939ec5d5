"""REST API errors: 422 for bad input, 404 for unknown ids, 502/503/504 for the model server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.embedded import free_port
from tests.apiharness import (
    Api,
    assert_error,
    parse_sse,
    read_history,
    running_api,
    send_message,
)
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER

TIMEOUTS: dict[str, Any] = {  # short, for the timeout tests; a busy machine may pause ~1 s
    "connect_timeout": 1.0, "first_token_timeout": 2.0, "stall_timeout": 2.0,
}


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, **TIMEOUTS) as running:
        yield running


# ----- invalid input ---------------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"temperature": 2.5}, {"temperature": -0.1}, {"top_p": 1.5}, {"top_k": -1},
    {"min_p": 2}, {"max_tokens": 0}, {"repeat_penalty": 3}, {"presence_penalty": -3},
    {"frequency_penalty": 2.1}, {"seed": -1}, {"temprature": 0.5}, {"title": 5},
    {"rag_enabled": "maybe"}, {"model": ""},
])
def test_create_chat_rejects_invalid_settings_with_422(api: Api, fields: dict[str, Any]) -> None:
    response = api.http.post("/chats/new", json=fields)
    message = assert_error(response, 422, "invalid_request")
    assert next(iter(fields)) in message
    assert api.http.get("/chats").json() == []


def test_malformed_json_is_422_in_our_error_shape(api: Api) -> None:
    response = api.http.post(
        "/chats/new", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "invalid_request")


def test_create_chat_rejects_a_model_the_server_does_not_list(api: Api) -> None:
    message = assert_error(api.http.post("/chats/new", json={"model": "gpt-9"}), 422,
                           "invalid_request")
    assert "gpt-9" in message and "fake-model" in message


def test_create_chat_accepts_any_model_when_the_server_cannot_list_them(tmp_path: Path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    with running_api(unreachable, tmp_path, **TIMEOUTS) as api:
        assert api.new_chat(model="anything")["settings"]["model"] == "anything"


def test_unknown_chat_or_message_is_404(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    send_message(api, chat_id, content="hello")
    for method, path, body in [
        ("GET", "/chats/nope/history", None),
        ("POST", "/chats/nope/message", {"content": "x"}),
        ("POST", "/chats/nope/stream", {"content": "x"}),
        ("POST", "/chats/nope/branch", {"message_id": "x"}),
        ("POST", "/chats/nope/stop", None),
        ("DELETE", "/chats/nope", None),
        ("GET", "/chats/not.a.chat/history", None),
        ("POST", f"/chats/{chat_id}/message", {"content": "x", "parent_id": "nope"}),
        ("POST", f"/chats/{chat_id}/stream", {"content": "x", "parent_id": "nope"}),
        ("POST", f"/chats/{chat_id}/message", {"regenerate_id": "nope"}),
        ("POST", f"/chats/{chat_id}/branch", {"message_id": "nope"}),
    ]:
        assert_error(api.http.request(method, path, json=body), 404, "not_found")
    assert len(read_history(api, chat_id, tree="true")["messages"]) == 2


# ----- backend failures --------------------------------------------------------------


def test_backend_500_is_502_and_leaves_no_empty_answer(api: Api, fake_backend: FakeBackend) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(Script.error(500, {"error": {"message": "model crashed"}}))
    message = assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
                           502, "backend_http_error")
    assert "model crashed" in message
    fake_backend.enqueue(Script.error(500, {"error": {"message": "model crashed"}}))
    events = parse_sse(api.http.post(f"/chats/{chat_id}/stream", json={"content": "hi"}).text)
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "backend_http_error"
    roles = [m["role"] for m in read_history(api, chat_id, tree="true")["messages"]]
    assert roles == ["user", "user"]  # the questions stay; no empty answer


def test_unreachable_backend_is_503(tmp_path: Path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    with running_api(unreachable, tmp_path, **TIMEOUTS) as api:
        chat_id = api.new_chat()["id"]
        message = assert_error(
            api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
            503, "backend_unavailable",
        )
        assert "Cannot reach" in message
        assert [m["role"] for m in read_history(api, chat_id)["messages"]] == ["user"]


def test_no_first_token_in_time_is_504(api: Api, fake_backend: FakeBackend) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
    assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
                 504, "backend_timeout")
    assert [m["role"] for m in read_history(api, chat_id)["messages"]] == ["user"]


def test_a_stall_mid_answer_is_504_and_keeps_the_partial_answer(
    api: Api, fake_backend: FakeBackend
) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER,
                                      text="one two three four"))
    assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
                 504, "backend_timeout")
    answer = read_history(api, chat_id)["messages"][-1]
    assert answer["role"] == "assistant"
    assert answer["status"] == "error"
    assert answer["content"] == "one two "
    assert "stopped sending" in answer["error"]


def test_an_error_inside_the_stream_is_502(api: Api, fake_backend: FakeBackend) -> None:
    chat_id = api.new_chat()["id"]
    fake_backend.enqueue(Script.sse([
        {"choices": [{"index": 0, "delta": {"content": "Half"}}]},
        {"error": {"message": "out of memory"}},
    ], done=False))
    message = assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
                           502, "backend_stream_error")
    assert "out of memory" in message
    fake_backend.enqueue(Script(chunks=[(0.0, "this is not an event stream\n\n")]))
    assert_error(api.http.post(f"/chats/{chat_id}/message", json={"content": "hi"}),
                 502, "stream_protocol_error")
