"""The conversation stores: the protocol's contract on each, and what the file store keeps on disk.

Tests taking ``store`` run on every implementation (``FileStore``, ``MemoryStore``),
as TinyDB's own tests run on its JSON and memory storages. Tests taking
``file_store`` are about files: crash safety, corrupt files, migrations, the
folder lock.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import pytest

from chatui import storage
from chatui.codec import conversation_to_dict, message_to_dict
from chatui.errors import InvalidRequest, NotFound, StoreCorrupt, StoreError
from chatui.filestore import FileStore
from chatui.memstore import MemoryStore
from chatui.store import ConversationStore, ConversationSummary
from chatui.tree import (
    Conversation,
    Provenance,
    Settings,
    Source,
    Timings,
    ToolCall,
    add_message,
    make_message,
    new_conversation,
)

REPO = Path(__file__).resolve().parents[1]
WRITTEN_BEFORE = REPO / "tests" / "store_files" / "c0ffee0000000000000000000000v1.json"
"""A file written by chatui before the store protocol (schema 1), kept as it was."""

STORES: dict[str, Callable[[Path], ConversationStore]] = {
    "file": FileStore,
    "memory": lambda folder: MemoryStore(),
}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    with STORES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[FileStore]:
    with FileStore(tmp_path) as opened:
        yield opened


def reopen(store: ConversationStore) -> ConversationStore:
    """The store as the next start of chatui finds it (a memory store is all it has)."""
    if not isinstance(store, FileStore):
        return store
    store.close()
    return FileStore(store.data_dir)


def reopen_file(store: FileStore) -> FileStore:
    """The store opened again. Tests change files behind its back only while it is
    closed: while open, the store owns its folder (filestore.py)."""
    store.close()
    return FileStore(store.data_dir)


def chat(
    title: str = "A chat", owner: str = "local", texts: tuple[str, ...] = ("hello", "hi"),
    now: float = 1000.0,
) -> Conversation:
    """A conversation alternating user and assistant messages, one second apart."""
    conversation = new_conversation(title, owner=owner, now=now)
    for number, text in enumerate(texts):
        role = "user" if number % 2 == 0 else "assistant"
        message = make_message(role, text, conversation.current_leaf_id, now=now + number + 1)
        conversation = add_message(conversation, message)
    return conversation


def append(conversation: Conversation, text: str) -> Conversation:
    return add_message(conversation, make_message("user", text, conversation.current_leaf_id))


def file_of(store: FileStore, conversation_id: str) -> Path:
    return store.data_dir / "conversations" / f"{conversation_id}.json"


def test_every_message_field_survives_a_round_trip(store: ConversationStore) -> None:
    settings = Settings(system_prompt="Be brief.", model="smollm2", temperature=0.2, top_k=40,
                        max_tokens=256, seed=7, rag_enabled=True)
    conversation = new_conversation("Fields", settings=settings, owner="alice", now=10.0)
    question = make_message("user", "Où est la gare ? 🚉", None, now=11.0)
    answer = make_message(
        "assistant", "See [1].", question.id, now=12.0,
        reasoning="The user asks for directions.",
        tool_calls=(ToolCall(id="call_1", name="search", arguments='{"q": "gare"}'),),
        model="smollm2",
        timings=Timings(prompt_tokens=12, generated_tokens=30, ttft_ms=81.5,
                        tokens_per_second=42.0, total_ms=900.25, source="server"),
        sources=(Source(number=1, document="plan.pdf", page=3, snippet="La gare…",
                        score=0.87, chunk_id=5),),
        status="error",
        error="The model server stopped answering.",
    )
    broken = make_message("assistant", "half a character: \ud83d", question.id, now=13.0,
                          status="stopped")
    for message in (question, answer, broken):
        conversation = add_message(conversation, message)

    store.save(conversation)

    assert store.load(conversation.id) == conversation
    assert reopen(store).load(conversation.id) == conversation


def test_a_message_is_stored_as_all_its_fields_in_plain_json() -> None:
    """The file's shape is ``asdict``'s, whatever builds it (``message_to_dict`` does not
    use ``asdict``): every field, ``made``'s settings as an object, and the fields added
    later left out while empty. A field added to a dataclass must be filled here too."""
    made = Provenance(requested_model="smol", settings=(("temperature", 0.2), ("seed", None)),
                      server_model="smollm2", server_build="b1", context_tokens=2048,
                      continue_mode="append", trimmed="2 messages")
    full = make_message(
        "assistant", "See [1].", "q1", now=12.0, reasoning="Why.", model="smollm2",
        tool_calls=(ToolCall(id="call_1", name="search", arguments="{}"),),
        timings=Timings(prompt_tokens=12, generated_tokens=30, ttft_ms=81.5,
                        tokens_per_second=42.0, total_ms=900.25, source="server",
                        cached_tokens=8),
        sources=(Source(number=1, document="plan.pdf", page=3, snippet="La gare",
                        score=0.87, chunk_id=5),),
        status="error", error="It stopped.", made=made,
    )
    for value in (full, full.timings, full.made, full.tool_calls[0], full.sources[0]):
        unset = [f.name for f in fields(value) if getattr(value, f.name) in (f.default, None)]
        assert unset == [], f"fill {unset} of {type(value).__name__} in this test"
    expected = json.loads(json.dumps(asdict(full)))
    expected["made"]["settings"] = {"temperature": 0.2, "seed": None}
    assert json.loads(json.dumps(message_to_dict(full))) == expected

    plain = make_message("user", "Hello", None, now=1.0)
    expected = json.loads(json.dumps(asdict(plain)))
    del expected["made"]
    assert json.loads(json.dumps(message_to_dict(plain))) == expected
    bare_timings = replace(plain, timings=Timings(generated_tokens=3))
    assert "cached_tokens" not in message_to_dict(bare_timings)["timings"]


def test_conversations_persist_in_a_new_store_on_the_same_folder(
    store: ConversationStore,
) -> None:
    first, second = chat("First", now=100.0), chat("Second", now=200.0)
    store.save(first)
    store.save(second)
    listed = store.list()

    again = reopen(store)

    assert again.list() == listed
    assert again.load(first.id) == first
    assert again.problems == []
    again.close()


def test_a_file_is_one_tinydb_database_with_the_schema_version(
    file_store: FileStore,
) -> None:
    conversation = chat(texts=("one", "two", "three"))
    file_store.save(conversation)

    tables = json.loads(file_of(file_store, conversation.id).read_text())

    assert tables["meta"] == {"1": {"schema_version": 1}}
    assert tables["conversation"]["1"]["title"] == "A chat"
    assert [m["content"] for m in tables["messages"].values()] == ["one", "two", "three"]


def test_list_is_newest_first_and_a_new_message_moves_a_chat_to_the_top(
    store: ConversationStore,
) -> None:
    old, middle, new = chat("Old", now=100.0), chat("Middle", now=200.0), chat("New", now=300.0)
    for conversation in (middle, new, old):
        store.save(conversation)
    assert [s.title for s in store.list()] == ["New", "Middle", "Old"]

    store.save(add_message(old, make_message("user", "back", old.current_leaf_id, now=400.0)))

    summaries = store.list()
    assert [s.title for s in summaries] == ["Old", "New", "Middle"]
    assert summaries[0].updated_at == 400.0
    assert summaries[0].message_count == 3
    assert [s.title for s in reopen(store).list()] == ["Old", "New", "Middle"]


@pytest.mark.parametrize(
    ("text", "owner", "expected"),
    [
        ("recipe", None, ["Bread recipe"]),
        ("SOURDOUGH", None, ["Bread recipe"]),  # message content, any case
        ("starter", None, ["Bread recipe", "Trip"]),  # in an assistant answer
        ("kyoto", "bob", ["Trip"]),
        ("kyoto", "alice", []),
        ("nothing like this", None, []),
    ],
)
def test_search_matches_title_or_any_message_ignoring_case(
    store: ConversationStore, text: str, owner: str | None, expected: list[str],
) -> None:
    store.save(chat("Bread recipe", "alice", ("How do I feed a sourdough?", "Feed the starter."),
                    now=100.0))
    store.save(chat("Trip", "bob", ("Kyoto in May?", "A good starter city."), now=200.0))

    assert sorted(s.title for s in store.search(text, owner=owner)) == expected


def test_search_finds_text_on_a_branch_that_is_not_shown(store: ConversationStore) -> None:
    question = make_message("user", "question", None)
    conversation = new_conversation()
    for message in (
        question,
        make_message("assistant", "first answer", question.id),
        make_message("assistant", "regenerated", question.id),
    ):
        conversation = add_message(conversation, message)
    store.save(conversation)

    assert [s.id for s in store.search("FIRST answer")] == [conversation.id]


@pytest.mark.parametrize(("owner", "expected"), [
    ("alice", ["Alice 2", "Alice 1"]), ("bob", ["Bob"]), ("carol", []),
    (None, ["Alice 2", "Bob", "Alice 1"]),
])
def test_list_shows_only_the_owners_conversations(
    store: ConversationStore, owner: str | None, expected: list[str],
) -> None:
    store.save(chat("Alice 1", "alice", now=100.0))
    store.save(chat("Bob", "bob", now=200.0))
    store.save(chat("Alice 2", "alice", now=300.0))

    assert [s.title for s in store.list(owner)] == expected


def test_delete_removes_the_conversation_and_its_file(
    store: ConversationStore, tmp_path: Path,
) -> None:
    kept, gone = chat("Kept"), chat("Gone")
    store.save(kept)
    store.save(gone)

    store.delete(gone.id)

    assert not (tmp_path / "conversations" / f"{gone.id}.json").exists()
    assert not store.exists(gone.id)
    assert store.exists(kept.id)
    assert [s.title for s in store.list()] == ["Kept"]
    with pytest.raises(NotFound):
        store.load(gone.id)
    with pytest.raises(NotFound):
        store.delete(gone.id)
    assert [s.title for s in reopen(store).list()] == ["Kept"]


@pytest.mark.parametrize("conversation_id", ["missing", "../../etc/passwd", "", "a/b"])
def test_unknown_or_unsafe_ids_are_not_found(
    store: ConversationStore, conversation_id: str,
) -> None:
    assert not store.exists(conversation_id)
    with pytest.raises(NotFound):
        store.load(conversation_id)
    with pytest.raises(NotFound):
        store.delete(conversation_id)


def test_a_conversation_that_breaks_the_tree_is_refused_and_nothing_changes(
    store: ConversationStore, tmp_path: Path,
) -> None:
    conversation = chat()
    store.save(conversation)
    before = records(tmp_path)
    orphan = make_message("user", "lost", parent_id="no-such-message")
    broken = replace(conversation, messages={**conversation.messages, orphan.id: orphan})

    with pytest.raises(InvalidRequest, match="no-such-message"):
        store.save(broken)
    with pytest.raises(InvalidRequest):
        store.save(replace(conversation, id="../escape"))

    assert store.load(conversation.id) == conversation
    assert [s.id for s in store.list()] == [conversation.id]
    assert not store.exists("../escape")
    assert records(tmp_path) == before
    assert list(tmp_path.parent.rglob("*escape*")) == []


def records(folder: Path) -> list[tuple[Path, bytes]]:
    """Every file but the catalog's (which SQLite touches on a read, too)."""
    return sorted(
        (p, p.read_bytes()) for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("catalog.sqlite3")
    )


