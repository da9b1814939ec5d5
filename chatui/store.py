"""The conversation store: one TinyDB file per conversation, replaced atomically.

Layout of ``data_dir``::

    conversations/<id>.json   one TinyDB database per conversation, three tables:
                              meta          {"schema_version": 1}
                              conversation  the header (codec.conversation_header)
                              messages      one document per message, oldest first
    corrupt/                  unreadable files, moved here and named in ``problems``
    store.lock                held while a store is open: one process per data_dir

Invariants:

- A save replaces one conversation's file in one atomic step (storage.py). After
  a crash at any instant every file is a whole version of its conversation, so
  a message whose ``save`` returned is on disk.
- A save costs in proportion to that conversation only. The list of
  conversations is an index in memory, built at start by reading every file and
  kept current by each save and delete; no file describes the whole store.
- A file of an older schema is migrated when read (``MIGRATIONS``); the next save
  writes the current version. A file from a newer chatui is reported, left alone.
- A file that cannot be read is moved to ``corrupt/`` and reported; the others load.
- Thread-safe: one lock per conversation orders the reads and writes of its
  file, one lock guards the index. Locks are taken in that order.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tinydb import TinyDB

from chatui.codec import conversation_to_dict
from chatui.errors import InvalidRequest, NotFound, StoreCorrupt, StoreError
from chatui.storage import (
    SCHEMA_VERSION,
    AtomicJSONStorage,
    WriteOnce,
    conversation_of,
    fsync_folder,
    is_safe_id,
    migrate,
    read_json_file,
    remove_temp_files,
    tree_problem,
)
from chatui.tree import Conversation

try:
    import fcntl
except ImportError:  # Windows: no advisory lock, one process is on trust
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A line in the conversation list; ``message_count`` counts every branch."""

    id: str
    title: str
    owner: str
    created_at: float
    updated_at: float
    message_count: int

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationSummary:
        return cls(
            id=conversation.id, title=conversation.title, owner=conversation.owner,
            created_at=conversation.created_at, updated_at=conversation.updated_at,
            message_count=len(conversation.messages),
        )


class ConversationStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._folder = self.data_dir / "conversations"
        self._corrupt = self.data_dir / "corrupt"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_data_dir(self.data_dir)
        self._index_lock = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._index: dict[str, ConversationSummary] = {}
        self._problems: builtins.list[str] = []
        remove_temp_files(self._folder)
        for path in sorted(self._folder.glob("*.json")):
            try:
                conversation = self._read(path)
            except StoreError as error:
                self._report(str(error), drop=path.stem)
                continue
            self._index[conversation.id] = ConversationSummary.of(conversation)

    def close(self) -> None:
        """Release the data folder for another process; the store is not usable after."""
        self._lock_file.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def problems(self) -> builtins.list[str]:
        """Files that could not be read, each with what is wrong and where it went."""
        with self._index_lock:
            return builtins.list(self._problems)

    def exists(self, conversation_id: str) -> bool:
        with self._index_lock:
            return conversation_id in self._index

    def save(self, conversation: Conversation) -> None:
        """Write the whole conversation, replacing what was stored under its id."""
        problem = tree_problem(conversation)
        if problem:
            raise InvalidRequest(f"Conversation {conversation.id} was not saved: {problem}.")
        with self._lock_for(conversation.id):
            self._write(conversation)
            with self._index_lock:
                self._index[conversation.id] = ConversationSummary.of(conversation)

    def load(self, conversation_id: str) -> Conversation:
        if not is_safe_id(conversation_id):
            raise NotFound(f"There is no conversation {conversation_id!r}.")
        with self._lock_for(conversation_id):
            return self._read(self._path(conversation_id))

    def update(
        self, conversation_id: str, change: Callable[[Conversation], Conversation]
    ) -> Conversation:
        """Load, apply ``change`` and save, with no other write in between."""
        with self._lock_for(conversation_id):
            changed = change(self.load(conversation_id))
            if changed.id != conversation_id:
                raise InvalidRequest("A conversation cannot change its id.")
            self.save(changed)
            return changed

    def delete(self, conversation_id: str) -> None:
        if not is_safe_id(conversation_id):
            raise NotFound(f"There is no conversation {conversation_id!r}.")
        with self._lock_for(conversation_id):
            try:
                self._path(conversation_id).unlink()
            except FileNotFoundError:
                self._forget(conversation_id)
                raise NotFound(f"There is no conversation {conversation_id!r}.") from None
            except OSError as error:
                raise StoreError(
                    f"Could not delete conversation {conversation_id}: {error}."
                ) from error
            self._forget(conversation_id)
            fsync_folder(self._folder)

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Summaries, most recently updated first; only ``owner``'s when given."""
        with self._index_lock:
            summaries = builtins.list(self._index.values())
        if owner is not None:
            summaries = [s for s in summaries if s.owner == owner]
        return sorted(summaries, key=lambda s: (s.updated_at, s.created_at, s.id), reverse=True)

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Conversations whose title or any message contains ``text``, ignoring case.

        Reads the files of conversations whose title does not match: the cost
        grows with the store (about a second for 10,000 small conversations).
        """
        needle = text.casefold()
        return [
            summary for summary in self.list(owner)
            if needle in summary.title.casefold() or self._mentions(summary.id, needle)
        ]

    def _mentions(self, conversation_id: str, needle: str) -> bool:
        try:
            conversation = self.load(conversation_id)
        except (NotFound, StoreError):
            return False  # deleted meanwhile, or set aside and reported
        return any(needle in m.content.casefold() for m in conversation.messages.values())

    def _path(self, conversation_id: str) -> Path:
        return self._folder / f"{conversation_id}.json"

    def _lock_for(self, conversation_id: str) -> threading.RLock:
        # Locks are never dropped: a dropped lock could be held by one thread
        # while another makes a fresh one for the same conversation.
        with self._index_lock:
            return self._locks.setdefault(conversation_id, threading.RLock())

    def _write(self, conversation: Conversation) -> None:
        header = conversation_to_dict(conversation)
        messages = header.pop("messages")
        storage = WriteOnce(AtomicJSONStorage, start_empty=True)
        database = TinyDB(self._path(conversation.id), storage=storage)
        try:
            database.table("meta").insert({"schema_version": SCHEMA_VERSION})
            database.table("conversation").insert(header)
            database.table("messages").insert_multiple(messages)
            storage.commit()
        finally:
            database.close()

    def _read(self, path: Path) -> Conversation:
        """The conversation in ``path``; a corrupt file is set aside and reported."""
        try:
            return conversation_of(migrate(read_json_file(path), path), path)
        except FileNotFoundError:
            self._forget(path.stem)
            raise NotFound(f"There is no conversation {path.stem!r}.") from None
        except StoreCorrupt as error:
            try:
                report = f"{error} It was moved to {self._set_aside(path)}."
            except OSError as move_error:
                report = f"{error} It could not be moved aside ({move_error})."
            self._report(report, drop=path.stem)
            raise StoreCorrupt(report) from None
        except StoreError as error:
            self._report(str(error), drop=path.stem)
            raise
        except OSError as error:  # perhaps passing (too many open files): not set aside
            raise StoreError(f"Could not read {path}: {error}.") from error

    def _forget(self, conversation_id: str) -> None:
        with self._index_lock:
            self._index.pop(conversation_id, None)

    def _report(self, problem: str, drop: str) -> None:
        """Record a problem once; the conversation leaves the index until it reads well."""
        with self._index_lock:
            self._index.pop(drop, None)
            if problem not in self._problems:
                self._problems.append(problem)

    def _set_aside(self, path: Path) -> Path:
        self._corrupt.mkdir(exist_ok=True)
        target = self._corrupt / path.name
        number = 1
        while target.exists():
            target = self._corrupt / f"{path.stem}.{number}{path.suffix}"
            number += 1
        os.replace(path, target)
        fsync_folder(self._folder)
        fsync_folder(self._corrupt)
        return target


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    handle = open(data_dir / "store.lock", "a+b")  # noqa: SIM115 - held until close()
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreError(
            f"The conversations in {data_dir} are already open in another chatui "
            "process; close it first."
        ) from None
    return handle
