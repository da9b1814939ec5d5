"""Importing chats from files: chatui's JSON, llama.cpp web UI's exports, Open WebUI's export.

The samples in ``tests/transfer_samples/`` are written from each format's
definition (llama.cpp: ``tools/ui/src/lib/services/conversation-transfer.service.ts``
and ``types/database.d.ts``; Open WebUI: its "Export chat (.json)", a list of
chat records with ``chat.history``). Each format is read, checked as a tree
(branches, the branch shown, reasoning), written back as chatui's JSON and read
again: the round trip. Then the same through the REST API on a real server,
and the files an attacker would send.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui import codec, transfer, tree
from chatui.api.importing import IMPORTED_HEADER
from chatui.api.schemas import ChatImport
from chatui.transfer import building
from chatui.tree import Conversation
from tests.apiharness import Api, assert_error, read_history, running_api, send_message
from tests.fakebackend import FakeBackend
from tests.polling import PATIENCE

SAMPLES = Path(__file__).parent / "transfer_samples"
LLAMA_SESSION = SAMPLES / "llamacpp_session.jsonl"
LLAMA_LEGACY = SAMPLES / "llamacpp_legacy.json"
OPEN_WEBUI = SAMPLES / "openwebui_chat.json"


def read(data: bytes | Path) -> tuple[tuple[Conversation, ...], str]:
    """As the REST API and the page read a file: chatui's own format held to its schema."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    return transfer.read_chats(raw, "alice", ChatImport.check)


def branch(conversation: Conversation) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in tree.active_path(conversation)]


def children(conversation: Conversation, message_id: str | None) -> list[str]:
    return [m.content for m in conversation.messages.values() if m.parent_id == message_id]


def shape(conversation: Conversation) -> dict[str, Any]:
    """Everything but the conversation's own id and owner, as the export writes it."""
    data = codec.conversation_to_dict(conversation)
    return {k: v for k, v in data.items() if k not in ("id", "owner")}


def round_trip(conversation: Conversation) -> Conversation:
    (again,), name = read(transfer.export_json(conversation).encode())
    assert name == "chatui"
    return again


# ----- each format -----------------------------------------------------------------------


def test_llamacpp_session_keeps_branches_reasoning_and_the_branch_shown() -> None:
    (chat,), name = read(LLAMA_SESSION)
    assert name == "llama.cpp"
    assert chat.title == "Llamas and <b>alpacas</b>"  # text: the page escapes it
    assert chat.owner == "alice"
    # The empty root is dropped; the top system message is the chat's system prompt.
    assert chat.settings.system_prompt == "You answer in one sentence."
    assert len(chat.messages) == 4
    question = next(m for m in chat.messages.values() if m.parent_id is None)
    assert question.content == "How do llamas differ from alpacas?"
    assert sorted(children(chat, question.id)) == [
        "Alpacas are smaller and <script>alert(1)</script> bred for fleece.",
        "Llamas are larger and were bred as pack animals.",
    ]
    # currNode is the second answer: that branch is the one shown.
    assert branch(chat)[-1][1].startswith("Alpacas are smaller")
    shown = tree.active_path(chat)[-1]
    assert shown.reasoning == "Try another angle: fleece."
    assert shown.model == "qwen3-0.6b"
    assert [(c.id, c.name, c.arguments) for c in shown.tool_calls] == [
        ("call_1", "lookup", '{"animal": "alpaca"}')]
    first = next(m for m in chat.messages.values() if m.content.startswith("Llamas are"))
    assert first.reasoning == "Size and use are the *main* differences."
    assert first.timings is not None and first.timings.generated_tokens == 12
    assert first.timings.prompt_tokens == 31 and first.timings.tokens_per_second == 50.0
    assert first.created_at == 1767225605.0  # milliseconds became seconds
    # A text file attached to a message is kept after it; the image is left out.
    assert children(chat, first.id) == [
        "And their wool?\n\n**wool.txt**\n\n```\nAlpaca fleece has no lanolin.\n```"]
    assert shape(round_trip(chat)) == shape(chat)


def test_llamacpp_legacy_json_holds_several_chats() -> None:
    chats, name = read(LLAMA_LEGACY)
    assert name == "llama.cpp"
    assert [c.title for c in chats] == ["First", "Empty"]
    first, empty = chats
    assert branch(first) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "Bye")]
    assert tree.active_path(first)[1].reasoning == "Greet back."  # the old "thinking" field
    assert empty.messages == {} and empty.current_leaf_id is None
    for chat in chats:
        assert shape(round_trip(chat)) == shape(chat)


