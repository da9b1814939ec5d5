"""An uploaded file becomes a document here: its origin checked, limits kept, the upload deleted.

Where a file may come from. The upload event is told which files to index as
paths, and a client can post any path (a forged ``FileData``). Worse, Gradio
copies the file a forged path names into its own upload folder before the
event runs (its own check is skipped in an app mounted with
``mount_gradio_app``), so lying in the upload folder proves nothing. So a
file is read only if Gradio's upload route wrote it *for this owner*:
``receive(owner, paths)`` records each path the route handed out
(``upload_route.UploadReceipts`` calls it), and ``add_many`` takes a path only if

- its last component is not a symbolic link, and it is a regular file;
- its real path (every link resolved, ``..`` folded) lies strictly inside the
  real upload folder;
- that real path was received for this owner and not used since.

Anything else is refused by name (``NotUploaded``: "... was not uploaded
through this page") and nothing of it is read. This is the one way an upload
becomes a document; the handlers that receive paths today do not check them.

Deleting. Gradio's file route (``/gradio_api/file=<path>``) serves its upload
folder (``GRADIO_TEMP_DIR``, by default ``/tmp/gradio/<hash>/<name>``) to
anyone who knows a path. So each upload (and its emptied ``<hash>`` folder) is
deleted as soon as the library has read it, indexed or refused; a file in the
upload folder that nobody received (Gradio's copy of a forged path) is
deleted too; a file received for someone else is left to them (and not
served to anyone else meanwhile: ``may_read``), and nothing outside the
upload folder is ever deleted. An upload that no event claims
(the event was cancelled, the tab closed) is deleted by ``sweep`` after
``stale_after`` seconds. What stays is the document's chunks under
``data_dir/documents``, which ``server.py`` blocks from the file route, and
which only its owner's searches reach (``rag_index.Library``).

The name a browser sends is only a label: ``rag_index.safe_filename`` keeps its
last path part without NULs or control characters, and nothing is ever written
under it.

The REST API has no Gradio upload route: its multipart route hands each
received part to ``write``, which copies it into a fresh random folder inside
the upload folder (under a fixed name, never the client's) and records the
receipt for the caller, so it too becomes a document only through ``add_many``.

Per-user limits (``limits.Limits``): the documents one user keeps. The size of
one file is the library's ``max_file_bytes`` (``--max-upload-mb``); a file over
it is refused alone, by name. One user's uploads are checked and indexed one
call at a time (a lock per owner), so two racing batches cannot both take the
last places; other users' uploads do not wait for them. Each waiting call
holds a server thread, so one user may have ``MAX_WAITING`` calls waiting;
more are refused (``LimitExceeded``) until theirs are done.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chatui.errors import LimitExceeded
from chatui.limits import Limits
from rag_index import DocumentError, IngestBatch, IngestFailure, IngestResult, Library
from rag_index.library import ProgressCallback
from rag_index.loaders import safe_filename

UploadedFile = tuple[str | Path, str]
"""The upload's path (in Gradio's upload folder) and the name the user gave it."""

STALE_AFTER = 15 * 60.0
"""Seconds an upload may wait for its event before ``sweep`` deletes it."""
SWEEP_EVERY = 60.0
"""Seconds between two sweeps started by ``sweep_due``."""
MAX_WAITING = 3
"""Calls of one owner that may wait behind their running one (each holds a server thread)."""
UPLOAD_HARD_CAP = 4
"""The upload routes (Gradio's, the REST API's) refuse a whole request for one file over this
many times the library's file limit; a file between the two is refused alone, by name."""


class NotUploaded(DocumentError):
    """A path that Gradio's upload route did not write for this owner; it was not read."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename, "was not uploaded through this page, so it was not read.")


def gradio_upload_folder() -> Path:
    """Where Gradio keeps uploads: ``gradio.utils.get_upload_folder``'s rule, without Gradio."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio"
    return Path(folder).resolve()


