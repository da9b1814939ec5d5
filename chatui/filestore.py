"""The app's conversation store: one TinyDB file per conversation, replaced atomically.

Layout of ``data_dir``::

    conversations/<id>.json   one TinyDB database per conversation (storage.py):
                              meta          {"schema_version": 1}
                              conversation  the header (codec.conversation_header)
                              messages      one document per message, oldest first
    corrupt/                  unreadable files, moved here and named in ``problems``
    store.lock                held while a store is open: one process per data_dir

Invariants (besides the ``ConversationStore`` contract in store.py):

- A save replaces one conversation's file in one atomic step (storage.py). After
  a crash at any instant every file is a whole version of its conversation, so
  a message whose ``save`` returned is on disk.
- A save costs in proportion to that conversation only. The list of
  conversations is an index in memory, built at start by reading every file and
  kept current by each save and delete; no file describes the whole store.
- A file of an older schema is migrated when read (``storage.MIGRATIONS``); the
  next save writes the current version. A file from a newer chatui is reported,
  left alone.
- A file that cannot be read is moved to ``corrupt/`` and reported; the others load.
- Thread-safe: a lock per conversation (held only while in use, ``locks.py``)
  orders the reads and writes of its file, one lock guards the index. Locks are
  taken in that order.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Self

from chatui.codec import is_safe_id, tree_problem
from chatui.errors import InvalidRequest, NotFound, StoreCorrupt, StoreError
from chatui.locks import KeyedLocks
from chatui.storage import (
    fsync_folder,
    read_conversation,
    remove_temp_files,
    write_conversation,
)
from chatui.store import (
    CacheStats,
    ConversationSummary,
    mentions,
    newest_first,
    not_found,
    owned,
)
from chatui.tree import Conversation

try:
    import fcntl
except ImportError:  # Windows: no advisory lock, one process is on trust
    fcntl = None  # type: ignore[assignment]


class FileStore:
    """A ``ConversationStore`` on a data folder, which it holds until ``close``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._folder = self.data_dir / "conversations"
        self._corrupt = self.data_dir / "corrupt"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_data_dir(self.data_dir)
        self._index_lock = threading.Lock()
        self._locks = KeyedLocks()
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def problems(self) -> builtins.list[str]:
        """Files that could not be read, each with what is wrong and where it went."""
        with self._index_lock:
            return builtins.list(self._problems)

    def stats(self) -> CacheStats | None:
        return None

    def exists(self, conversation_id: str, owner: str | None = None) -> bool:
        with self._index_lock:
            summary = self._index.get(conversation_id)
        return summary is not None and (owner is None or summary.owner == owner)

    def save(self, conversation: Conversation) -> None:
        problem = tree_problem(conversation)
        if problem:
            raise InvalidRequest(f"Conversation {conversation.id} was not saved: {problem}.")
        with self._locks.hold(conversation.id):
            write_conversation(self._path(conversation.id), conversation)
            with self._index_lock:
                self._index[conversation.id] = ConversationSummary.of(conversation)

    def load(self, conversation_id: str, owner: str | None = None) -> Conversation:
        if not is_safe_id(conversation_id) or (
            owner is not None and not self.exists(conversation_id, owner)
        ):
            raise not_found(conversation_id, owner)
        with self._locks.hold(conversation_id):
            try:
                return owned(self._read(self._path(conversation_id)), owner)
            except NotFound:
                raise not_found(conversation_id, owner) from None

    def update(
        self, conversation_id: str, change: Callable[[Conversation], Conversation],
        owner: str | None = None,
    ) -> Conversation:
        with self._locks.hold(conversation_id):
            changed = change(self.load(conversation_id, owner))
            if changed.id != conversation_id:
                raise InvalidRequest("A conversation cannot change its id.")
            self.save(changed)
            return changed

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        if not is_safe_id(conversation_id):
            raise not_found(conversation_id, owner)
        with self._locks.hold(conversation_id):
            if owner is not None:
                self.load(conversation_id, owner)  # another's, or unreadable: not deleted
            try:
                self._path(conversation_id).unlink()
            except FileNotFoundError:
                self._forget(conversation_id)
                raise not_found(conversation_id, owner) from None
            except OSError as error:
                raise StoreError(
                    f"Could not delete conversation {conversation_id}: {error}."
                ) from error
            self._forget(conversation_id)
            fsync_folder(self._folder)

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        with self._index_lock:
            summaries = builtins.list(self._index.values())
        return newest_first(summaries, owner)

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Matching conversations, newest first.

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
        return mentions(conversation, needle)

    def _path(self, conversation_id: str) -> Path:
        return self._folder / f"{conversation_id}.json"

    def _read(self, path: Path) -> Conversation:
        """The conversation in ``path``; a corrupt file is set aside and reported."""
        try:
            return read_conversation(path)
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
