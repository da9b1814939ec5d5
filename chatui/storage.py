"""One conversation file on disk: its schema, migrations and atomic TinyDB storage.

A file is a TinyDB database (``{table: {doc_id: document}}``) with the tables
``meta`` (one record: ``schema_version``), ``conversation`` (one record: the
header from ``codec.conversation_header``) and ``messages`` (one document per
message). ``migrate`` brings an older file up to ``SCHEMA_VERSION`` in memory;
``conversation_of`` checks the shape and the tree invariants, and raises
``StoreCorrupt`` with a sentence naming the file and what is wrong.

``AtomicJSONStorage.write`` puts the new content in a temporary file in the
same folder, flushes and fsyncs it, ``os.replace``s it over the old file and
fsyncs the folder. Whenever the process dies (or the power goes), the file on
disk is the old version or the new one, whole; at worst a temporary file is
left behind, which ``remove_temp_files`` clears at the next start.

``WriteOnce`` is a middleware that keeps TinyDB's writes in memory until
``commit()``: one save is several table operations (each a full TinyDB write),
and only its final state reaches the disk, in one atomic replacement. If the
save fails half-way nothing is written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

from tinydb.middlewares import Middleware
from tinydb.storages import Storage

from chatui.codec import conversation_from_dict
from chatui.errors import StoreCorrupt, StoreError
from chatui.tree import Conversation, Message, Role

SCHEMA_VERSION = 1
TEMP_SUFFIX = ".tmp"
ROLES = frozenset(get_args(Role))
ID_CHARACTERS = r"[A-Za-z0-9_-]{1,128}"
ID_PATTERN = f"^{ID_CHARACTERS}$"  # the same, as a JSON-schema pattern (the REST API's)
_SAFE_ID = re.compile(ID_CHARACTERS)

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
        document = MIGRATIONS[version](document)
        version += 1
    return document


def conversation_of(document: Tables, path: Path) -> Conversation:
    """The conversation in a current-version document, checked."""
    header = _only_record(document, "conversation", path)
    records = list(_table(document, "messages", path).values())
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


def is_safe_id(value: object) -> bool:
    """Whether ``value`` can be a conversation or message id: letters, digits, ``-``, ``_``.

    The one check for ids from outside (imports, REST bodies, the page): such an id
    can name a file and sits in the page's HTML without any escaping mattering.
    """
    return isinstance(value, str) and _SAFE_ID.fullmatch(value) is not None


def tree_problem(conversation: Conversation) -> str | None:
    """What breaks the field types or the tree module's invariants, or None."""
    if not is_safe_id(conversation.id):
        return f"{conversation.id!r} cannot be a conversation id"
    if not (isinstance(conversation.title, str) and isinstance(conversation.owner, str)):
        return "the title and the owner must be text"
    messages = conversation.messages
    for key, message in messages.items():
        if not is_safe_id(message.id):
            return f"{message.id!r} cannot be a message id"
        if key != message.id or not isinstance(message.content, str):
            return f"message {key!r} is malformed"
        if message.role not in ROLES:
            return f"message {key} has the unknown role {message.role!r}"
        if message.parent_id is not None and message.parent_id not in messages:
            return f"message {key} answers {message.parent_id!r}, which is missing"
    leaf = conversation.current_leaf_id
    if (leaf is None) != (not messages) or (leaf is not None and leaf not in messages):
        return f"the current message {leaf!r} is not in the conversation"
    if _has_cycle(messages):
        return "the messages' parents form a cycle"
    return None


def _has_cycle(messages: Mapping[str, Message]) -> bool:
    rooted: set[str] = set()  # messages known to lead up to a root
    for start in messages:
        trail: set[str] = set()
        current: str | None = start
        while current is not None and current not in rooted:
            if current in trail:
                return True
            trail.add(current)
            current = messages[current].parent_id
        rooted |= trail
    return False


def _table(document: Tables, name: str, path: Path) -> dict[str, Any]:
    table = document.get(name, {})  # TinyDB leaves out tables never written
    if not isinstance(table, dict) or not all(isinstance(d, dict) for d in table.values()):
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


def write_json_atomic(path: Path, data: Any) -> None:
    # ensure_ascii: a lone surrogate from a broken stream still encodes.
    payload = json.dumps(data, separators=(",", ":")).encode("ascii")
    try:
        _replace_with(path, payload)
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


class AtomicJSONStorage(Storage):
    """A TinyDB storage on one JSON file, written with ``write_json_atomic``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> Tables | None:
        try:
            return read_json_file(self.path)
        except FileNotFoundError:
            return None

    def write(self, data: Tables) -> None:
        write_json_atomic(self.path, data)


class WriteOnce(Middleware):
    """Hold TinyDB's writes until ``commit()``; ``close()`` drops uncommitted ones.

    With ``start_empty`` the database starts empty instead of reading the file:
    a save that replaces everything need not parse the old version.
    """

    def __init__(self, storage_cls: type[Storage], start_empty: bool = False) -> None:
        super().__init__(storage_cls)
        self._data: Tables | None = {} if start_empty else None
        self._changed = False

    def read(self) -> Tables | None:
        if self._data is None:
            self._data = self.storage.read()
        return self._data

    def write(self, data: Tables) -> None:
        self._data = data
        self._changed = True

    def commit(self) -> None:
        if self._changed and self._data is not None:
            self.storage.write(self._data)
            self._changed = False

    def close(self) -> None:
        self._data = None
        self._changed = False
        self.storage.close()
