"""The file store's catalog (catalog.py): trusted when it may be, healed from the files when not.

The files stay the record; these tests change the files or the catalog behind
the store's back (a process killed between the file and the catalog write, a
catalog deleted, garbled or stale) and check that what the store lists and
finds is what the files say.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from chatui import catalog, filestore
from chatui.catalog import FILE_NAME, time_step_ns
from chatui.errors import StoreError
from chatui.filestore import FileStore
from chatui.storage import read_conversation, write_conversation
from chatui.store import ConversationSummary
from chatui.tree import (
    Conversation,
    add_message,
    delete_subtree,
    make_message,
    new_conversation,
    rename,
    replace_message,
)
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[FileStore]:
    with FileStore(tmp_path) as opened:
        yield opened


def chat(title: str, *texts: str, owner: str = "local", now: float = 1000.0) -> Conversation:
    conversation = new_conversation(title, owner=owner, now=now)
    for number, text in enumerate(texts):
        role = "user" if number % 2 == 0 else "assistant"
        message = make_message(role, text, conversation.current_leaf_id, now=now + number + 1)
        conversation = add_message(conversation, message)
    return conversation


def from_files(data_dir: Path) -> list[ConversationSummary]:
    """What the files say, read one by one: the list the catalog must give."""
    found = [
        ConversationSummary.of(read_conversation(path))
        for path in (data_dir / "conversations").glob("*.json")
    ]
    return sorted(found, key=lambda s: s.order, reverse=True)


def close_cleanly(store: FileStore) -> None:
    """Close once the folder's last change is a clock step old, so the next open may trust."""
    folder = store.data_dir / "conversations"
    mtime = folder.stat().st_mtime_ns
    wait_until(lambda: time.time_ns() - mtime > 2 * time_step_ns(mtime),
               message="the clock did not move")
    store.close()


def no_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> Conversation:
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(filestore, "read_conversation", refuse)


def test_a_cleanly_closed_store_opens_lists_and_searches_without_reading_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FileStore(tmp_path) as store:
        for number in range(30):
            store.save(chat(f"Chat {number}", "hello", f"answer number {number}", now=number))
        close_cleanly(store)

    no_file_reads(monkeypatch)
    with FileStore(tmp_path) as again:
        assert [s.title for s in again.page("local", 3).items] == ["Chat 29", "Chat 28", "Chat 27"]
        assert [s.title for s in again.search("ANSWER NUMBER 17")] == ["Chat 17"]
        assert again.exists(again.list()[0].id) and len(again.list()) == 30


def test_files_changed_while_chatui_was_stopped_are_seen_at_the_next_open(
    tmp_path: Path,
) -> None:
    kept, renamed = chat("Kept", now=1.0), chat("Old title", now=2.0)
    removed = chat("Gone", now=3.0)
    with FileStore(tmp_path) as store:
        for conversation in (kept, renamed, removed):
            store.save(conversation)
        close_cleanly(store)
    folder = tmp_path / "conversations"
    (folder / f"{removed.id}.json").unlink()
    write_conversation(folder / f"{renamed.id}.json", rename(renamed, "Restored from backup"))
    added = chat("Copied in", "zanzibar", now=4.0)
    write_conversation(folder / f"{added.id}.json", added)

    with FileStore(tmp_path) as again:
        assert again.list() == from_files(tmp_path)
        assert [s.title for s in again.list()] == ["Restored from backup", "Copied in", "Kept"]
        assert [s.id for s in again.search("Zanzibar")] == [added.id]


def test_a_file_rewritten_in_place_is_reindexed_when_loaded(tmp_path: Path) -> None:
    """An edit that leaves the folder's mtime alone is caught by the next load of it."""
    conversation = chat("Before", "first words")
    with FileStore(tmp_path) as store:
        store.save(conversation)
        close_cleanly(store)
    path = tmp_path / "conversations" / f"{conversation.id}.json"
    edited = add_message(rename(conversation, "After"),
                         make_message("user", "edited in place", conversation.current_leaf_id))
    path.write_bytes(_bytes_of(edited, tmp_path))  # same inode, folder untouched

    with FileStore(tmp_path) as again:
        assert again.load(conversation.id) == edited
        assert [s.title for s in again.list()] == ["After"]
        assert [s.id for s in again.search("edited in place")] == [conversation.id]


