"""The branch map over REST, on a real server: GET tree, DELETE a message's subtree, POST fork.

Raw HTTP as a client (or an attacker) sends it: another owner's chat, forged ids,
unknown fields, and a prune while the chat is answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiharness import Api, assert_error, read_history, running_api, send_message
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, wait_until


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, connect_timeout=1.0,
                     first_token_timeout=FOREVER, stall_timeout=FOREVER) as running:
        yield running


def branchy(api: Api) -> tuple[str, dict[str, Any]]:
    """q1 -> a1 (regenerated: a1b) -> q2 -> a2, and q2 edited into q2b -> a2b."""
    chat_id = api.new_chat(title="Tree")["id"]
    a1 = send_message(api, chat_id, content="first question")
    a1b = send_message(api, chat_id, regenerate_id=a1["id"])
    api.http.post(f"/chats/{chat_id}/branch", json={"message_id": a1["id"]})
    a2 = send_message(api, chat_id, content="second question")
    q2b = send_message(api, chat_id, content="second, edited", parent_id=a1["id"])
    return chat_id, {"a1": a1, "a1b": a1b, "a2": a2, "a2b": q2b, "q1": a1["parent_id"],
                     "q2": a2["parent_id"], "q2b": q2b["parent_id"]}


def test_tree_lists_every_message_with_siblings_and_the_active_path(api: Api) -> None:
    chat_id, ids = branchy(api)
    response = api.http.get(f"/chats/{chat_id}/tree")
    assert response.status_code == 200, response.text
    body = response.json()
    nodes = {node["id"]: node for node in body["nodes"]}
    assert len(nodes) == 7 and body["branches"] == 3
    assert body["current_leaf_id"] == ids["a2b"]["id"]
    assert [n["id"] for n in body["nodes"]] == [  # depth first, oldest sibling first
        ids["q1"], ids["a1"]["id"], ids["q2"], ids["a2"]["id"], ids["q2b"],
        ids["a2b"]["id"], ids["a1b"]["id"]]
    assert (nodes[ids["a1b"]["id"]]["position"], nodes[ids["a1b"]["id"]]["siblings"]) == (2, 2)
    assert nodes[ids["q2"]]["depth"] == 2 and nodes[ids["q1"]]["depth"] == 0
    active = [n["id"] for n in body["nodes"] if n["active"]]
    assert active == [ids["q1"], ids["a1"]["id"], ids["q2b"], ids["a2b"]["id"]]
    assert nodes[ids["q2b"]]["preview"] == "second, edited"
    assert nodes[ids["a1"]["id"]]["model"] == "fake-model"


def test_prune_deletes_the_subtree_only_and_moves_the_active_leaf(api: Api) -> None:
    chat_id, ids = branchy(api)
    before = read_history(api, chat_id, tree="true")["messages"]
    response = api.http.delete(f"/chats/{chat_id}/messages/{ids['q2b']}")
    assert response.status_code == 200, response.text
    assert response.json()["current_leaf_id"] == ids["a2"]["id"]  # the sibling branch left
    after = read_history(api, chat_id, tree="true")["messages"]
    gone = {ids["q2b"], ids["a2b"]["id"]}
    assert after == [m for m in before if m["id"] not in gone]  # the rest byte for byte
    # the whole first answer's branch: only q1 and the regenerated answer stay
    response = api.http.delete(f"/chats/{chat_id}/messages/{ids['a1']['id']}")
    assert response.json()["current_leaf_id"] == ids["a1b"]["id"]
    left = read_history(api, chat_id, tree="true")["messages"]
    assert [m["id"] for m in left] == [ids["q1"], ids["a1b"]["id"]]
    assert_error(api.http.delete(f"/chats/{chat_id}/messages/{ids['a1']['id']}"), 404,
                 "not_found")


def test_fork_copies_the_path_into_a_new_chat_and_leaves_the_source(api: Api) -> None:
    chat_id, ids = branchy(api)
    before = read_history(api, chat_id, tree="true")
    response = api.http.post(f"/chats/{chat_id}/fork", json={"message_id": ids["a2"]["id"]})
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["id"] != chat_id and fork["title"] == "Tree (fork)"
    messages = read_history(api, fork["id"], tree="true")["messages"]
    assert [m["content"] for m in messages] == [
        "first question", ids["a1"]["content"], "second question", ids["a2"]["content"]]
    assert fork["current_leaf_id"] == messages[-1]["id"]
    assert not {m["id"] for m in messages} & {m["id"] for m in before["messages"]}
    assert [m["parent_id"] for m in messages[1:]] == [m["id"] for m in messages[:-1]]
    assert read_history(api, chat_id, tree="true") == before
    listed = {chat["id"] for chat in api.http.get("/chats").json()}
    assert {chat_id, fork["id"]} <= listed
    # the fork answers on its own path
    answer = send_message(api, fork["id"], content="third")
    assert answer["parent_id"] != ids["a2"]["id"]


def test_another_owners_chat_is_not_found_and_forged_ids_are_refused(api: Api) -> None:
    theirs = api.service.create("mallory", "Theirs")
    api.service.store.save(theirs)
    chat_id, ids = branchy(api)
    for response in (
        api.http.get(f"/chats/{theirs.id}/tree"),
        api.http.delete(f"/chats/{theirs.id}/messages/{ids['q1']}"),
        api.http.post(f"/chats/{theirs.id}/fork", json={"message_id": ids["q1"]}),
        api.http.post(f"/chats/{chat_id}/fork", json={"message_id": "f" * 32}),
        api.http.delete(f"/chats/{chat_id}/messages/{'f' * 32}"),
    ):
        assert_error(response, 404, "not_found")
    for response in (
        api.http.delete(f"/chats/{chat_id}/messages/..%5C..%5Cetc"),
        api.http.delete(f"/chats/{chat_id}/messages/{'x' * 5000}"),
        api.http.post(f"/chats/{chat_id}/fork", json={"message_id": "<img src=x>"}),
        api.http.post(f"/chats/{chat_id}/fork", json={"message_id": ids["q1"], "owner": "x"}),
        api.http.post(f"/chats/{chat_id}/fork", json={"message_id": ["x"]}),
        api.http.post(f"/chats/{chat_id}/fork", content=b"{broken",
                      headers={"Content-Type": "application/json"}),
    ):
        assert_error(response, 422, "invalid_request")
    assert len(read_history(api, chat_id, tree="true")["messages"]) == 7
    assert len(api.service.conversation(theirs.id, "mallory").messages) == 0
    assert [c["id"] for c in api.http.get("/chats").json()] == [chat_id]


def test_prune_is_refused_while_the_chat_answers(api: Api, fake_backend: FakeBackend) -> None:
    chat_id, ids = branchy(api)
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER, text="w1 w2 w3 w4"))
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "more"}) as stream:
        lines = stream.iter_lines()
        assert any(line == "event: delta" for line in lines)
        busy = api.http.delete(f"/chats/{chat_id}/messages/{ids['q2']}")
        assert_error(busy, 409, "conversation_busy")
        assert api.http.post(f"/chats/{chat_id}/stop").json() == {"stopped": True}
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    assert ids["q2"] in {m["id"] for m in read_history(api, chat_id, tree="true")["messages"]}
    assert api.http.delete(f"/chats/{chat_id}/messages/{ids['q2']}").status_code == 200