def test_concurrent_saves_to_different_conversations_lose_nothing(
    store: ConversationStore,
) -> None:
    conversations = [chat(f"Chat {n}") for n in range(8)]
    for conversation in conversations:
        store.save(conversation)

    def append_many(conversation: Conversation) -> None:
        for number in range(25):
            store.save(append(store.load(conversation.id), f"#{number}"))

    run_threads(append_many, conversations)

    again = reopen(store)
    for conversation in conversations:
        assert len(again.load(conversation.id).messages) == 2 + 25
    again.close()


def test_concurrent_updates_of_one_conversation_lose_nothing(store: ConversationStore) -> None:
    conversation = chat()
    store.save(conversation)

    def append_many(worker: int) -> None:
        for number in range(25):
            text = f"{worker}-{number}"
            store.update(conversation.id, lambda c, text=text: append(c, text))

    run_threads(append_many, list(range(8)))

    contents = {m.content for m in reopen(store).load(conversation.id).messages.values()}
    assert contents >= {f"{worker}-{number}" for worker in range(8) for number in range(25)}


def test_update_of_a_missing_conversation_is_not_found(store: ConversationStore) -> None:
    conversation = chat()
    store.save(conversation)

    with pytest.raises(NotFound):
        store.update("missing", lambda c: c)
    with pytest.raises(InvalidRequest):
        store.update(conversation.id, lambda c: replace(c, id="other"))
    assert store.list()[0].id == conversation.id and not store.exists("other")