def _bytes_of(conversation: Conversation, scratch: Path) -> bytes:
    other = scratch / "scratch.json"
    write_conversation(other, conversation)
    return other.read_bytes()


@pytest.mark.parametrize("spoil", ["delete", "garbage", "truncate", "other version", "stale"])
def test_a_missing_garbled_or_stale_catalog_is_rebuilt_from_the_files(
    tmp_path: Path, spoil: str,
) -> None:
    with FileStore(tmp_path) as store:
        for number in range(5):
            store.save(chat(f"Chat {number}", f"text {number}", now=number))
        gone = chat("Deleted", now=9.0)
        store.save(gone)
        store.delete(gone.id)
    catalog = tmp_path / FILE_NAME
    if spoil == "delete":
        catalog.unlink()
    elif spoil == "garbage":
        catalog.write_bytes(b"not a database at all " * 100)
    elif spoil == "truncate":
        catalog.write_bytes(catalog.read_bytes()[:1000])
    else:
        with sqlite3.connect(catalog) as db:
            if spoil == "other version":
                db.execute("UPDATE meta SET value = 99 WHERE key = 'version'")
            else:  # the state a crash leaves, with rows that lie
                db.execute("UPDATE meta SET value = 'open' WHERE key = 'state'")
                db.execute("UPDATE summaries SET title = 'wrong', mtime_ns = 0 "
                           "WHERE title = 'Chat 1'")
                db.execute("DELETE FROM summaries WHERE title = 'Chat 2'")
                db.execute("INSERT INTO summaries (id, owner, title, created_at, updated_at, "
                           "message_count, preview, ino, mtime_ns, size, folded) "
                           "VALUES ('ghost', 'local', 'Ghost', 1, 99, 0, '', 1, 1, 1, 'ghost')")
        db.close()

    with FileStore(tmp_path) as again:
        assert again.problems == []
        assert again.list() == from_files(tmp_path)
        assert [s.title for s in again.list()] == [f"Chat {n}" for n in (4, 3, 2, 1, 0)]
        assert [s.title for s in again.search("text 2")] == ["Chat 2"]
        assert not again.exists("ghost")


def test_a_catalog_of_the_version_before_is_rebuilt_once_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Version 1 kept one text row per conversation: an upgrade reads every file once,
    telling the terminal why it takes a while; the next start reads none."""
    with FileStore(tmp_path) as store:
        for number in range(3):
            store.save(chat(f"Chat {number}", f"text {number}", now=float(number)))
        close_cleanly(store)
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("UPDATE meta SET value = 1 WHERE key = 'version'")
    db.close()

    with caplog.at_level("INFO", logger="chatui"), FileStore(tmp_path) as again:
        assert [s.title for s in again.search("text 1")] == ["Chat 1"]
        close_cleanly(again)
    assert "Building the chat index from the 3 files" in caplog.text
    assert "Chat index built in" in caplog.text

    caplog.clear()
    with caplog.at_level("INFO", logger="chatui"), FileStore(tmp_path) as third:
        assert len(third.list()) == 3
    assert "chat index" not in caplog.text.lower()


def test_a_catalog_that_cannot_be_opened_is_a_store_error_in_words(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # neither a database nor something to delete

    with pytest.raises(StoreError, match="catalog"):
        FileStore(tmp_path)
    (tmp_path / FILE_NAME).rmdir()
    FileStore(tmp_path).close()  # the folder's lock was released


CRASHING_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from chatui import catalog
    from chatui.filestore import FileStore
    from chatui.tree import add_message, make_message, new_conversation, rename

    store = FileStore(Path(sys.argv[1]))
    [edited_id, deleted_id] = sys.argv[2:4]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    step = sys.argv[4]
    if step == "save":
        conversation = store.load(edited_id)
        changed = add_message(rename(conversation, "Changed before the crash"),
                              make_message("user", "quetzalcoatl", conversation.current_leaf_id))
        catalog.Catalog.put = die  # the file is written; the catalog write never happens
        store.save(changed)
    elif step == "new":
        catalog.Catalog.put = die
        store.save(new_conversation("Born in the crash"))
    else:
        catalog.Catalog.remove = die
        store.delete(deleted_id)
    print("not killed", flush=True)
""")


