"""One conversation file on disk: a small TinyDB database, its schema and migrations.

Decision: TinyDB is used as a database, one per conversation, not as a JSON
writer. Every file is a TinyDB database (``{table: {doc_id: document}}``) with
the tables ``meta`` (one record: ``schema_version``), ``conversation`` (one
record: the header from ``codec.conversation_header``) and ``messages`` (one
document per message, oldest first); saves insert into those tables and loads
read them back through ``TinyDB.table``. Why keep TinyDB: its ``Storage`` class
is exactly the seam for the crash-safe write (``ConversationFile``), its
middleware for doing one save in one write (``WriteOnce``), and every file
chatui has written since schema 1 already is such a database, so nothing on
disk changes. Why one database per conversation and not one for the store:
TinyDB's storages always write the whole database, so one file would make each
message cost in proportion to every conversation stored. What TinyDB does not
do here: the list of conversations (an index in memory, ``FileStore``) and
search (a scan), which its queries would do no faster.

``ConversationFile.read`` brings an older file up to ``SCHEMA_VERSION`` in
memory (``migrate``) and checks that every table is a table of records before
TinyDB sees it; ``read_conversation`` then checks the tree invariants and
raises ``StoreCorrupt`` with a sentence naming the file and what is wrong.

``ConversationFile.write`` puts the new content in a temporary file in the
same folder, flushes and fsyncs it, ``os.replace``s it over the old file and
fsyncs the folder. Whenever the process dies (or the power goes), the file on
disk is the old version or the new one, whole; at worst a temporary file is
left behind, which ``remove_temp_files`` clears at the next start.

``WriteOnce`` is a middleware that reads the file once and keeps TinyDB's
writes in memory until ``commit()``: one save is several table operations (each
a full TinyDB write), and only its final state reaches the disk, in one atomic
replacement. If the save fails half-way nothing is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import Middleware
from tinydb.storages import Storage
from tinydb.table import Document

from chatui.codec import ID_PATTERN as ID_PATTERN  # re-exported for older importers
from chatui.codec import conversation_from_dict, conversation_header, message_to_dict
from chatui.codec import is_safe_id as is_safe_id
from chatui.codec import tree_problem
from chatui.errors import StoreCorrupt, StoreError
from chatui.tree import Conversation

SCHEMA_VERSION = 1
TEMP_SUFFIX = ".tmp"
TABLES = ("meta", "conversation", "messages")

Tables = dict[str, dict[str, Any]]


def _v0_to_v1(document: Tables) -> Tables:
    """Version 0, before TinyDB, was one object as ``conversation_to_dict`` writes it."""
    header = {key: value for key, value in document.items() if key != "messages"}
    messages = list(document.get("messages") or [])
    return {
        "meta": {"1": {"schema_version": 1}},
        "conversation": {"1": header},
        "messages": {str(number): message for number, message in enumerate(messages, 1)},
    }


MIGRATIONS: dict[int, Callable[[Tables], Tables]] = {0: _v0_to_v1}
"""``MIGRATIONS[n]`` turns a version-n file into version n + 1. A schema change
adds one here and raises ``SCHEMA_VERSION``; old functions are never edited."""


def schema_version(document: Tables, path: Path) -> int:
    if "meta" not in document:
        if "id" in document:
            return 0
        raise StoreCorrupt(f"{path} has no 'meta' table, so no schema version.")
    version = _only_record(document, "meta", path).get("schema_version")
    if type(version) is not int or version < 0:
        raise StoreCorrupt(f"{path} has no valid schema version (found {version!r}).")
    return version


def migrate(document: Tables, path: Path) -> Tables:
    """``document`` brought up to ``SCHEMA_VERSION``; the file is not rewritten."""
    version = schema_version(document, path)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer chatui (schema {version}; this one reads "
            f"up to {SCHEMA_VERSION}). It was left as it is."
        )
    while version < SCHEMA_VERSION:
        try:
            document = MIGRATIONS[version](document)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise StoreCorrupt(
                f"{path} could not be brought from schema {version} to {version + 1} ({error})."
            ) from None
        version += 1
    return document


def checked_tables(document: Tables, path: Path) -> Tables:
    """``document`` if each table chatui reads is a table of records with numeric ids."""
    for name in TABLES:
        _table(document, name, path)
    return document


def read_conversation(path: Path) -> Conversation:
    """The conversation in ``path``, checked; ``FileNotFoundError`` if there is none."""
    storage = WriteOnce(ConversationFile)
    database = TinyDB(path, storage=storage)
    try:
        if storage.read() is None:
            raise FileNotFoundError(path)
        [header] = _records(database, "conversation", path, expected=1)
        records = _records(database, "messages", path)
    finally:
        database.close()
    return conversation_of(header, records, path)


def write_conversation(path: Path, conversation: Conversation, sync_folder: bool = True) -> None:
    """Replace ``path`` with ``conversation``, in one atomic write (durable once the
    folder is fsynced: here, or by the caller when ``sync_folder`` is false)."""
    storage = WriteOnce(ConversationFile, start_empty=True)
    database = TinyDB(path, storage=storage, sync_folder=sync_folder)
    try:
        database.table("meta").insert({"schema_version": SCHEMA_VERSION})
        database.table("conversation").insert(conversation_header(conversation))
        database.table("messages").insert_multiple(
            message_to_dict(m) for m in conversation.messages.values()
        )
        storage.commit()
    finally:
        database.close()


def conversation_of(
    header: dict[str, Any], records: Sequence[dict[str, Any]], path: Path
) -> Conversation:
    """The conversation made of a header and message records, checked."""
    try:
        conversation = conversation_from_dict({**header, "messages": records})
    except KeyError as error:
        raise StoreCorrupt(f"{path} has no {error} in its conversation record.") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise StoreCorrupt(f"{path} does not hold a conversation ({error}).") from None
    problem = tree_problem(conversation)
    if problem is None and len(conversation.messages) != len(records):
        problem = "two messages share an id"
    if problem is None and conversation.id != path.stem:
        problem = f"it holds conversation {conversation.id!r}, not {path.stem!r}"
    if problem:
        raise StoreCorrupt(f"{path} is inconsistent: {problem}.")
    return conversation


def _records(
    database: TinyDB, name: str, path: Path, expected: int | None = None
) -> list[Document]:
    records = database.table(name).all()
    if expected is not None and len(records) != expected:
        raise StoreCorrupt(f"{path} should have one {name!r} record, not {len(records)}.")
    return records


def _table(document: Tables, name: str, path: Path) -> dict[str, Any]:
    table = document.get(name, {})  # TinyDB leaves out tables never written
    if not isinstance(table, dict) or not all(
        isinstance(record, dict) and key.isascii() and key.isdigit()
        for key, record in table.items()
    ):
        raise StoreCorrupt(f"{path} has a {name!r} table that is not a table of records.")
    return table


def _only_record(document: Tables, name: str, path: Path) -> dict[str, Any]:
    table = _table(document, name, path)
    if len(table) != 1:
        raise StoreCorrupt(f"{path} should have one {name!r} record, not {len(table)}.")
    record: dict[str, Any] = next(iter(table.values()))
    return record


def read_json_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``FileNotFoundError`` if there is none."""
    raw = path.read_bytes()
    if not raw.strip():
        raise StoreCorrupt(f"{path} is empty.")
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise StoreCorrupt(
            f"{path} is not valid JSON, perhaps cut short ({error})."
        ) from None
    if not isinstance(data, dict):
        raise StoreCorrupt(
            f"{path} holds a JSON {type(data).__name__}, not an object of tables."
        )
    return data