def test_llamacpp_zip_of_all_chats_reads_every_jsonl_entry() -> None:
    session = LLAMA_SESSION.read_bytes()
    other = session.replace(b"Llamas and <b>alpacas</b>", b"Second copy")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("2026-01-01_conv_9f1c2d3e_llamas.jsonl", session)
        out.writestr("2026-01-01_conv_9f1c2d3e_second.jsonl", other)
        out.writestr("notes.txt", b"ignored")
    chats, name = read(archive.getvalue())
    assert name == "llama.cpp"
    assert sorted(c.title for c in chats) == ["Llamas and <b>alpacas</b>", "Second copy"]
    assert len({m for c in chats for m in c.messages}) == 8  # every message has its own id


def test_llamacpp_jsonl_with_two_sessions_in_one_file() -> None:
    session = LLAMA_SESSION.read_text()
    chats, _ = read((session + "\n" + session.replace("Llamas and", "More llamas and")).encode())
    assert [c.title for c in chats] == ["Llamas and <b>alpacas</b>",
                                        "More llamas and <b>alpacas</b>"]


def test_open_webui_export_keeps_branches_reasoning_and_the_branch_shown() -> None:
    (chat,), name = read(OPEN_WEBUI)
    assert name == "Open WebUI"
    assert chat.title == "Sky colour"
    assert chat.settings.system_prompt == "Be brief."
    assert chat.created_at == 1767225600.0
    question = next(m for m in chat.messages.values() if m.parent_id is None)
    assert sorted(children(chat, question.id)) == [
        "Because of Rayleigh scattering.",
        "Short blue light is scattered most: <img src=x onerror=alert(1)>",
    ]
    assert branch(chat) == [
        ("user", "Why is the sky blue?"),
        ("assistant", "Short blue light is scattered most: <img src=x onerror=alert(1)>"),
    ]
    thought = next(m for m in chat.messages.values() if m.content.startswith("Because"))
    assert thought.reasoning == "Rayleigh scattering.\nShorter *wavelengths* scatter more."
    assert thought.model == "llama3.2:1b"
    assert thought.timings is not None and thought.timings.generated_tokens == 6
    assert thought.timings.tokens_per_second == 42.5
    assert shape(round_trip(chat)) == shape(chat)


def test_open_webui_chat_without_history_is_read_from_its_message_list() -> None:
    record = {"title": "Old", "chat": {"messages": [
        {"role": "user", "content": "one", "timestamp": 1700000000},
        {"role": "assistant", "content": "two", "timestamp": 1700000001}]}}
    (chat,), name = read(json.dumps([record]).encode())
    assert name == "Open WebUI"
    assert branch(chat) == [("user", "one"), ("assistant", "two")]


def test_a_chatui_export_keeps_its_ids_and_fields() -> None:
    (chat,), _ = read(OPEN_WEBUI)
    exported = json.loads(transfer.export_json(chat))
    (again,), name = read(json.dumps(exported).encode())
    assert name == "chatui"
    assert set(again.messages) == set(chat.messages)
    assert again.current_leaf_id == chat.current_leaf_id
    assert again.id != chat.id


def test_markdown_export_is_the_branch_shown() -> None:
    (chat,), _ = read(LLAMA_SESSION)
    text = transfer.export_markdown(chat)
    assert text.startswith("# Llamas and <b>alpacas</b>\n")
    assert "> You answer in one sentence." in text
    assert "Alpacas are smaller" in text and "Llamas are larger" not in text
    assert "<summary>Reasoning</summary>" in text


# ----- hostile files ---------------------------------------------------------------------


def llama_lines(*messages: dict[str, Any]) -> bytes:
    session = {"type": "session", "harness": "llama.app", "id": "c", "name": "x",
               "currNode": None, "lastModified": 0}
    lines = [session] + [{"type": "message", "message": {
        "convId": "c", "type": "text", "timestamp": 0, "children": [], **m}} for m in messages]
    return "\n".join(json.dumps(line) for line in lines).encode()