@pytest.mark.parametrize("step", ["save", "new", "delete"])
def test_a_crash_between_the_file_and_the_catalog_heals_at_the_next_open(
    tmp_path: Path, step: str,
) -> None:
    edited, deleted = chat("Edited", "hello", now=1.0), chat("Deleted", now=2.0)
    with FileStore(tmp_path) as store:
        store.save(edited)
        store.save(deleted)
        close_cleanly(store)  # so only the crash can make the next open distrust the catalog

    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(tmp_path), edited.id, deleted.id, step],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert child.returncode == -9, child.stdout + child.stderr

    with FileStore(tmp_path) as again:
        assert again.problems == []
        assert again.list() == from_files(tmp_path)
        titles = {s.title for s in again.list()}
        if step == "save":
            assert titles == {"Changed before the crash", "Deleted"}
            assert [s.id for s in again.search("QUETZAL")] == [edited.id]
        elif step == "new":
            assert titles == {"Edited", "Deleted", "Born in the crash"}
        else:
            assert titles == {"Edited"} and not again.exists(deleted.id)


def test_a_file_left_unread_is_reported_again_at_a_trusted_open(tmp_path: Path) -> None:
    with FileStore(tmp_path) as store:
        store.save(chat("Good"))
        store.close()
    future = tmp_path / "conversations" / "future.json"
    future.write_text('{"meta": {"1": {"schema_version": 99}}}')
    with FileStore(tmp_path) as store:
        [problem] = store.problems
        close_cleanly(store)

    with FileStore(tmp_path) as again:
        assert again.problems == [problem] and "newer chatui" in problem
        assert [s.title for s in again.list()] == ["Good"]
    future.unlink()
    with FileStore(tmp_path) as last:
        assert last.problems == []


@pytest.mark.parametrize("needle", [
    '"', '""', "'", "*", "a*", "NEAR(a b)", "x OR y", "^abc", "\x00", "\x00\x00\x00", "\x1e",
    "(", ")", ":", "-", "title:abc", "\ud83d", "\ud83dabc", "%", "_", "%_%", "\\", "a" * 5000,
])
def test_search_takes_any_text_literally(file_store: FileStore, needle: str) -> None:
    file_store.save(chat("Plain", "nothing special here"))
    special = chat(f"Special {needle}", f"before {needle} after", now=2000.0)
    file_store.save(special)

    found = [s.id for s in file_store.search(needle)]
    page = file_store.page("local", 10, search=needle)

    if needle in ("\ud83d", "\ud83dabc"):  # stored as "?": no promise but no error
        return
    assert special.id in found
    assert [s.id for s in page.items] == (found if needle.strip() else [
        s.id for s in file_store.list()])  # a blank search is no search
    if needle.strip() and needle not in ("\x1e",):
        assert len(found) == 1 or needle in "nothing special here"


@pytest.mark.parametrize(("needle", "expected"), [
    ("ÉCOLE", ["French"]), ("straße", ["German"]), ("À ABI", ["French"]),
    ("end\x1estart", []), ("end start", []), ("end", ["Two"]), ("TW", ["Two"]),
    ("Ab", []), ("é", []),  # 1 or 2 characters: titles only
])
def test_search_is_a_substring_ignoring_case_within_one_message(
    file_store: FileStore, needle: str, expected: list[str],
) -> None:
    file_store.save(chat("Two", "the end", "start again", now=1.0))
    file_store.save(chat("French", "une école à abidjan", now=2.0))
    file_store.save(chat("German", "die Straße", now=3.0))
    file_store.save(chat("Short", "AB", now=4.0))

    assert [s.title for s in file_store.search(needle)] == expected


