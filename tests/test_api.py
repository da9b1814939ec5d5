"""The REST API against a scripted model server: chats, messages, branches, owners, the cache.

Elsewhere: errors in ``test_api_errors.py``, history and import in
``test_api_history.py``, streams and disconnects in ``test_api_stream.py``,
the token in ``test_api_auth.py``, the real model in ``test_api_embedded.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiharness import Api, assert_error, read_history, running_api, send_message
from tests.fakebackend import FakeBackend, Script
from tests.polling import PATIENCE

TIMEOUTS: dict[str, Any] = {  # no test here waits for a timeout: PATIENCE for a busy machine
    "connect_timeout": 1.0, "first_token_timeout": PATIENCE, "stall_timeout": PATIENCE,
}


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, **TIMEOUTS) as running:
        yield running


# ----- chats ---------------------------------------------------------------


def test_create_chat_returns_the_record_with_its_settings(api: Api) -> None:
    chat = api.new_chat(
        title="Trip", model="fake-model", system_prompt="Be brief.", temperature=0.3,
        top_p=0.9, top_k=40, min_p=0.05, max_tokens=64, repeat_penalty=1.1,
        presence_penalty=0.5, frequency_penalty=-0.5, seed=7, rag_enabled=True,
    )
    assert chat["title"] == "Trip"
    assert chat["current_leaf_id"] is None
    assert chat["settings"] == {
        "system_prompt": "Be brief.", "model": "fake-model", "temperature": 0.3, "top_p": 0.9,
        "top_k": 40, "min_p": 0.05, "max_tokens": 64, "repeat_penalty": 1.1,
        "presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 7, "rag_enabled": True,
    }
    listed = api.http.get("/chats").json()
    assert [c["id"] for c in listed] == [chat["id"]]
    assert listed[0]["message_count"] == 0


def test_create_chat_without_a_body_uses_the_defaults(api: Api) -> None:
    response = api.http.post("/chats/new")
    assert response.status_code == 201
    assert response.json()["title"] == "New chat"
    assert response.json()["settings"]["temperature"] is None


def test_delete_chat(api: Api) -> None:
    chat = api.new_chat()
    assert api.http.delete(f"/chats/{chat['id']}").status_code == 204
    assert api.http.get("/chats").json() == []
    assert_error(api.http.get(f"/chats/{chat['id']}/history"), 404, "not_found")
    assert_error(api.http.delete(f"/chats/{chat['id']}"), 404, "not_found")


# ----- messages and branches ---------------------------------------------------


def test_message_returns_the_stored_answer(api: Api, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Paris is the capital.", timings={
        "prompt_n": 12, "prompt_ms": 5.0, "predicted_n": 4, "predicted_ms": 20.0,
        "predicted_per_second": 200.0}))
    chat = api.new_chat(temperature=0.2, system_prompt="Be brief.")
    answer = send_message(api, chat["id"], content="Capital of France?")
    assert answer["role"] == "assistant"
    assert answer["content"] == "Paris is the capital."
    assert answer["status"] == "complete"
    assert answer["model"] == "fake-model"
    assert answer["timings"]["tokens_per_second"] == 200.0
    assert answer["reasoning"] == "" and answer["tool_calls"] == [] and answer["sources"] == []
    stored = read_history(api, chat["id"])
    assert [m["id"] for m in stored["messages"]] == [answer["parent_id"], answer["id"]]
    assert stored["messages"][0]["content"] == "Capital of France?"
    assert stored["title"] == "Capital of France?"
    assert stored["current_leaf_id"] == answer["id"]
    request = fake_backend.requests[-1]
    assert request["temperature"] == 0.2
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}


def test_per_message_overrides_go_to_the_server_but_not_into_the_chat(
    api: Api, fake_backend: FakeBackend
) -> None:
    chat = api.new_chat(temperature=0.2, max_tokens=100)
    send_message(api, chat["id"], content="Hi", temperature=1.5, max_tokens=7, seed=3,
                 model="fake-model")
    request = fake_backend.requests[-1]
    assert (request["temperature"], request["max_tokens"], request["seed"]) == (1.5, 7, 3)
    assert request["model"] == "fake-model"
    assert read_history(api, chat["id"])["settings"]["temperature"] == 0.2
    send_message(api, chat["id"], content="Again")
    assert fake_backend.requests[-1]["temperature"] == 0.2


def test_tool_calls_and_reasoning_are_in_the_record(api: Api, fake_backend: FakeBackend) -> None:
    delta = {"reasoning_content": "Think first."}
    call = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "search", "arguments": "{\"q\": \"x\"}"}}]}
    fake_backend.enqueue(Script.sse([
        {"choices": [{"index": 0, "delta": delta}]},
        {"choices": [{"index": 0, "delta": call}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]))
    chat = api.new_chat()
    answer = send_message(api, chat["id"], content="Find x")
    assert answer["reasoning"] == "Think first."
    assert answer["tool_calls"] == [
        {"id": "call_1", "name": "search", "arguments": "{\"q\": \"x\"}"}]


def test_edit_regenerate_and_branch_switch_map_to_the_tree(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    a1 = send_message(api, chat_id, content="first")
    u1 = a1["parent_id"]
    a2 = send_message(api, chat_id, content="second")
    u2 = a2["parent_id"]

    # Edit "second": a sibling of u2, under u2's parent (a1).
    a2_edited = send_message(api, chat_id, content="second, edited", parent_id=a1["id"])
    active = read_history(api, chat_id)["messages"]
    assert [m["content"] for m in active][:3] == ["first", a1["content"], "second, edited"]
    assert active[-1]["id"] == a2_edited["id"]

    # Regenerate: a new answer beside the old one, under the same user message.
    regenerated = send_message(api, chat_id, regenerate_id=a2_edited["id"])
    assert regenerated["parent_id"] == a2_edited["parent_id"]
    assert regenerated["id"] != a2_edited["id"]

    # Edit the very first message: parent_id null makes a new root.
    new_root_answer = send_message(api, chat_id, content="first, edited", parent_id=None)
    whole = read_history(api, chat_id, tree="true")
    by_id = {m["id"]: m for m in whole["messages"]}
    assert len(by_id) == 9
    roots = [m for m in whole["messages"] if m["parent_id"] is None]
    assert {m["content"] for m in roots} == {"first", "first, edited"}
    assert by_id[new_root_answer["parent_id"]]["parent_id"] is None

    # Switch back to the original second question.
    switched = api.http.post(f"/chats/{chat_id}/branch", json={"message_id": u2})
    assert switched.status_code == 200
    assert switched.json()["current_leaf_id"] == a2["id"]
    assert [m["id"] for m in read_history(api, chat_id)["messages"]] == [u1, a1["id"], u2, a2["id"]]


def test_regenerate_and_content_rules_are_422(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    answer = send_message(api, chat_id, content="hello")
    url = f"/chats/{chat_id}/message"
    cases = [
        {"regenerate_id": answer["parent_id"]},  # a user message
        {"regenerate_id": answer["id"], "content": "x"},
        {"regenerate_id": answer["id"], "temperature": 0.5},
        {"regenerate_id": answer["id"], "parent_id": None},
        {},
        {"content": ""},
        {"content": "   "},
    ]
    for body in cases:
        assert_error(api.http.post(url, json=body), 422, "invalid_request")
    assert len(read_history(api, chat_id, tree="true")["messages"]) == 2


def test_another_owners_chat_is_invisible(api: Api) -> None:
    theirs = api.service.create(owner="alice", title="Private")
    assert api.http.get("/chats").json() == []
    assert_error(api.http.get(f"/chats/{theirs.id}/history"), 404, "not_found")
    assert_error(api.http.delete(f"/chats/{theirs.id}"), 404, "not_found")
    assert api.store.exists(theirs.id)


# ----- the API and the service (and so the UI) see the same chats -----------------------


def test_a_chat_made_over_the_api_is_visible_to_the_service_and_back(api: Api) -> None:
    chat = api.new_chat(title="From the API")
    answer = send_message(api, chat["id"], content="hello")
    summaries = {s.id: s for s in api.service.conversations(owner="local")}
    assert summaries[chat["id"]].message_count == 2
    stored = api.service.conversation(chat["id"], owner="local")
    assert stored.current_leaf_id == answer["id"]

    made = api.service.create(owner="local", title="From the UI")
    list(api.service.start_send(made.id, "hi there", owner="local").events())
    listed = {c["id"]: c for c in api.http.get("/chats").json()}
    assert listed[made.id]["message_count"] == 2
    messages = read_history(api, made.id)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "hi there"


# ----- the cache -------------------------------------------------------------------


def stats(api: Api) -> dict[str, int]:
    response = api.http.get("/stats")
    assert response.status_code == 200
    return response.json()["cache"]


def test_cache_counts_hits_and_misses(fake_backend: FakeBackend, tmp_path: Path) -> None:
    with running_api(fake_backend.base_url, tmp_path, **TIMEOUTS) as api:
        chat_id = api.new_chat()["id"]
        send_message(api, chat_id, content="hello")
    with running_api(fake_backend.base_url, tmp_path, **TIMEOUTS) as api:  # a fresh cache
        assert stats(api) == {"hits": 0, "misses": 0, "size": 0, "capacity": 128}
        read_history(api, chat_id)
        assert stats(api)["misses"] == 1
        read_history(api, chat_id)
        api.http.get(f"/chats/{chat_id}/history", params={"format": "markdown"})
        assert stats(api) == {"hits": 2, "misses": 1, "size": 1, "capacity": 128}


def test_cache_never_serves_a_stale_chat(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    first = send_message(api, chat_id, content="one")
    read_history(api, chat_id)
    before = stats(api)["hits"]
    regenerated = send_message(api, chat_id, regenerate_id=first["id"])
    assert read_history(api, chat_id)["current_leaf_id"] == regenerated["id"]
    api.http.post(f"/chats/{chat_id}/branch", json={"message_id": first["id"]})
    assert read_history(api, chat_id)["current_leaf_id"] == first["id"]
    api.service.rename(chat_id, "Renamed", owner="local")  # a write from the UI side
    assert read_history(api, chat_id)["title"] == "Renamed"
    assert stats(api)["hits"] > before
    api.http.delete(f"/chats/{chat_id}")
    assert_error(api.http.get(f"/chats/{chat_id}/history"), 404, "not_found")
    assert stats(api)["size"] == 0


def test_stop_without_a_generation_says_so(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    response = api.http.post(f"/chats/{chat_id}/stop")
    assert response.status_code == 200
    assert response.json() == {"stopped": False}


def test_openapi_documents_our_error_shape_and_409() -> None:
    from chatui.config import Config
    from tests.apiharness import api_app

    class FakeRuntime:
        config = Config()
        service = None

    spec = api_app(FakeRuntime()).openapi()  # type: ignore[arg-type]
    stream = spec["paths"]["/api/v1/chats/{chat_id}/stream"]["post"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert "conversation_busy" in stream["responses"]["409"]["description"]
    message = spec["paths"]["/api/v1/chats/{chat_id}/message"]["post"]["responses"]
    assert message["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