@dataclass(frozen=True, slots=True)
class _Receipt:
    owner: str
    received_at: float
    claimed: bool = False  # an event is reading it: not stale, whatever its age


class DocumentUploads:
    """Uploads handed out by Gradio's upload route, per owner, and how they become documents."""

    def __init__(
        self,
        library: Library,
        limits: Limits,
        upload_folder: Path | None = None,
        *,
        stale_after: float = STALE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.library = library
        self.limits = limits
        self.upload_folder = Path(os.path.realpath(upload_folder or gradio_upload_folder()))
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()  # guards the receipts and the owner locks
        self._owner_locks: dict[str, threading.Lock] = {}
        self._waiting: dict[str, int] = {}  # calls per owner, running or waiting for their turn
        self._receipts: dict[str, list[_Receipt]] = {}  # real path -> who received it
        self._next_sweep = clock() + SWEEP_EVERY

    # ----- where uploads come from ---------------------------------------------------

    def receive(self, owner: str, paths: Iterable[str | Path]) -> None:
        """Gradio's upload route wrote ``paths`` for ``owner``: they may become theirs."""
        now = self._clock()
        with self._lock:
            for path in paths:
                real = self._inside(path)
                if real is not None:
                    self._receipts.setdefault(real, []).append(_Receipt(owner, now))
        self.sweep()

    def write(self, owner: str, source: BinaryIO) -> Path:
        """Copy an upload the REST API received into the upload folder, received for ``owner``.

        Each goes to its own random folder under a fixed name; the client's
        file name stays a label (passed to ``add_many``).
        """
        folder = self.upload_folder / secrets.token_hex(16)
        folder.mkdir(mode=0o700, parents=True)
        target = folder / "upload"
        try:
            with open(target, "xb") as out:
                shutil.copyfileobj(source, out)
        except BaseException:
            self._delete(str(target))
            raise
        self.receive(owner, [target])
        return target

    def may_read(self, path: str | Path, owner: str) -> bool:
        """False for an upload waiting for someone else's event: not theirs to download."""
        real = self._inside(path)
        with self._lock:
            owners = {r.owner for r in self._receipts.get(real, [])} if real is not None else set()
        return not owners or owner in owners

    def sweep(self) -> int:
        """Delete the uploads no event claimed within ``stale_after``; how many went."""
        deadline = self._clock() - self.stale_after
        with self._lock:
            self._next_sweep = self._clock() + SWEEP_EVERY
            stale: list[str] = []
            for real, receipts in list(self._receipts.items()):
                kept = [r for r in receipts if r.claimed or r.received_at > deadline]
                if kept:
                    self._receipts[real] = kept
                else:
                    del self._receipts[real]
                    stale.append(real)
        for real in stale:
            self._delete(real)
        return len(stale)

    def sweep_due(self) -> None:
        """``sweep`` if the last one was ``SWEEP_EVERY`` seconds ago (cheap to call often)."""
        if self._clock() >= self._next_sweep:
            self.sweep()

    # ----- uploads become documents --------------------------------------------------

    def add(
        self, path: str | Path, filename: str, owner: str, conversation_id: str | None = None
    ) -> IngestResult:
        """One upload; raises its ``DocumentError`` or ``LimitExceeded``."""
        outcome = self.add_many([(path, filename)], owner, conversation_id).outcomes[0]
        if isinstance(outcome, IngestFailure):
            raise outcome.error
        return outcome

    def add_many(
        self,
        files: Sequence[UploadedFile],
        owner: str,
        conversation_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestBatch:
        """Index ``owner``'s uploads; the uploads are gone afterwards, whatever happened.

        A path that was not uploaded for ``owner`` is refused (``NotUploaded``)
        and not read. Raises ``LimitExceeded`` (nothing indexed) if the others
        would take ``owner`` past the documents limit.
        """
        outcomes: list[IngestResult | IngestFailure | None] = [None] * len(files)
        admitted: list[tuple[int, Path, str]] = []
        try:
            for number, (path, name) in enumerate(files):
                real = self._claim(path, owner)
                if real is None:
                    label = safe_filename(name)
                    outcomes[number] = IngestFailure(label, NotUploaded(label))
                else:
                    admitted.append((number, real, name))
            if admitted:
                with self._turn(owner):
                    self.limits.check_documents(
                        owner, self.library.document_count(owner), len(admitted))
                    batch = self.library.ingest_many(
                        [(real, name) for _, real, name in admitted],
                        owner, conversation_id, progress,
                    )
                for (number, _, _), outcome in zip(admitted, batch.outcomes, strict=True):
                    outcomes[number] = outcome
        finally:
            for path, _ in files:
                self.discard(path, owner)
        return IngestBatch(tuple(o for o in outcomes if o is not None))

    def discard(self, path: str | Path, owner: str) -> None:
        """Drop one of ``owner``'s receipts for an upload; delete it if nobody holds another.

        Only a file strictly inside the upload folder is ever deleted.
        """
        real = self._inside(path)
        if real is None:
            return
        with self._lock:
            receipts = self._receipts.pop(real, [])
            mine = [r for r in receipts if r.owner == owner]
            if mine:  # the claimed one first: it is the caller's
                receipts.remove(next((r for r in mine if r.claimed), mine[0]))
            if receipts:
                self._receipts[real] = receipts
                return
        self._delete(real)

    # ----- the checks ----------------------------------------------------------------

    def _inside(self, path: str | Path) -> str | None:
        """The real path if it lies strictly inside the upload folder, else None."""
        try:
            real = Path(os.path.realpath(os.fspath(path)))
        except (OSError, ValueError, TypeError):  # NUL bytes, a path too long, not a path
            return None
        return str(real) if self.upload_folder in real.parents else None

    def _claim(self, path: str | Path, owner: str) -> Path | None:
        """The real path of ``owner``'s unused upload ``path`` (now claimed), else None."""
        try:
            if stat.S_ISLNK(os.lstat(os.fspath(path)).st_mode):
                return None
        except (OSError, ValueError, TypeError):
            return None
        real = self._inside(path)
        if real is None:
            return None
        try:
            if not stat.S_ISREG(os.stat(real).st_mode):
                return None
        except OSError:
            return None
        with self._lock:
            receipts = self._receipts.get(real, [])
            mine = next((r for r in receipts if r.owner == owner and not r.claimed), None)
            if mine is None:
                return None
            receipts[receipts.index(mine)] = _Receipt(owner, mine.received_at, claimed=True)
        return Path(real)

    def _delete(self, real: str) -> None:
        """Delete a real path in the upload folder and its emptied ``<hash>`` folder."""
        upload = Path(real)
        if self.upload_folder not in upload.parents:
            return
        try:
            upload.unlink(missing_ok=True)
        except OSError:
            return  # a folder, or not ours to delete
        folder = upload.parent
        if folder != self.upload_folder:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: another upload of the same content is still there

    @contextmanager
    def _turn(self, owner: str) -> Iterator[None]:
        """``owner``'s turn to index: after their earlier calls, never after anyone else's.

        Raises ``LimitExceeded`` if ``MAX_WAITING`` of their calls already wait.
        """
        with self._lock:
            waiting = self._waiting.get(owner, 0)
            if waiting > MAX_WAITING:
                raise LimitExceeded(
                    f"You are already adding documents in {waiting} other uploads; "
                    "add these when those are done.")
            self._waiting[owner] = waiting + 1
            lock = self._owner_locks.setdefault(owner, threading.Lock())
        try:
            with lock:
                yield
        finally:
            with self._lock:
                self._waiting[owner] -= 1
                if not self._waiting[owner]:
                    del self._waiting[owner]