def fsync_folder(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` survive a power cut."""
    if os.name == "nt":  # Windows cannot open a folder to fsync it
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any, sync_folder: bool = True) -> None:
    # ensure_ascii: a lone surrogate from a broken stream still encodes.
    payload = json.dumps(data, separators=(",", ":")).encode("ascii")
    try:
        _replace_with(path, payload)
        if sync_folder:
            fsync_folder(path.parent)
    except OSError as error:
        raise StoreError(f"Could not write {path}: {error.strerror or error}.") from error


def _replace_with(path: Path, payload: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX
    )
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(payload)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def remove_temp_files(folder: Path) -> list[Path]:
    """Delete temporary files a crashed write left in ``folder``; return them."""
    leftovers = sorted(folder.glob(f".*{TEMP_SUFFIX}"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


class ConversationFile(Storage):
    """A TinyDB storage on one conversation file: migrated on read, replaced atomically."""

    def __init__(self, path: Path, sync_folder: bool = True) -> None:
        self.path = Path(path)
        self.sync_folder = sync_folder

    def read(self) -> Tables | None:
        try:
            document = read_json_file(self.path)
        except FileNotFoundError:
            return None
        return checked_tables(migrate(document, self.path), self.path)

    def write(self, data: Tables) -> None:
        write_json_atomic(self.path, data, self.sync_folder)


class WriteOnce(Middleware):
    """Read once, hold TinyDB's writes until ``commit()``; ``close()`` drops uncommitted ones.

    With ``start_empty`` the database starts empty instead of reading the file:
    a save that replaces everything need not parse the old version.
    """

    def __init__(self, storage_cls: type[Storage], start_empty: bool = False) -> None:
        super().__init__(storage_cls)
        self._data: Tables | None = {} if start_empty else None
        self._read = start_empty
        self._changed = False

    def read(self) -> Tables | None:
        if not self._read:
            self._data = self.storage.read()
            self._read = True
        return self._data

    def write(self, data: Tables) -> None:
        self._data = data
        self._read = True
        self._changed = True

    def commit(self) -> None:
        if self._changed and self._data is not None:
            self.storage.write(self._data)
            self._changed = False

    def close(self) -> None:
        self._data = None
        self._changed = False
        self.storage.close()
