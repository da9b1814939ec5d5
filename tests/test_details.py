"""Each answer knows how it was made (issue 13, item 5), and can be made again that way.

The scripted server plays a llama-server (its ``/props`` build, ``system_fingerprint``);
the export and import go through the real REST API; an export written before
``made`` existed still imports, and so does the store file kept from schema 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatui import codec, tree
from chatui.client import BackendClient
from chatui.details import details_markdown
from chatui.filestore import FileStore
from chatui.memstore import MemoryStore
from chatui.serverinfo import ServerFeatures
from chatui.service import ChatService
from chatui.tree import Provenance, Settings, Source
from tests.apiharness import running_api
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(60)
OWNER = "local"
REPO = Path(__file__).resolve().parents[1]
SETTINGS = Settings(model="fake-model", system_prompt="Be brief.", temperature=0.3, top_k=20,
                    seed=42, max_tokens=64)


def _answer_with_fingerprint(text: str) -> Script:
    events = [{"id": "c", "object": "chat.completion.chunk", "model": "served-model",
               "system_fingerprint": "b6000-abc123",
               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}]
    return Script.sse(events)


def test_an_answer_stores_how_it_was_made_and_says_so() -> None:
    with FakeBackend(props={"build_info": "b5999-old"}) as backend, \
            BackendClient(backend.base_url) as client:
        backend.enqueue(_answer_with_fingerprint("Hi."))
        service = ChatService(MemoryStore(), client, features=ServerFeatures(client),
                              context_tokens=3000)
        chat = service.create(OWNER, settings=SETTINGS)
        result = service.start_send(chat.id, "Hello", owner=OWNER).result
    assert result is not None
    made = result.message.made
    assert made is not None
    assert made.requested_model == "fake-model" and made.server_model == "served-model"
    assert made.server_build == "b6000-abc123"  # the stream's own word beats /props
    assert made.setting("seed") == 42 and made.setting("temperature") == 0.3
    assert made.context_tokens == 3000
    shown = details_markdown(result.message)
    for words in ("`fake-model`", "`served-model`", "`b6000-abc123`", "temperature `0.3`",
                  "top k `20`", "seed `42`", "System prompt: `Be brief.`", "3,000 tokens"):
        assert words in shown


def test_details_of_old_and_hostile_answers() -> None:
    old = tree.make_message("assistant", "Old.", "q", model="smollm2",
                            sources=(Source(1, "plan`s.pdf", 3, "x", 0.5),))
    shown = details_markdown(old)
    assert "before chatui kept" in shown and "`smollm2`" in shown
    assert "[1] `plan's.pdf`" in shown  # a backtick cannot close the code span
    hostile = tree.make_message("assistant", "x", "q", made=Provenance(
        requested_model="a`<img src=x onerror=alert(1)>`\n# heading"))
    line = next(row for row in details_markdown(hostile).splitlines() if "asked" in row)
    assert line.count("`") == 2 and "\n" not in line
    assert details_markdown(tree.make_message("user", "hi", None)) == ""


def test_retry_with_the_same_settings_reproduces_the_request() -> None:
    with FakeBackend() as backend, BackendClient(backend.base_url) as client:
        service = ChatService(MemoryStore(), client, features=ServerFeatures(client))
        chat = service.create(OWNER, settings=SETTINGS)
        first = service.start_send(chat.id, "Hello", owner=OWNER).result
        assert first is not None
        # The chat's settings change afterwards; the retry still asks as the first time.
        service.update_settings(chat.id, Settings(temperature=1.5), OWNER)
        again = service.start_reproduce(chat.id, first.message.id, owner=OWNER).result
        assert again is not None
        original, retried = backend.requests[-2], backend.requests[-1]
        for key in ("model", "temperature", "top_k", "seed", "max_tokens", "messages"):
            assert retried[key] == original[key]
        assert again.message.parent_id == first.message.parent_id
        assert again.message.id != first.message.id
        assert again.message.made == first.message.made


def test_export_and_import_keep_made_and_an_old_export_still_imports(tmp_path: Path) -> None:
    with FakeBackend() as backend:
        backend.enqueue(_answer_with_fingerprint("Hi."), Script.text_answer("Again."))
        with running_api(backend.base_url, tmp_path) as api:
            chat = api.new_chat(**{k: v for k, v in codec.settings_to_dict(SETTINGS).items()
                                   if v is not None and k != "rag_enabled"})
            answer = api.http.post(f"/chats/{chat['id']}/message",
                                   json={"content": "Hello"}).json()
            assert answer["made"]["server_build"] == "b6000-abc123"
            assert answer["made"]["settings"]["seed"] == 42
            again = api.http.post(f"/chats/{chat['id']}/message",
                                  json={"reproduce_id": answer["id"]}).json()
            assert again["parent_id"] == answer["parent_id"] and again["id"] != answer["id"]
            assert backend.requests[-1]["seed"] == 42
            exported = api.http.get(f"/chats/{chat['id']}/history",
                                    params={"tree": True}).json()
            response = api.http.post("/chats/import", json=exported)
            assert response.status_code == 201, response.text
            imported = api.http.get(f"/chats/{response.json()['id']}/history",
                                    params={"tree": True}).json()
            made = {m["content"]: m["made"] for m in imported["messages"]}
            assert made["Hi."] == answer["made"]

            old_export = json.loads(json.dumps(exported))
            for message in old_export["messages"]:  # as chatui wrote them before "made"
                message.pop("made")
                if message["timings"]:
                    message["timings"].pop("cached_tokens")
            response = api.http.post("/chats/import", json=old_export)
            assert response.status_code == 201, response.text
            old = api.http.get(f"/chats/{response.json()['id']}/history",
                               params={"tree": True}).json()
            assert {m["content"] for m in old["messages"]} == {"Hello", "Hi.", "Again."}
            assert all(m["made"] is None for m in old["messages"])


def test_the_schema_1_store_file_loads_without_made(tmp_path: Path) -> None:
    written = REPO / "tests" / "store_files" / "c0ffee0000000000000000000000v1.json"
    folder = tmp_path / "data" / "conversations"
    folder.mkdir(parents=True)
    (folder / written.name).write_bytes(written.read_bytes())
    with FileStore(tmp_path / "data") as store:
        conversation = store.load(written.stem, owner="alice")
    answers = [m for m in conversation.messages.values() if m.role == "assistant"]
    assert len(answers) == 2 and all(m.made is None for m in answers)
    assert all(m.timings is None or m.timings.cached_tokens is None for m in answers)
    assert "before chatui kept" in details_markdown(answers[0])


def test_made_survives_both_stores(tmp_path: Path) -> None:
    made = Provenance(requested_model="m", settings=(("seed", 3), ("temperature", 0.5)),
                      server_build="b1", context_tokens=100, continue_mode="completions")
    chat = tree.new_conversation(owner=OWNER)
    chat = tree.add_message(chat, tree.make_message("user", "q", None))
    chat = tree.add_message(chat, tree.make_message("assistant", "a", chat.current_leaf_id,
                                                    made=made))
    for store in (MemoryStore(), FileStore(tmp_path / "files")):
        with store:
            store.save(chat)
            loaded = store.load(chat.id)
        assert loaded.message(chat.current_leaf_id or "").made == made