def test_readers_never_see_a_half_written_conversation(store: ConversationStore) -> None:
    versions = [chat(texts=tuple(f"text {n}" for n in range(size))) for size in (2, 40, 400)]
    versions = [replace(v, id=versions[0].id) for v in versions]
    store.save(versions[0])
    writers_left = threading.Semaphore(0)
    seen: list[Conversation] = []

    def write_or_read(job: Conversation | None) -> None:
        if job is not None:
            for _ in range(30):
                store.save(job)
            writers_left.release()
            return
        while True:  # at least one read, however fast the writers are
            seen.append(store.load(versions[0].id))
            if writers_left.acquire(blocking=False):
                break
        writers_left.release()  # let the next reader stop too

    run_threads(write_or_read, [*versions, None, None, None])

    assert seen and all(conversation in versions for conversation in seen)
    assert store.problems == []


def test_an_owner_sees_only_their_conversations_and_a_guess_tells_nothing(
    store: ConversationStore,
) -> None:
    alices = chat("Alice's", owner="alice")
    store.save(alices)

    assert store.load(alices.id, owner="alice") == alices
    assert store.exists(alices.id, owner="alice") and not store.exists(alices.id, owner="bob")
    with pytest.raises(NotFound) as another:
        store.load(alices.id, owner="bob")
    with pytest.raises(NotFound) as missing:
        store.load("no-such-chat", owner="bob")
    assert str(another.value) == str(missing.value) and alices.id not in str(another.value)
    with pytest.raises(NotFound):
        store.update(alices.id, lambda c: append(c, "from bob"), owner="bob")
    with pytest.raises(NotFound):
        store.delete(alices.id, owner="bob")
    assert store.search("hello", owner="bob") == []

    store = reopen(store)
    assert store.load(alices.id) == alices  # nothing bob did changed it
    changed = store.update(alices.id, lambda c: append(c, "more"), owner="alice")
    assert store.load(alices.id, owner="alice") == changed
    store.delete(alices.id, owner="alice")
    assert not store.exists(alices.id)


