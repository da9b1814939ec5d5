"""An uploaded file becomes a document here: limits checked, owner set, the upload deleted.

Gradio writes every upload into its own folder (``GRADIO_TEMP_DIR``, by default
``/tmp/gradio/<hash>/<name>``), and its file route (``/gradio_api/file=<path>``)
serves that folder to anyone who may use the app and knows the path. So
``DocumentUploads.add_many`` deletes each upload (and its emptied ``<hash>``
folder) as soon as the library has read it, whether the file was indexed or
refused. What stays is the document's chunks under ``data_dir/documents``,
which ``server.py`` blocks from the file route, and which only its owner's
searches reach (``rag_index.Library``).

The name a browser sends is only a label: ``rag_index.safe_filename`` keeps its
last path part without NULs or control characters, and nothing is ever written
under it. Only files inside the upload folder are deleted; a path anywhere else
is read and left alone.

Per-user limits (``limits.Limits``): the documents one user keeps. The size of
one file is the library's ``max_file_bytes`` (``--max-upload-mb``), which
Gradio's upload route enforces too. One user's uploads are checked and indexed
one batch at a time, so two racing batches cannot both take the last places.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from rag_index import IngestBatch, IngestFailure, IngestResult, Library
from rag_index.library import ProgressCallback

from chatui.limits import Limits

UploadedFile = tuple[str | Path, str]
"""The upload's path (in Gradio's upload folder) and the name the user gave it."""


def gradio_upload_folder() -> Path:
    """Where Gradio keeps uploads: ``gradio.utils.get_upload_folder``'s rule, without Gradio."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio"
    return Path(folder).resolve()


class DocumentUploads:
    def __init__(
        self, library: Library, limits: Limits, upload_folder: Path | None = None
    ) -> None:
        self.library = library
        self.limits = limits
        self.upload_folder = (upload_folder or gradio_upload_folder()).resolve()
        self._lock = threading.Lock()
        self._owner_locks: dict[str, threading.Lock] = {}

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

        Raises ``LimitExceeded`` (nothing indexed) if they would take ``owner``
        past the documents limit.
        """
        try:
            with self._owner_lock(owner):
                self.limits.check_documents(owner, self.library.document_count(owner), len(files))
                return self.library.ingest_many(
                    [(Path(path), name) for path, name in files], owner, conversation_id, progress
                )
        finally:
            for path, _ in files:
                self.discard(path)

    def discard(self, path: str | Path) -> None:
        """Delete an upload and its emptied folder, if it lies in the upload folder."""
        upload = Path(path).resolve()
        if self.upload_folder not in upload.parents:
            return
        upload.unlink(missing_ok=True)
        folder = upload.parent
        if folder != self.upload_folder:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: another upload of the same content is still there

    def _owner_lock(self, owner: str) -> threading.Lock:
        with self._lock:
            return self._owner_locks.setdefault(owner, threading.Lock())