def indexed_rows(data_dir: Path) -> dict[int, str]:
    """The catalog's full-text rows, rowid -> text, read behind the store's back."""
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        rows = dict(db.execute("SELECT rowid, body FROM texts").fetchall())
    db.close()
    return rows


def test_a_save_indexes_again_only_what_changed(tmp_path: Path) -> None:
    """Adding a message to a long chat indexes that message, not the chat: the rows of
    the others stay as they were. An edit, a deleted branch, a new title are found
    as they now are, and what they replaced is not."""
    with FileStore(tmp_path) as store:
        long_chat = chat("Long chat", *(f"message number {n}" for n in range(40)))
        store.save(long_chat)
        before = indexed_rows(tmp_path)
        question = make_message("user", "one more question", long_chat.current_leaf_id)
        longer = add_message(long_chat, question)
        store.save(longer)
        after = indexed_rows(tmp_path)

        assert len(before) == 41  # the title and 40 messages
        assert {r: after[r] for r in before} == before  # none written again
        assert sorted(set(after.values()) - set(before.values())) == ["one more question"]

        first = next(iter(longer.messages.values()))
        edited = replace_message(longer, replace(first, content="an edited first message"))
        edited = delete_subtree(rename(edited, "Renamed"), question.id)
        store.save(edited)
        rows = indexed_rows(tmp_path)

        unchanged = {r: t for r, t in before.items() if t not in ("message number 0", "Long chat")}
        assert {r: rows.get(r) for r in unchanged} == unchanged
        assert sorted(set(rows.values()) - set(unchanged.values())) == [
            "Renamed", "an edited first message"]
        assert len(rows) == 41
        for gone in ("message number 0", "Long chat", "one more question"):
            assert store.search(gone) == []
        for found in ("an edited first", "Renamed", "message number 39"):
            assert [s.id for s in store.search(found)] == [long_chat.id]
        store.delete(long_chat.id)
        assert indexed_rows(tmp_path) == {}


@pytest.mark.parametrize("matching", [
    range(0, 40, 2),  # many, spread: the walk of the newest fills each page
    range(0, 6),  # many, but only among the oldest: the walk comes back short, then sorts
    range(37, 40),  # few: sorted at once
])
def test_a_search_with_many_matches_pages_exactly_like_one_with_few(
    file_store: FileStore, monkeypatch: pytest.MonkeyPatch, matching: range,
) -> None:
    monkeypatch.setattr(catalog, "FEW", 4)
    monkeypatch.setattr(catalog, "WALK", 12)
    for number in range(40):
        word = "Zebra crossing" if number in matching else "nothing"
        file_store.save(chat(f"Chat {number}", "hello", f"a {word} here", now=float(number)))
    file_store.save(chat("Bob's zebra", "zebra crossing", owner="bob", now=100.0))

    pages = [file_store.page("local", 3, search="zebra CROSS")]
    while pages[-1].next_cursor is not None:
        pages.append(file_store.page("local", 3, pages[-1].next_cursor, "zebra CROSS"))

    titles = [s.title for page in pages for s in page.items]
    assert titles == [f"Chat {n}" for n in sorted(matching, reverse=True)]
    assert [s.title for s in file_store.search("zebra cross", owner="local")] == titles


def test_a_catalog_write_that_fails_loses_no_message_and_heals_at_the_next_open(
    tmp_path: Path,
) -> None:
    conversation = chat("Before", "hello")
    with FileStore(tmp_path) as store:
        store.save(conversation)
        blocker = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the index: SQLite says locked
        changed = rename(conversation, "After")
        with pytest.raises(StoreError, match=r"index .* could not be written .* files are the"):
            store.save(changed)
        blocker.execute("ROLLBACK")
        blocker.close()
        assert store.load(conversation.id) == changed  # the file, the record, has it

    with FileStore(tmp_path) as again:
        assert [s.title for s in again.list()] == ["After"]
