"""Group commit in the file store: saves that queue up share one fsync of the folder.

The first save's file write is held at a gate so that the others queue behind
it, as they do when 50 answers store their questions at once; then what each
caller is told, and what is on disk, is checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui import filestore, storage
from chatui.errors import StoreError
from chatui.filestore import FileStore
from chatui.savequeue import MAX_BATCH
from chatui.tree import Conversation, add_message, make_message, new_conversation
from tests.polling import PATIENCE, wait_until


def chat(number: int) -> Conversation:
    conversation = new_conversation(f"Chat {number}", owner="alice")
    return add_message(conversation, make_message("user", f"question {number}", None))


class Disk:
    """``write_conversation`` and ``fsync_folder`` as the store calls them, logged in order;
    the first write waits at ``gate``, and a write of a chat named in ``broken`` fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.broken: set[str] = set()
        self._lock = threading.Lock()
        write, sync = storage.write_conversation, storage.fsync_folder

        def write_conversation(path: Path, conversation: Conversation, **kwargs: Any) -> None:
            if not self.log:
                self.log.append(("held", conversation.title))
                self.gate.wait(PATIENCE)
            if conversation.title in self.broken:
                raise StoreError(f"{conversation.title}: the disk said no.")
            write(path, conversation, **kwargs)
            with self._lock:
                self.log.append(("written", conversation.title))

        def fsync_folder(folder: Path) -> None:
            sync(folder)
            with self._lock:
                self.log.append(("folder synced", ""))

        monkeypatch.setattr(filestore, "write_conversation", write_conversation)
        monkeypatch.setattr(filestore, "fsync_folder", fsync_folder)

    def syncs(self) -> int:
        return sum(1 for event, _ in self.log if event == "folder synced")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileStore]:
    with FileStore(tmp_path) as opened:
        yield opened


def save_in_threads(store: FileStore, chats: list[Conversation]
                    ) -> tuple[list[threading.Thread], dict[str, BaseException | None]]:
    told: dict[str, BaseException | None] = {}

    def save(conversation: Conversation) -> None:
        try:
            store.save(conversation)
        except BaseException as error:
            told[conversation.title] = error
        else:
            told[conversation.title] = None

    threads = [threading.Thread(target=save, args=(c,)) for c in chats]
    for thread in threads:
        thread.start()
    return threads, told


def queued(store: FileStore, count: int) -> Callable[[], bool]:
    return lambda: len(store._saves._queue) == count


def test_saves_that_queue_share_a_folder_fsync_and_each_is_on_disk_when_told(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    chats = [chat(n) for n in range(1 + 2 * MAX_BATCH)]
    first, told = save_in_threads(store, chats[:1])
    wait_until(lambda: disk.log == [("held", "Chat 0")], message="the first write began")
    rest, told_rest = save_in_threads(store, chats[1:])
    wait_until(queued(store, 2 * MAX_BATCH), message="the others did not queue")
    assert told == told_rest == {}  # nobody is told "saved" before the folder is synced
    disk.gate.set()
    for thread in first + rest:
        thread.join(PATIENCE)
    assert {**told, **told_rest} == {c.title: None for c in chats}
    assert disk.syncs() == 3  # the held one, then two full batches: not 17 fsyncs
    for conversation in chats:  # each write came before a folder fsync that it waited for
        written = disk.log.index(("written", conversation.title))
        assert ("folder synced", "") in disk.log[written:]
    assert all(store.load(c.id).messages == c.messages for c in chats)  # read from the files


def test_a_save_that_fails_is_told_so_and_the_rest_of_its_batch_is_kept(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    disk.broken.add("Chat 2")
    chats = [chat(n) for n in range(4)]
    first, told = save_in_threads(store, chats[:1])
    wait_until(lambda: disk.log == [("held", "Chat 0")], message="the first write began")
    rest, told_rest = save_in_threads(store, chats[1:])
    wait_until(queued(store, 3), message="the others did not queue")
    disk.gate.set()
    for thread in first + rest:
        thread.join(PATIENCE)
    told.update(told_rest)
    assert isinstance(told.pop("Chat 2"), StoreError)
    assert told == {"Chat 0": None, "Chat 1": None, "Chat 3": None}
    assert {c.title for c in store.list()} == {"Chat 0", "Chat 1", "Chat 3"}


def test_closing_writes_what_is_queued_then_refuses_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    store = FileStore(tmp_path)
    chats = [chat(n) for n in range(3)]
    threads, told = save_in_threads(store, chats[:1])
    wait_until(lambda: disk.log == [("held", "Chat 0")], message="the first write began")
    more, told_more = save_in_threads(store, chats[1:])
    wait_until(queued(store, 2), message="the others did not queue")
    closing = threading.Thread(target=store.close)
    closing.start()
    disk.gate.set()
    closing.join(PATIENCE)
    for thread in threads + more:
        thread.join(PATIENCE)
    assert {**told, **told_more} == {c.title: None for c in chats}
    with pytest.raises(StoreError, match="closed"):
        store._saves.put(chat(9))
    with FileStore(tmp_path) as again:
        assert {c.title for c in again.list()} == {"Chat 0", "Chat 1", "Chat 2"}
