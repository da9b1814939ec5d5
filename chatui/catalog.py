"""The catalog: every conversation's summary and text, in SQLite beside the TinyDB files.

The files in ``conversations/`` stay the record (``storage.py``); the catalog
is derived from them, so that opening the store, listing a page and searching
cost the same with 100,000 conversations as with 10. ``FileStore`` writes it in
the same path as each save and delete, and rebuilds what it cannot trust.

Tables of ``catalog.sqlite3`` (WAL mode)::

    meta        key -> value: version, state ("open" / "closed"), folder_mtime_ns, closed_at_ns
    summaries   n (rowid), id, owner, title, created_at, updated_at, message_count,
                preview, and the file's stamp (inode, mtime_ns, size) when last indexed
    parts       r (rowid), n (the conversation's), message id ("" for the title), and a
                digest of the text indexed for it
    texts       FTS5, trigram tokenizer: one row per part, rowid = parts.r
    unreadable  file name -> stamp and the problem, for files left in place

A save indexes what changed only: the title and each message whose digest
differs, so adding a message to a long chat costs that message, not the chat.

Trust (``is_clean``): the catalog answers for the folder only if it was closed
cleanly, the folder's mtime is the one recorded at that close, and that mtime
was older than the close by more than the file system's time step (a change
made in the same step would not move it). Otherwise the store reconciles:
it stats every file and re-reads those whose stamp differs, so a crash between
a file's write and the catalog's (a killed process, a power cut: the state is
still "open") heals at the next open, and so do files added, replaced or
removed while chatui was stopped. A catalog that is missing, of another
version or not a database is deleted and rebuilt from the files.

Search: a phrase query on the trigram index finds substrings of 3 characters or
more, ignoring case as SQLite folds it (Unicode simple case folding; unlike
``str.casefold``, "ß" does not match "ss"). Text of 1 or 2 characters has no
trigram: it is looked for in the titles only (a scan of the titles). Each message
and the title is a row of its own, so a match lies within one of them.
``newest`` explains how a common word stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatui.errors import StoreError
from chatui.store import ConversationSummary
from chatui.tree import Conversation

CATALOG_VERSION = 2  # 1 kept one text row per conversation
FILE_NAME = "catalog.sqlite3"
TITLE = ""  # the part id of a conversation's title (a message id is never empty)
FINE_STEP_NS = 50_000_000  # a file system with sub-second times: its clock tick, with margin
COARSE_STEP_NS = 2_000_000_000  # one that keeps whole seconds (ext3, FAT: 2 s)
FEW = 300  # matches a search sorts; with more, it walks the newest conversations first
WALK = 2000  # how many of the newest conversations that walk checks, at most

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE summaries (
    n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL, title TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, message_count INTEGER NOT NULL,
    preview TEXT NOT NULL, ino INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    folded TEXT NOT NULL  -- the title casefolded, for searches too short for the index
);
CREATE INDEX newest ON summaries (updated_at DESC, created_at DESC, id DESC);
CREATE INDEX owners_newest ON summaries (owner, updated_at DESC, created_at DESC, id DESC);
CREATE TABLE parts (
    r INTEGER PRIMARY KEY, n INTEGER NOT NULL, part TEXT NOT NULL, digest BLOB NOT NULL
);
CREATE UNIQUE INDEX parts_of ON parts (n, part);
CREATE VIRTUAL TABLE texts USING fts5 (body, tokenize = 'trigram');
CREATE TABLE unreadable (
    name TEXT PRIMARY KEY, ino INTEGER, mtime_ns INTEGER, size INTEGER, problem TEXT
) WITHOUT ROWID;
"""
_MATCHES = "texts CROSS JOIN parts ON parts.r = texts.rowid WHERE texts MATCH ?"
_COLUMNS = "s.id, s.title, s.owner, s.created_at, s.updated_at, s.message_count, s.preview"


@dataclass(frozen=True, slots=True)
class Stamp:
    """What tells one version of a file from another without reading it."""

    ino: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, status: os.stat_result) -> Stamp:
        return cls(status.st_ino, status.st_mtime_ns, status.st_size)


def parts_of(conversation: Conversation) -> dict[str, str]:
    """What a search looks in: the title and every message of every branch, by id."""
    parts = {TITLE: conversation.title}
    parts.update((m.id, m.content) for m in conversation.messages.values())
    return parts


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def storable(text: str) -> str:
    """``text`` as the index keeps it: NUL becomes a space (FTS5 would cut the text there),
    a lone surrogate (a broken stream's) "?" (SQLite takes only UTF-8)."""
    text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def time_step_ns(mtime_ns: int) -> int:
    """How far apart two changes must be for the folder's mtime to tell them apart."""
    return COARSE_STEP_NS if mtime_ns % 1_000_000_000 == 0 else FINE_STEP_NS


