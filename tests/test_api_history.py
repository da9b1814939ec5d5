"""GET /chats/{id}/history (JSON, tree, Markdown) and POST /chats/import: the round trip."""

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


# ----- history, export, import -------------------------------------------------------


def test_history_is_the_active_branch_unless_tree_is_asked(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    first = send_message(api, chat_id, content="one")
    send_message(api, chat_id, regenerate_id=first["id"])
    assert len(read_history(api, chat_id)["messages"]) == 2
    assert len(read_history(api, chat_id, tree="true")["messages"]) == 3
    assert_error(api.http.get(f"/chats/{chat_id}/history", params={"format": "xml"}), 422,
                 "invalid_request")


def test_markdown_history_is_a_readable_transcript(api: Api, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Blue, mostly."))
    chat_id = api.new_chat(title="Sky", system_prompt="Be exact.")["id"]
    send_message(api, chat_id, content="What colour is the sky?")
    response = api.http.get(f"/chats/{chat_id}/history", params={"format": "markdown"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text == (
        "# Sky\n\n## System prompt\n\n> Be exact.\n\n## You\n\nWhat colour is the sky?\n\n"
        "## Assistant (fake-model)\n\nBlue, mostly.\n"
    )


def test_json_export_reimports_as_the_same_tree(api: Api) -> None:
    chat_id = api.new_chat(title="Branchy", temperature=0.4)["id"]
    first = send_message(api, chat_id, content="one")
    send_message(api, chat_id, content="two")
    send_message(api, chat_id, regenerate_id=first["id"])
    exported = read_history(api, chat_id, tree="true")

    response = api.http.post("/chats/import", json=exported)
    assert response.status_code == 201, response.text
    imported = response.json()
    assert imported["id"] != chat_id
    again = read_history(api, imported["id"], tree="true")
    for key in ("title", "updated_at", "current_leaf_id", "settings", "messages"):
        assert again[key] == exported[key]
    markdown = [api.http.get(f"/chats/{c}/history", params={"format": "markdown"}).text
                for c in (chat_id, imported["id"])]
    assert markdown[0] == markdown[1]
    assert len(api.http.get("/chats").json()) == 2
    # The active branch alone is a valid export too.
    branch = api.http.post("/chats/import", json=read_history(api, chat_id))
    assert branch.status_code == 201
    assert len(read_history(api, branch.json()["id"], tree="true")["messages"]) == 2


def test_import_rejects_a_broken_tree(api: Api) -> None:
    chat_id = api.new_chat()["id"]
    send_message(api, chat_id, content="one")
    exported = read_history(api, chat_id, tree="true")
    orphan = {**exported, "messages": exported["messages"][1:]}
    doubled = {**exported, "messages": exported["messages"] + exported["messages"][:1]}
    no_leaf = {**exported, "current_leaf_id": "nope"}
    bad_role = {**exported, "messages": [{**exported["messages"][0], "role": "robot"},
                                         *exported["messages"][1:]]}
    for body in (orphan, doubled, no_leaf, bad_role, {"messages": "x"}):
        assert_error(api.http.post("/chats/import", json=body), 422, "invalid_request")
    assert len(api.http.get("/chats").json()) == 1