@pytest.mark.parametrize(("data", "said"), [
    (llama_lines({"id": "a", "parent": "b", "role": "user", "content": "1"},
                 {"id": "b", "parent": "a", "role": "assistant", "content": "2"}), "cycle"),
    (llama_lines({"id": "a", "parent": "gone", "role": "user", "content": "1"}),
     "not in the file"),
    (llama_lines({"id": "a", "parent": None, "role": "user", "content": "1"},
                 {"id": "a", "parent": None, "role": "user", "content": "2"}), "same id"),
    (llama_lines({"id": "a", "parent": None, "role": "wizard", "content": "1"}), "unknown role"),
    (llama_lines({"id": "a", "parent": None, "role": "user", "content": ["not", "text"]}),
     "must be text"),
    (b'{"type": "message", "message": {}}\n', "not a chat export"),  # no session line
    (b"\xff\xfe\x00garbage", "not text"),
    (b"PK\x03\x04 not really a zip", "not one"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b'{"hello": "world"}', "not a chat export"),
    (b"[1, 2, 3]", "not a chat export"),
    (b'{"conv": 5, "messages": 1}', "must be a JSON object"),
    (b"   ", "empty"),
    (json.dumps({"title": "t", "current_leaf_id": "../x", "settings": {}, "messages": [
        {"id": "../x", "parent_id": None, "role": "user", "content": "hi",
         "created_at": 0}]}).encode(), "current_leaf_id: String should match"),
    (json.dumps({"title": "t", "current_leaf_id": "nope", "settings": {}, "messages": [
        {"id": "a", "parent_id": None, "role": "user", "content": "hi",
         "created_at": 0}]}).encode(), "current message"),
])
def test_a_broken_or_hostile_file_is_refused_with_a_reason(data: bytes, said: str) -> None:
    with pytest.raises(transfer.ImportRefused, match=said):
        read(data)


def test_a_zip_that_unpacks_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 2**20)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("bomb.jsonl", b" " * (4 * 2**20))
    assert len(archive.getvalue()) < 2**20  # small on the wire
    with pytest.raises(transfer.ImportRefused, match="unpacks to more"):
        read(archive.getvalue())


def test_too_many_messages_or_too_big_a_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(building, "MAX_MESSAGES", 2)
    with pytest.raises(transfer.ImportRefused, match="at most 2 messages"):
        read(LLAMA_SESSION)
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(transfer.ImportRefused, match="larger than"):
        read(LLAMA_SESSION)


# ----- through the REST API --------------------------------------------------------------

TIMEOUTS: dict[str, Any] = {
    "connect_timeout": 1.0, "first_token_timeout": PATIENCE, "stall_timeout": PATIENCE,
}


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, **TIMEOUTS) as running:
        yield running


@pytest.mark.parametrize(("sample", "content_type", "chats"), [
    (LLAMA_SESSION, "application/x-ndjson", 1),
    (LLAMA_LEGACY, "application/json", 2),
    (OPEN_WEBUI, "application/json", 1),
])
def test_rest_import_detects_the_format_and_round_trips(
    api: Api, sample: Path, content_type: str, chats: int
) -> None:
    response = api.http.post("/chats/import", content=sample.read_bytes(),
                             headers={"content-type": content_type})
    assert response.status_code == 201, response.text
    ids = response.headers[IMPORTED_HEADER].split(",")
    assert len(ids) == chats and response.json()["id"] == ids[0]
    exported = read_history(api, ids[0], tree="true")
    again = api.http.post("/chats/import", json=exported)
    assert again.status_code == 201, again.text
    reread = read_history(api, again.json()["id"], tree="true")
    for key in ("title", "current_leaf_id", "settings", "messages"):
        assert reread[key] == exported[key]
    listed = api.http.get("/chats", params={"limit": 100}).json()
    listed = listed["chats"] if isinstance(listed, dict) else listed
    assert len(listed) == chats + 1


def test_rest_import_of_a_chat_made_here_keeps_the_tree(api: Api) -> None:
    chat_id = api.new_chat(title="Here")["id"]
    first = send_message(api, chat_id, content="one")
    send_message(api, chat_id, regenerate_id=first["id"])
    exported = read_history(api, chat_id, tree="true")
    response = api.http.post("/chats/import", content=json.dumps(exported).encode(),
                             headers={"content-type": "text/plain"})  # the type does not matter
    assert response.status_code == 201, response.text
    again = read_history(api, response.json()["id"], tree="true")
    assert again["messages"] == exported["messages"]