class Catalog:
    """One connection to ``catalog.sqlite3``; every call is serialised by one lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rebuilt = False  # True when it started empty: every file must be read
        self._lock = threading.RLock()
        self._depth = 0  # transactions open in the thread holding the lock
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError:  # not a database, or another version: rebuild
            self._discard()
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise StoreError(f"Could not open the catalog {self.path}: {error}.") from None
        try:
            db.create_function("chatui_contains", 2, _contains, deterministic=True)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not tables:
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('version', ?)", (CATALOG_VERSION,))
                self.rebuilt = True
            elif self._get(db, "version") != CATALOG_VERSION:
                raise sqlite3.DatabaseError("another catalog version")
        except BaseException:
            db.close()
            raise
        return db

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as error:
                raise StoreError(
                    f"The catalog {self.path} cannot be read, nor deleted to rebuild it: "
                    f"{error.strerror or error}."
                ) from None

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> object:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (and one WAL append); nested, the outermost commits."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._failing("written"):
                self._db.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                finally:
                    self._depth = 0

    @contextlib.contextmanager
    def _failing(self, done: str) -> Iterator[None]:
        """An SQLite error (disk full, a damaged file) as a ``StoreError`` in words."""
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(
                f"The conversation index {self.path} could not be {done} ({error}). "
                "The conversation files are the record: restart chatui to check the index "
                "against them, or delete it to have it rebuilt."
            ) from error

    # ----- trust ----------------------------------------------------------

    def is_clean(self, folder_mtime_ns: int) -> bool:
        """Whether the last close was clean and nothing has touched the folder since."""
        with self._lock:
            state = self._get(self._db, "state")
            recorded = self._get(self._db, "folder_mtime_ns")
            closed_at = self._get(self._db, "closed_at_ns")
        return (
            not self.rebuilt and state == "closed" and recorded == folder_mtime_ns
            and isinstance(closed_at, int)
            and closed_at - folder_mtime_ns > time_step_ns(folder_mtime_ns)
        )

    def mark_open(self) -> None:
        self._set_state("open", None, None)

    def mark_closed(self, folder_mtime_ns: int, closed_at_ns: int) -> None:
        self._set_state("closed", folder_mtime_ns, closed_at_ns)

    def _set_state(self, state: str, mtime_ns: int | None, closed_at_ns: int | None) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("state", state), ("folder_mtime_ns", mtime_ns), ("closed_at_ns", closed_at_ns)],
            )

    # ----- writes -----------------------------------------------------------

    def put(self, conversation: Conversation, stamp: Stamp) -> None:
        """Index ``conversation`` as its file now is (``stamp``)."""
        summary = ConversationSummary.of(conversation)
        with self.transaction():
            (n,) = self._db.execute(
                "INSERT INTO summaries (id, owner, title, created_at, updated_at, "
                "message_count, preview, ino, mtime_ns, size, folded) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, "
                "title = excluded.title, created_at = excluded.created_at, "
                "updated_at = excluded.updated_at, message_count = excluded.message_count, "
                "preview = excluded.preview, ino = excluded.ino, "
                "mtime_ns = excluded.mtime_ns, size = excluded.size, "
                "folded = excluded.folded RETURNING n",
                (summary.id, summary.owner, storable(summary.title), summary.created_at,
                 summary.updated_at, summary.message_count, storable(summary.preview),
                 stamp.ino, stamp.mtime_ns, stamp.size, storable(summary.title.casefold())),
            ).fetchone()
            self._index_parts(n, parts_of(conversation))
            self._db.execute("DELETE FROM unreadable WHERE name = ?", (f"{summary.id}.json",))

    def _index_parts(self, n: int, parts: dict[str, str]) -> None:
        """Bring conversation ``n``'s text rows in line with ``parts``: those whose text
        changed are indexed again, new ones added, those gone removed."""
        indexed = {part: (r, known) for r, part, known in self._db.execute(
            "SELECT r, part, digest FROM parts WHERE n = ?", (n,))}
        for part, text in parts.items():
            now = digest(text)
            r, known = indexed.pop(part, (None, None))
            if known == now:
                continue
            if r is None:
                (r,) = self._db.execute(
                    "INSERT INTO parts (n, part, digest) VALUES (?, ?, ?) RETURNING r",
                    (n, part, now),
                ).fetchone()
            else:
                self._db.execute("UPDATE parts SET digest = ? WHERE r = ?", (now, r))
                self._db.execute("DELETE FROM texts WHERE rowid = ?", (r,))
            self._db.execute("INSERT INTO texts (rowid, body) VALUES (?, ?)", (r, storable(text)))
        if indexed:  # messages deleted (a pruned branch)
            gone = json.dumps([r for r, _ in indexed.values()])
            self._db.execute("DELETE FROM texts WHERE rowid IN (SELECT value FROM json_each(?))",
                             (gone,))
            self._db.execute("DELETE FROM parts WHERE r IN (SELECT value FROM json_each(?))",
                             (gone,))

    def remove(self, conversation_id: str) -> None:
        with self.transaction():
            row = self._db.execute(
                "DELETE FROM summaries WHERE id = ? RETURNING n", (conversation_id,)
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "DELETE FROM texts WHERE rowid IN (SELECT r FROM parts WHERE n = ?)", row)
                self._db.execute("DELETE FROM parts WHERE n = ?", row)

    def note_unreadable(self, name: str, stamp: Stamp | None, problem: str | None) -> None:
        """Remember (or, with ``problem`` None, forget) a file left in place unread."""
        with self.transaction():
            self._db.execute("DELETE FROM unreadable WHERE name = ?", (name,))
            if problem is not None and stamp is not None:
                self._db.execute(
                    "INSERT INTO unreadable VALUES (?, ?, ?, ?, ?)",
                    (name, stamp.ino, stamp.mtime_ns, stamp.size, problem),
                )

    # ----- reads --------------------------------------------------------------

    def stamps(self) -> dict[str, Stamp]:
        with self._lock:
            rows = self._db.execute("SELECT id, ino, mtime_ns, size FROM summaries").fetchall()
        return {row[0]: Stamp(*row[1:]) for row in rows}

    def unreadable(self) -> dict[str, tuple[Stamp, str]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM unreadable").fetchall()
        return {row[0]: (Stamp(*row[1:4]), row[4]) for row in rows}

    def stamp(self, conversation_id: str) -> Stamp | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ino, mtime_ns, size FROM summaries WHERE id = ?", (conversation_id,)
            ).fetchone()
        return None if row is None else Stamp(*row)

    def owner_of(self, conversation_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT owner FROM summaries WHERE id = ?", (conversation_id,)
            ).fetchone()
        return None if row is None else row[0]

    def newest(
        self, owner: str | None, limit: int | None = None,
        after: tuple[float, float, str] | None = None, search: str = "",
    ) -> list[ConversationSummary]:
        """Summaries newest first, after ``after``; only matches of ``search`` when given.

        ``search`` of 3 characters or more goes to the trigram index. When it
        matches few conversations (up to ``FEW``), they are sorted; when it
        matches many, the newest are walked (at most ``WALK`` of them), each
        checked by its text, so a page of a common word costs a page; if that
        walk does not fill the page, the matches are sorted after all. Shorter
        text has no trigram: it is looked for in the titles only.
        """
        where: list[str] = []
        params: list[object] = []
        if owner is not None:
            where.append("s.owner = ?")
            params.append(owner)
        if after is not None:
            where.append("(s.updated_at, s.created_at, s.id) < (?, ?, ?)")
            params.extend(after)
        needle = storable(search)
        if not needle:
            return self._select(f"SELECT {_COLUMNS} FROM summaries s", where, params, limit)
        if len(needle) < 3:
            where.append("instr(s.folded, ?) > 0")
            return self._select(f"SELECT {_COLUMNS} FROM summaries s",
                                where, [*params, needle.casefold()], limit)
        phrase = '"' + needle.replace('"', '""') + '"'
        with self._lock, self._failing("read"):
            many = len(self._db.execute(
                f"SELECT DISTINCT n FROM {_MATCHES} LIMIT ?", (phrase, FEW + 1)
            ).fetchall()) > FEW
            if many and limit is not None:
                page = self._walk(where, params, limit, needle.casefold())
                if page is not None:
                    return page
            return self._select(
                f"SELECT {_COLUMNS} FROM (SELECT DISTINCT n AS m FROM {_MATCHES}) "
                "CROSS JOIN summaries s ON s.n = m", where, [phrase, *params], limit,
            )

    def _walk(
        self, where: list[str], params: list[object], limit: int, needle: str
    ) -> list[ConversationSummary] | None:
        """A page of the newest conversations whose text holds ``needle``, looking at no
        more than ``WALK`` of them (in growing batches); None if that is not enough."""
        page: list[ConversationSummary] = []
        walked, step, after = 0, 2 * limit, None
        while walked < WALK:
            keyset: list[str] = ["(s.updated_at, s.created_at, s.id) < (?, ?, ?)"] if after else []
            size = min(step, WALK - walked)
            batch = self._select(f"SELECT {_COLUMNS}, s.n FROM summaries s", where + keyset,
                                 [*params, *(after or ())], size, summaries=False)
            hits = {row[0] for row in self._db.execute(
                "SELECT DISTINCT p.n FROM parts p CROSS JOIN texts t ON t.rowid = p.r "
                "WHERE p.n IN (SELECT value FROM json_each(?)) AND chatui_contains(t.body, ?)",
                (json.dumps([row[-1] for row in batch]), needle),
            )}
            page += [ConversationSummary(*row[:-1]) for row in batch if row[-1] in hits]
            if len(page) >= limit or len(batch) < size:
                return page[:limit]  # full, or every conversation was walked
            walked, step = walked + len(batch), step * 4
            after = (batch[-1][4], batch[-1][3], batch[-1][0])  # updated, created, id
        return None

    def _select(
        self, head: str, where: list[str], params: list[object], limit: int | None,
        summaries: bool = True,
    ) -> list[Any]:
        sql = head + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY s.updated_at DESC, s.created_at DESC, s.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit]
        with self._lock, self._failing("read"):
            rows = self._db.execute(sql, params).fetchall()
        return [ConversationSummary(*row) for row in rows] if summaries else rows


def _contains(body: str, needle: str) -> bool:
    return needle in body.casefold()