def test_lookups_of_unknown_ids_leave_no_lock_behind(file_store: FileStore) -> None:
    """20,000 REST reads of made-up ids used to leave 20,000 locks in the store."""
    for number in range(20_000):
        with pytest.raises(NotFound):
            file_store.load(f"made-up-{number}")
    with pytest.raises(NotFound):
        file_store.delete("made-up")
    with pytest.raises(NotFound):
        file_store.update("made-up", lambda c: c)

    assert len(file_store._locks) == 0


def test_the_lock_table_empties_after_concurrent_writes(file_store: FileStore) -> None:
    conversations = [chat(f"Chat {n}") for n in range(4)]
    for conversation in conversations:
        file_store.save(conversation)

    def append_many(conversation: Conversation) -> None:
        for number in range(10):
            file_store.update(conversation.id, lambda c, n=number: append(c, f"#{n}"))
            file_store.load(conversation.id)

    run_threads(append_many, conversations * 2)

    assert len(file_store._locks) == 0
    assert all(len(file_store.load(c.id).messages) == 2 + 20 for c in conversations)


def run_threads(target: Callable[[Any], object], arguments: Sequence[Any]) -> None:
    """Run ``target`` on each argument in its own thread; fail on any exception."""
    errors: list[BaseException] = []

    def guarded(argument: Any) -> None:
        try:
            target(argument)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(a,)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def truncated(store: FileStore) -> bytes:
    """A real store file cut in the middle, as a crash of a plain write leaves it."""
    conversation = chat(texts=("a long question " * 20, "a long answer " * 20))
    store.save(conversation)
    raw = file_of(store, conversation.id).read_bytes()
    store.delete(conversation.id)
    return raw[: len(raw) // 2]


CORRUPT_FILES = {
    "truncated": (truncated, "not valid JSON"),
    "garbage": (lambda store: b"\x00\xff not json", "not valid JSON"),
    "empty": (lambda store: b"", "is empty"),
    "a list": (lambda store: b"[1, 2]", "JSON list"),
    "no meta table": (lambda store: b'{"conversation": {}}', "no 'meta' table"),
    "bad version": (
        lambda store: b'{"meta": {"1": {"schema_version": "one"}}}', "no valid schema version"),
    "no conversation": (
        lambda store: b'{"meta": {"1": {"schema_version": 1}}}', "one 'conversation' record"),
    "message without role": (
        lambda store: json.dumps({
            "meta": {"1": {"schema_version": 1}},
            "conversation": {"1": {"id": "bad", "created_at": 1.0, "current_leaf_id": "m"}},
            "messages": {"1": {"id": "m", "parent_id": None, "content": "x", "created_at": 1}},
        }).encode(), "role"),
    "record id not a number": (
        lambda store: json.dumps({
            "meta": {"1": {"schema_version": 1}},
            "conversation": {"one": {"id": "bad", "created_at": 1.0}},
        }).encode(), "'conversation' table that is not a table of records"),
    "messages not records": (
        lambda store: json.dumps({
            "meta": {"1": {"schema_version": 1}},
            "conversation": {"1": {"id": "bad", "created_at": 1.0}},
            "messages": {"1": "hello"},
        }).encode(), "'messages' table that is not a table of records"),
    "version 0 with messages that are not a list": (
        lambda store: b'{"id": "bad", "created_at": 1.0, "messages": 5}',
        "could not be brought from schema 0 to 1"),
    "dangling parent": (
        lambda store: json.dumps({
            "meta": {"1": {"schema_version": 1}},
            "conversation": {"1": {"id": "bad", "created_at": 1.0, "current_leaf_id": "m"}},
            "messages": {"1": {"id": "m", "parent_id": "gone", "role": "user",
                               "content": "x", "created_at": 1}},
        }).encode(), "'gone', which is missing"),
}


@pytest.mark.parametrize("kind", CORRUPT_FILES)
def test_a_corrupt_file_is_set_aside_with_a_readable_problem(
    file_store: FileStore, kind: str,
) -> None:
    make_content, reason = CORRUPT_FILES[kind]
    content = make_content(file_store)
    good = chat("Good")
    file_store.save(good)
    file_store.close()  # the folder changes while chatui is stopped
    file_of(file_store, "bad").write_bytes(content)

    again = reopen_file(file_store)

    assert [s.title for s in again.list()] == ["Good"]
    assert again.load(good.id) == good
    [problem] = again.problems
    assert "bad.json" in problem and reason in problem
    assert "moved to" in problem
    assert not file_of(again, "bad").exists()
    assert (again.data_dir / "corrupt" / "bad.json").read_bytes() == content
    with pytest.raises(NotFound):
        again.load("bad")
    again.close()


def test_a_file_spoiled_while_running_is_set_aside_when_loaded(
    file_store: FileStore,
) -> None:
    spoiled, good = chat("Spoiled"), chat("Good")
    file_store.save(spoiled)
    file_store.save(good)
    file_of(file_store, spoiled.id).write_text('{"meta": ')

    with pytest.raises(StoreCorrupt, match=f"{spoiled.id}.json is not valid JSON"):
        file_store.load(spoiled.id)

    assert [s.title for s in file_store.list()] == ["Good"]
    assert len(file_store.problems) == 1
    assert (file_store.data_dir / "corrupt" / f"{spoiled.id}.json").exists()


def test_an_unreadable_entry_is_reported_and_left_in_place(file_store: FileStore) -> None:
    good = chat("Good")
    file_store.save(good)
    file_store.close()  # the folder changes while chatui is stopped
    file_of(file_store, "folder").mkdir()

    again = reopen_file(file_store)

    [problem] = again.problems
    assert "folder.json" in problem and "Could not read" in problem
    assert file_of(again, "folder").is_dir()
    assert [s.title for s in again.list()] == ["Good"]
    again.close()


def test_a_second_corrupt_copy_does_not_overwrite_the_first(tmp_path: Path) -> None:
    for attempt in range(2):
        (tmp_path / "conversations").mkdir(exist_ok=True)
        (tmp_path / "conversations" / "bad.json").write_text("{" * (attempt + 1))
        with FileStore(tmp_path) as store:
            assert len(store.problems) == 1

    assert (tmp_path / "corrupt" / "bad.json").read_text() == "{"
    assert (tmp_path / "corrupt" / "bad.1.json").read_text() == "{{"


def test_leftover_temp_files_are_removed_at_start(file_store: FileStore) -> None:
    conversation = chat()
    file_store.save(conversation)
    folder = file_store.data_dir / "conversations"
    leftover = folder / f".{conversation.id}.json.k3j2.tmp"
    file_store.close()  # the folder changes while chatui is stopped
    leftover.write_text('{"meta": {"1": {"schema_')

    again = reopen_file(file_store)

    assert sorted(p.name for p in folder.iterdir()) == [f"{conversation.id}.json"]
    assert again.load(conversation.id) == conversation
    assert again.problems == []
    again.close()


def test_a_file_written_before_the_store_protocol_still_loads(file_store: FileStore) -> None:
    folder = file_store.data_dir / "conversations"
    file_store.close()  # the folder changes while chatui is stopped
    (folder / WRITTEN_BEFORE.name).write_bytes(WRITTEN_BEFORE.read_bytes())

    again = reopen_file(file_store)

    assert again.problems == []
    [summary] = again.list(owner="alice")
    conversation = again.load(summary.id, owner="alice")
    assert conversation.title == "Written by chatui before issue 11"
    assert conversation.settings == Settings(system_prompt="Be brief.", model="smollm2",
                                             temperature=0.2, top_k=40, max_tokens=256, seed=7,
                                             rag_enabled=True)
    assert [m.id for m in conversation.messages.values()] == ["m1", "m2", "m3"]
    answer = conversation.message("m2")
    assert answer.sources == (Source(number=1, document="plan.pdf", page=3,
                                     snippet="La gare…", score=0.87, chunk_id=5),)
    assert answer.tool_calls == (ToolCall(id="call_1", name="search",
                                          arguments='{"q": "gare"}'),)
    assert answer.timings == Timings(prompt_tokens=12, generated_tokens=30, ttft_ms=81.5,
                                     tokens_per_second=42.0, total_ms=900.25, source="server")
    assert conversation.message("m1").content == "Où est la gare ? 🚉"
    assert conversation.current_leaf_id == "m3" and summary.message_count == 3

    longer = append(conversation, "still here?")
    again.save(longer)
    written = json.loads((folder / WRITTEN_BEFORE.name).read_text())
    before = json.loads(WRITTEN_BEFORE.read_text())
    assert written.keys() == before.keys() and written["meta"] == before["meta"]
    assert list(written["messages"].values())[:3] == list(before["messages"].values())
    with reopen_file(again) as last:
        assert last.load(conversation.id) == longer


def write_v0(store: FileStore, conversation: Conversation) -> None:
    """A version-0 file: one plain object, as chatui wrote before TinyDB."""
    file_of(store, conversation.id).write_text(json.dumps(conversation_to_dict(conversation)))


def test_a_version_0_file_is_migrated_and_rewritten_as_current_on_save(
    file_store: FileStore,
) -> None:
    conversation = chat("From v0", texts=("old question", "old answer"))
    file_store.close()  # the folder changes while chatui is stopped
    write_v0(file_store, conversation)

    again = reopen_file(file_store)

    assert again.load(conversation.id) == conversation
    assert [s.title for s in again.list()] == ["From v0"]
    again.save(append(conversation, "new question"))
    tables = json.loads(file_of(again, conversation.id).read_text())
    assert tables["meta"]["1"]["schema_version"] == 1
    assert len(tables["messages"]) == 3
    again.close()


def test_migrations_run_in_order_up_to_the_current_version(
    file_store: FileStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def v1_to_v2(document: storage.Tables) -> storage.Tables:
        header = document["conversation"]["1"]
        return {**document, "meta": {"1": {"schema_version": 2}},
                "conversation": {"1": {**header, "title": header["title"] + " (v2)"}}}

    monkeypatch.setattr(storage, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(storage.MIGRATIONS, 1, v1_to_v2)
    conversation = chat("Old")
    file_store.close()  # the folder changes while chatui is stopped
    write_v0(file_store, conversation)

    assert reopen_file(file_store).load(conversation.id).title == "Old (v2)"


def test_a_file_from_a_newer_version_is_reported_and_left_alone(
    file_store: FileStore,
) -> None:
    path = file_of(file_store, "future")
    file_store.close()  # the folder changes while chatui is stopped
    path.write_text('{"meta": {"1": {"schema_version": 99}}}')

    again = reopen_file(file_store)

    assert again.list() == []
    [problem] = again.problems
    assert "future.json" in problem and "newer chatui" in problem
    assert path.exists()
    again.close()


def test_a_second_process_cannot_open_the_same_folder(file_store: FileStore) -> None:
    with pytest.raises(StoreError, match="already open"):
        FileStore(file_store.data_dir)
    file_store.close()
    FileStore(file_store.data_dir).close()


CHILD = textwrap.dedent("""
    import itertools, sys
    from pathlib import Path
    from chatui.filestore import FileStore
    from chatui.tree import add_message, make_message, new_conversation

    store = FileStore(Path(sys.argv[1]))
    ids = [summary.id for summary in store.list()]
    while len(ids) < 3:
        conversation = new_conversation(f"Chat {len(ids)}")
        store.save(conversation)
        ids.append(conversation.id)
    for number in itertools.count():
        conversation = store.load(ids[number % 3])
        text = f"message {number} " + "x" * (number * 37 % 3000)
        message = make_message("user", text, conversation.current_leaf_id)
        store.save(add_message(conversation, message))
        print(message.id, flush=True)
""")


def test_no_saved_message_is_lost_when_the_process_is_killed(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    printed: set[str] = set()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    rounds = 0
    while rounds < 4 or (rounds < 12 and time.monotonic() - started < 8):
        rounds += 1
        printed |= run_and_kill(tmp_path, env, rng)

        with FileStore(tmp_path) as store:
            assert store.problems == [], f"seed {seed}, round {rounds}"
            assert len(store.list()) == 3
            assert store.list() == [  # the catalog says what the files say
                ConversationSummary.of(store.load(summary.id)) for summary in store.list()
            ], f"seed {seed}, round {rounds}"
            stored = {
                message_id
                for summary in store.list()
                for message_id in store.load(summary.id).messages
            }
        missing = printed - stored
        assert not missing, f"seed {seed}, round {rounds}: {len(missing)} saved messages lost"
    assert len(printed) > rounds


def run_and_kill(data_dir: Path, env: dict[str, str], rng: random.Random) -> set[str]:
    """Start the appending child, kill it at a random moment, return the ids it printed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None and child.stderr is not None
        output = "".join(child.stdout.readline() for _ in range(rng.randrange(1, 150)))
        time.sleep(rng.random() * 0.03)
        child.send_signal(signal.SIGKILL)
        child.wait()
        output += child.stdout.read()
        assert child.returncode == -signal.SIGKILL, child.stderr.read()
    finally:
        watchdog.cancel()
        child.kill()
        child.communicate()
    # Ids are printed after save returned; a line the kill cut short is not one.
    return {line for line in output.split("\n")[:-1] if line}
