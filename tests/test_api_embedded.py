"""Every endpoint of the REST API against the real embedded model (SmolLM2-135M)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui.embedded import MODEL_ALIAS, EmbeddedServer
from tests.apiharness import Api, parse_sse, running_api
from tests.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHORT = {"max_tokens": 12, "temperature": 0.0, "seed": 1}


@pytest.fixture
def api(embedded_server: EmbeddedServer, tmp_path: Path) -> Iterator[Api]:
    with running_api(embedded_server.base_url, tmp_path, context=2048) as running:
        yield running


def test_a_whole_conversation_over_the_api(api: Api) -> None:
    http = api.http
    chat = api.new_chat(title="Colours", model=MODEL_ALIAS, system_prompt="Answer briefly.",
                        **SHORT)
    assert chat["settings"]["model"] == MODEL_ALIAS
    chat_id = chat["id"]

    answer = http.post(f"/chats/{chat_id}/message", json={"content": "Name a colour."}).json()
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    assert answer["content"].strip()
    assert answer["model"] == MODEL_ALIAS
    assert answer["timings"]["generated_tokens"] > 0

    response = http.post(f"/chats/{chat_id}/stream", json={"content": "And another?"})
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "message" and "delta" in names
    streamed = "".join(data["content"] for name, data in events if name == "delta")
    final = events[-1][1]
    assert streamed == final["content"] and final["status"] == "complete"

    regenerated = http.post(f"/chats/{chat_id}/message",
                            json={"regenerate_id": final["id"]}).json()
    assert regenerated["parent_id"] == final["parent_id"]
    edited = http.post(f"/chats/{chat_id}/message", json={
        "content": "Name a fruit.", "parent_id": answer["id"], "max_tokens": 8}).json()
    assert edited["content"].strip()

    switched = http.post(f"/chats/{chat_id}/branch", json={"message_id": final["id"]}).json()
    assert switched["current_leaf_id"] == final["id"]
    active = http.get(f"/chats/{chat_id}/history").json()["messages"]
    assert [m["id"] for m in active][-1] == final["id"] and len(active) == 4
    whole = http.get(f"/chats/{chat_id}/history", params={"tree": True}).json()
    assert len(whole["messages"]) == 7

    markdown = http.get(f"/chats/{chat_id}/history", params={"format": "markdown"}).text
    assert markdown.startswith("# Colours") and final["content"].strip() in markdown

    imported = http.post("/chats/import", json=whole)
    assert imported.status_code == 201
    copy = http.get(f"/chats/{imported.json()['id']}/history", params={"tree": True}).json()
    assert copy["messages"] == whole["messages"]

    listed = http.get("/chats").json()
    assert {c["id"] for c in listed} == {chat_id, imported.json()["id"]}
    assert http.post(f"/chats/{chat_id}/stop").json() == {"stopped": False}
    assert http.get("/stats").json()["cache"]["hits"] > 0
    assert http.delete(f"/chats/{chat_id}").status_code == 204
    assert http.get(f"/chats/{chat_id}/history").status_code == 404


def test_an_unknown_model_is_refused_with_the_real_list(api: Api) -> None:
    response = api.http.post("/chats/new", json={"model": "gpt-9"})
    assert response.status_code == 422
    assert MODEL_ALIAS in response.json()["error"]["message"]


def test_closing_a_real_stream_stores_the_partial_answer(api: Api) -> None:
    chat_id = api.new_chat(max_tokens=400, temperature=0.0, seed=1)["id"]
    body = {"content": "Write a long story about a dragon."}
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json=body) as response:
        lines = response.iter_lines()
        for line in lines:
            if line == "event: delta":
                break
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    answer = api.http.get(f"/chats/{chat_id}/history").json()["messages"][-1]
    assert answer["role"] == "assistant"
    assert answer["status"] == "stopped"
    assert 0 < answer["timings"]["generated_tokens"] < 400
