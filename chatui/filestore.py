"""The app's conversation store: one TinyDB file per conversation, replaced atomically.

Layout of ``data_dir``::

    conversations/<id>.json   one TinyDB database per conversation (storage.py):
                              meta          {"schema_version": 1}
                              conversation  the header (codec.conversation_header)
                              messages      one document per message, oldest first
    catalog.sqlite3           summaries and full-text index of them all (catalog.py),
                              derived from the files, rebuilt when it cannot be trusted
    corrupt/                  unreadable files, moved here and named in ``problems``
    store.lock                held while a store is open: one process per data_dir

Invariants (besides the ``ConversationStore`` contract in store.py):

- A save replaces one conversation's file in one atomic step (storage.py). After
  a crash at any instant every file is a whole version of its conversation, so
  a message whose ``save`` returned is on disk. Saves are written by one thread,
  a few at a time, with one fsync of the folder for them all (``savequeue``).
- A save costs in proportion to that conversation only: its file, then its
  row in the catalog. Opening, a page of the list and a search cost the same
  whatever the number of conversations: they read the catalog, which each save
  and delete keeps current. The files stay the record: the catalog is checked
  at open (``catalog.py``: a crash, or files changed while chatui was stopped,
  make the store re-read what changed) and rebuilt if missing or unreadable.
  While open, the store owns the folder (the lock): a file changed behind its
  back is noticed when it is loaded, or at the next open after an unclean close.
- A file of an older schema is migrated when read (``storage.MIGRATIONS``); the
  next save writes the current version. A file from a newer chatui is reported,
  left alone.
- A file that cannot be read is moved to ``corrupt/`` and reported; the others load.
  One left in place (from a newer chatui, or unreadable) is reported at each open.
- Thread-safe: a lock per conversation (held only while in use, ``locks.py``)
  orders the reads and writes of its file, the catalog's lock its rows. Locks
  are taken in that order.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Self

from chatui.catalog import FILE_NAME, Catalog, Stamp
from chatui.codec import is_safe_id, tree_problem
from chatui.errors import InvalidRequest, NotFound, StoreCorrupt, StoreError
from chatui.locks import KeyedLocks
from chatui.savequeue import Save, SaveQueue
from chatui.storage import (
    fsync_folder,
    read_conversation,
    remove_temp_files,
    write_conversation,
)
from chatui.store import (
    CacheStats,
    ConversationPage,
    ConversationSummary,
    check_limit,
    decode_cursor,
    encode_cursor,
    not_found,
    owned,
)
from chatui.tree import Conversation

log = logging.getLogger("chatui")

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
        self._problems_lock = threading.Lock()
        self._locks = KeyedLocks()
        self._saves: SaveQueue[Conversation] = SaveQueue(self._write_saves)
        self._problems: builtins.list[str] = []
        self._own_mtime = 0  # the folder's mtime after the store's last change to it
        try:
            self._catalog = Catalog(self.data_dir / FILE_NAME)
            if self._catalog.is_clean(self._folder_mtime()):
                self._problems = [problem for _, problem in self._catalog.unreadable().values()]
            else:  # a crash, or files changed while stopped (temporary files: only a crash)
                remove_temp_files(self._folder)
                self._reconcile()
            self._catalog.mark_open()
            self._own_mtime = self._folder_mtime()
        except BaseException:
            self._lock_file.close()
            raise

    def close(self) -> None:
        """Release the data folder for another process; the store is not usable after.

        The catalog is marked clean only if the folder is as the store's own
        writes left it; otherwise the next open checks every file.
        """
        if self._lock_file.closed:
            return
        try:
            self._saves.close()  # what is queued is written first
            mtime = self._folder_mtime()
            if mtime == self._own_mtime:
                self._catalog.mark_closed(mtime, time.time_ns())
            self._catalog.close()
        finally:
            self._lock_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def problems(self) -> builtins.list[str]:
        """Files that could not be read, each with what is wrong and where it went."""
        with self._problems_lock:
            return builtins.list(self._problems)

    def stats(self) -> CacheStats | None:
        return None

    def exists(self, conversation_id: str, owner: str | None = None) -> bool:
        found = self._catalog.owner_of(conversation_id)
        return found is not None and (owner is None or found == owner)

    def save(self, conversation: Conversation) -> None:
        problem = tree_problem(conversation)
        if problem:
            raise InvalidRequest(f"Conversation {conversation.id} was not saved: {problem}.")
        with self._locks.hold(conversation.id):  # held while queued: one order per file
            self._saves.put(conversation)

    def _write_saves(self, batch: Sequence[Save[Conversation]]) -> None:
        """The writer's part of ``save`` (``savequeue``): each file, one folder fsync, the
        catalog; a save that fails gets its error, the others go on."""
        written: builtins.list[tuple[Save[Conversation], Path]] = []
        for save in batch:
            path = self._path(save.item.id)
            try:
                write_conversation(path, save.item, sync_folder=False)
            except Exception as error:
                save.error = error
            else:
                written.append((save, path))
        try:
            if written:
                fsync_folder(self._folder)
        except OSError as error:
            for save, _ in written:
                save.error = StoreError(
                    f"Could not write {self._folder}: {error.strerror or error}.")
            return
        for save, path in written:
            try:
                self._index(save.item, path)
            except Exception as error:
                save.error = error

    def load(self, conversation_id: str, owner: str | None = None) -> Conversation:
        if not is_safe_id(conversation_id) or (
            owner is not None and not self.exists(conversation_id, owner)
        ):
            raise not_found(conversation_id, owner)
        path = self._path(conversation_id)
        with self._locks.hold(conversation_id):
            try:
                conversation = self._read(path)
            except NotFound:
                raise not_found(conversation_id, owner) from None
            self._heal(conversation, path)
            return owned(conversation, owner)

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
            self._note_own_change()

    def list(self, owner: str | None = None) -> builtins.list[ConversationSummary]:
        return self._catalog.newest(owner)

    def search(self, text: str, owner: str | None = None) -> builtins.list[ConversationSummary]:
        """Matching conversations, newest first, from the catalog's full-text index."""
        return self._catalog.newest(owner, search=text)

    def page(
        self, owner: str | None, limit: int, cursor: str | None = None, search: str = ""
    ) -> ConversationPage:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        found = self._catalog.newest(owner, limit + 1, after, search if search.strip() else "")
        if len(found) <= limit:
            return ConversationPage(tuple(found), None)
        return ConversationPage(tuple(found[:limit]), encode_cursor(found[limit - 1]))

    def _path(self, conversation_id: str) -> Path:
        return self._folder / f"{conversation_id}.json"

    def _folder_mtime(self) -> int:
        return os.stat(self._folder).st_mtime_ns

    def _note_own_change(self) -> None:
        """Remember the folder's mtime after a change of ours (see ``close``)."""
        mtime = self._folder_mtime()
        with self._problems_lock:
            self._own_mtime = max(self._own_mtime, mtime)

    def _index(self, conversation: Conversation, path: Path) -> None:
        """Put a conversation just written or read into the catalog, with its file's stamp."""
        try:
            stamp = Stamp.of(os.stat(path))
        except OSError as error:
            raise StoreError(f"Could not read {path}: {error}.") from error
        self._catalog.put(conversation, stamp)
        self._note_own_change()

    def _heal(self, conversation: Conversation, path: Path) -> None:
        """Re-index a file read whose stamp is not the catalog's (changed behind our back)."""
        try:
            stamp = Stamp.of(os.stat(path))
        except OSError:
            return
        if self._catalog.stamp(conversation.id) != stamp:
            self._catalog.put(conversation, stamp)

    def _reconcile(self) -> None:
        """Bring the catalog in line with the files: re-read each file whose stamp changed."""
        known = self._catalog.stamps()
        left_in_place = self._catalog.unreadable()
        present: set[str] = set()
        with self._catalog.transaction():
            with os.scandir(self._folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
            started = time.monotonic()
            files = sum(entry.name.endswith(".json") for entry in entries)
            if self._catalog.rebuilt and files:  # every file is read: seconds per 10,000
                log.info("Building the chat index from the %s files in %s (once: it was "
                         "missing or of another version)...", f"{files:,}", self._folder)
            for entry in entries:
                if not entry.name.endswith(".json"):
                    continue
                conversation_id = entry.name.removesuffix(".json")
                present.add(conversation_id)
                try:
                    stamp = Stamp.of(entry.stat())
                except OSError:
                    continue  # gone meanwhile
                if known.get(conversation_id) == stamp:
                    continue
                if entry.name in left_in_place and left_in_place[entry.name][0] == stamp:
                    self._report(left_in_place[entry.name][1], drop=conversation_id)
                    continue
                self._reconcile_one(Path(entry.path), stamp)
            for gone in known.keys() - present:
                self._catalog.remove(gone)
            for name in left_in_place.keys() - {f"{p}.json" for p in present}:
                self._catalog.note_unreadable(name, None, None)
        if self._catalog.rebuilt and files:
            log.info("Chat index built in %.1f s.", time.monotonic() - started)

    def _reconcile_one(self, path: Path, stamp: Stamp) -> None:
        try:
            conversation = self._read(path)
        except StoreError as error:
            if path.exists():  # left in place: reported again at each open
                self._catalog.note_unreadable(path.name, stamp, str(error))
                self._report(str(error), drop=path.stem)
            return
        except NotFound:
            return
        self._catalog.put(conversation, stamp)

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
        self._catalog.remove(conversation_id)

    def _report(self, problem: str, drop: str) -> None:
        """Record a problem once; the conversation leaves the catalog until it reads well."""
        self._forget(drop)
        with self._problems_lock:
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
        self._note_own_change()
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