def test_rest_import_refuses_hostile_files_and_stores_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle = llama_lines({"id": "a", "parent": "b", "role": "user", "content": "1"},
                        {"id": "b", "parent": "a", "role": "assistant", "content": "2"})
    for body in (cycle, b"not json at all", b"[" * 50_000, b'{"messages": "x"}', b""):
        said = assert_error(api.http.post("/chats/import", content=body), 422, "invalid_request")
        assert said
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 1000)
    big = api.http.post("/chats/import", content=b" " * 5000)
    assert_error(big, 422, "invalid_request")
    assert "larger than" in big.text
    listed = api.http.get("/chats").json()
    assert (listed["chats"] if isinstance(listed, dict) else listed) == []


def _spoiled(exported: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """``exported`` (a deep copy) with the field at dotted ``where`` set to ``value``
    (``...`` deletes it); a number in the path indexes a list."""
    spoiled = json.loads(json.dumps(exported))
    *path, last = where.split(".")
    target = spoiled
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return spoiled


# Each breaks only what the spec's import schema says: what a fuzzer sends, not the UI.
WRONG_TYPES = [
    ("owner", 5), ("created_at", "yesterday"), ("messages.1.created_at", "noon"),
    ("messages.1.timings.ttft_ms", [1]), ("messages.1.timings.generated_tokens", "many"),
    ("messages.1.timings.source", "guess"), ("messages.1.sources.0.page", "2"),
    ("messages.1.sources.0.score", "high"), ("messages.1.made.context_tokens", "x"),
    ("messages.1.status", "streaming-ish"), ("messages.1.parent_id", ...),
    ("messages.0.content", ...),
]


@pytest.mark.parametrize(("where", "value"), WRONG_TYPES)
def test_rest_import_refuses_a_chatui_field_of_the_wrong_type(
    api: Api, where: str, value: Any
) -> None:
    chat_id = api.new_chat(title="Typed")["id"]
    send_message(api, chat_id, content="one")
    exported = read_history(api, chat_id, tree="true")
    exported["messages"][1]["sources"] = [{"number": 1, "document": "a.txt", "page": 2,
                                           "snippet": "s", "score": 0.5, "chunk_id": 3}]
    exported["messages"][1]["made"] = {"context_tokens": 4096}
    assert api.http.post("/chats/import", json=exported).status_code == 201  # as exported
    said = assert_error(api.http.post("/chats/import", json=_spoiled(exported, where, value)),
                        422, "invalid_request")
    assert where.split(".")[-1] in said
    listed = api.http.get("/chats").json()
    assert len(listed["chats"] if isinstance(listed, dict) else listed) == 2  # no third


def test_the_ui_download_and_the_rest_export_read_as_the_same_chat() -> None:
    from chatui.api.schemas import ChatExport

    (chat,), _ = read(LLAMA_SESSION)
    rest = ChatExport.of_messages(chat, list(chat.messages.values())).model_dump_json()
    ui = transfer.export_json(chat)
    (from_rest,), _ = read(rest.encode())
    (from_ui,), _ = read(ui.encode())
    assert shape(from_rest) == shape(from_ui) == shape(chat)
    # Same fields, but for ones the store leaves out while empty (null in the REST export).
    rest_data, ui_data = json.loads(rest), json.loads(ui)
    assert set(ui_data) == set(rest_data)
    for by_rest, by_ui in zip(rest_data["messages"], ui_data["messages"], strict=True):
        assert {k: v for k, v in by_rest.items() if v is not None and k != "timings"} == {
            k: v for k, v in by_ui.items() if v is not None and k != "timings"}


@pytest.mark.parametrize(("settings", "said"), [
    ({"min_p": {"x": 1}}, "'min_p' must be a number"),
    ({"temperature": "hot"}, "'temperature' must be a number"),
    ({"top_p": 5}, "'top_p' must be at most 1"),
    ({"seed": True}, "'seed' must be a number"),
    ({"model": ["a"]}, "'model' must be text"),
    ({"rag_enabled": "yes"}, "'rag_enabled' must be true or false"),
])
def test_imported_settings_outside_what_the_api_allows_are_refused(
    settings: dict[str, Any], said: str,
) -> None:
    body = json.dumps({"title": "t", "messages": [], "settings": settings}).encode()
    with pytest.raises(building.ImportRefused, match=said):
        transfer.read_chats(body, "alice")
