"""The document service: what a person may do with their documents, for the UI and the REST API.

    documents = DocumentService(uploads, chats)             # once, in ``runtime``
    documents.upload(files, owner, chat_id, progress)       # one ``FileOutcome`` per file
    documents.listing(owner, chat_id)                       # library + that chat's attachments
    documents.delete(document_id, owner, chat_id)
    documents.search(query, owner, chat_id, mode="hybrid", k=8)
    documents.attach(owner, chat_id)                        # the chat's "Use documents" on

The web UI (``ui.documents``) and the REST API (``api.documents``) call this and
nothing below it. The rules, kept here for both:

- Scope: ``owner`` is required everywhere. A ``chat_id`` must name one of the
  owner's chats (else ``NotFound``, the same words as for someone else's chat).
  What a call sees, searches and deletes is the owner's library plus that chat's
  attachments: a document attached to another chat is "not found" from this one,
  even for its owner, so a page open on one chat cannot delete another's.
- An upload becomes a document only through ``uploads.DocumentUploads``: the
  file must have been received for this owner (Gradio's upload route, or the
  REST route through ``DocumentUploads.write``), the limits are checked, and
  the upload is deleted afterwards whatever happened, including files never
  reached (refused early, or the call cancelled).
- Files go in one at a time, each with its own outcome: a refused file is
  reported by name (``FileOutcome.error``) and the others still go in.
- Limits: ``MAX_FILES`` per upload, ``MAX_QUERY_CHARS`` and ``MAX_K`` for a
  search (``InvalidRequest``); an owner who cannot add a single document more
  is refused before anything is read (``LimitExceeded``); per file, the
  documents limit and the per-owner queue of ``DocumentUploads``.
- Errors that stop a whole call leave as ``ChatError``s (``NotFound``,
  ``InvalidRequest``, ``LimitExceeded``, ``DocumentsUnavailable``,
  ``StoreError``); the edges translate those alone. ``rag_index`` errors of one
  file stay in its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

from rag_index import (
    BinaryContent,
    DocumentError,
    DocumentInfo,
    DocumentNotFound,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    Hit,
    IngestFailure,
    IngestProgress,
    LibraryFull,
    ModelUnavailable,
    RagError,
    SearchMode,
    TooMuchText,
    UnreadableDocument,
    UnsupportedType,
)
from rag_index.loaders import safe_filename

from chatui.errors import (
    ChatError,
    DocumentsUnavailable,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    StoreError,
)
from chatui.service import ChatService
from chatui.tree import Conversation, Settings
from chatui.uploads import DocumentUploads, NotUploaded, UploadedFile

SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")
DEFAULT_K = 8
MAX_K = 50
MAX_QUERY_CHARS = 2_000
MAX_FILES = 50
"""Files one upload may carry."""

Scope = Literal["chat", "library"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One uploaded file: indexed (``document_id``, ``chunks``), already there, or refused."""

    name: str
    document_id: str | None = None
    chunks: int = 0
    duplicate: bool = False
    error: str | None = None  # a sentence naming the file
    error_type: str | None = None  # e.g. "unsupported_type", "too_large", "limit_exceeded"

    @property
    def added(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FileProgress:
    """Where an upload stands: file ``number`` (from 0) of ``total``; ``fraction`` is overall.

    ``outcome`` is set on the last report of a file, when it is done.
    """

    name: str
    number: int
    total: int
    stage: str  # "reading", "embedding", "saving", "done"
    fraction: float
    outcome: FileOutcome | None = None


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """A document as listed: ``chat_id`` None means the owner's library (all their chats)."""

    document_id: str
    name: str
    chat_id: str | None
    pages: int
    chunks: int
    size_bytes: int
    added_at: datetime

    @property
    def scope(self) -> Scope:
        return "library" if self.chat_id is None else "chat"


@dataclass(frozen=True, slots=True)
class Attachment:
    """The chat documents go to, and whether ``attach`` just turned "Use documents" on."""

    conversation: Conversation
    changed: bool


Report = Callable[[FileProgress], None]


class DocumentService:
    """Owners' documents: upload, list, delete, search, attach; see the module's rules."""

    def __init__(self, uploads: DocumentUploads, chats: ChatService) -> None:
        self.uploads = uploads  # also fed by the upload routes (``receive`` / ``write``)
        self.chats = chats
        self._library = uploads.library

    @property
    def ready(self) -> bool:
        """Whether the document model is loaded, so no call waits for it."""
        return self._library.ready

    @property
    def status(self) -> str:
        """Empty when ready; else what a person waiting should read ("Loading the …")."""
        return self._library.status

    @property
    def max_file_bytes(self) -> int:
        """The largest file the library reads (``--max-upload-mb``); 0: no limit."""
        return self._library.max_file_bytes

    # ----- chats ---------------------------------------------------------------------

    def chat(self, owner: str, chat_id: str) -> Conversation:
        """The owner's chat ``chat_id``; ``NotFound`` if it is not theirs (or not at all)."""
        return self.chats.conversation(chat_id, owner)

    def attach(
        self, owner: str, chat_id: str | None, new_chat: Settings | None = None
    ) -> Attachment:
        """The chat documents go to, with "Use documents" on; a new chat if ``chat_id`` is None.

        A chat answering right now keeps its settings (they cannot change until
        the answer ends): ``changed`` is False and its setting may still be off.
        """
        if chat_id is None:
            settings = replace(new_chat or self.chats.defaults, rag_enabled=True)
            return Attachment(self.chats.create(owner, settings=settings), True)
        conversation = self.chat(owner, chat_id)
        if conversation.settings.rag_enabled or self.chats.is_generating(conversation.id, owner):
            return Attachment(conversation, False)
        wanted = replace(conversation.settings, rag_enabled=True)
        return Attachment(self.chats.update_settings(conversation.id, wanted, owner), True)

    # ----- documents -----------------------------------------------------------------

    def upload(
        self,
        files: Sequence[UploadedFile],
        owner: str,
        chat_id: str | None = None,
        progress: Report | None = None,
    ) -> tuple[FileOutcome, ...]:
        """Index ``owner``'s uploads into ``chat_id`` (None: their library), one at a time.

        Raises (nothing indexed) ``InvalidRequest`` for no files or too many,
        ``NotFound`` for a chat that is not theirs, ``LimitExceeded`` if they
        cannot add a single document more. Every upload is gone afterwards.
        """
        report = progress or (lambda _step: None)
        outcomes: list[FileOutcome] = []  # one per file handed to ``uploads``, which deletes it
        try:
            self.admit_upload(owner, chat_id, len(files))
            total = len(files)
            for number, (path, name) in enumerate(files):
                outcome = self._add_one(path, name, owner, chat_id, number, total, report)
                outcomes.append(outcome)
                report(FileProgress(outcome.name, number, total, "done",
                                    (number + 1) / total, outcome))
        finally:
            for path, _name in files[len(outcomes):]:  # never handed over
                self.uploads.discard(path, owner)
        return tuple(outcomes)

    def admit_upload(self, owner: str, chat_id: str | None, count: int) -> None:
        """Raise what would refuse an upload of ``count`` files whole (``upload`` checks it too).

        ``InvalidRequest`` for no files or more than ``MAX_FILES``, ``NotFound``
        for a chat not the owner's, ``LimitExceeded`` if they cannot add one
        document more.
        """
        if count < 1:
            raise InvalidRequest("Choose one or more files to upload.")
        if count > MAX_FILES:
            raise InvalidRequest(
                f"One upload takes at most {MAX_FILES} files; this one has {count}.")
        if chat_id is not None:
            self.chat(owner, chat_id)
        self.uploads.limits.check_documents(owner, self._library.document_count(owner), 1)

    def receive(self, owner: str, source: BinaryIO) -> Path:
        """Keep a file a client sent (not through Gradio) as an upload ``owner`` may index."""
        return self.uploads.write(owner, source)

    def discard(self, path: str | Path, owner: str) -> None:
        """Forget an upload that will not be indexed (deleted if nobody else holds it)."""
        self.uploads.discard(path, owner)

    def listing(self, owner: str, chat_id: str | None = None) -> tuple[DocumentEntry, ...]:
        """The owner's library and the chat's attachments, oldest first."""
        if chat_id is not None:
            self.chat(owner, chat_id)
        return tuple(_entry(info) for info in self._library.documents(owner, chat_id))

    def delete(self, document_id: str, owner: str, chat_id: str | None = None) -> DocumentEntry:
        """Remove one document listed for this scope; ``NotFound`` for any other."""
        found = next((e for e in self.listing(owner, chat_id) if e.document_id == document_id),
                     None)
        if found is None:
            raise NotFound(_not_here(document_id, chat_id))
        try:
            self._library.delete(document_id, owner)
        except DocumentNotFound:  # deleted meanwhile
            raise NotFound(_not_here(document_id, chat_id)) from None
        except RagError as error:
            raise _whole_call(error) from error
        return found

    def search(
        self,
        query: str,
        owner: str,
        chat_id: str | None = None,
        *,
        mode: str = "hybrid",
        k: int = DEFAULT_K,
    ) -> tuple[Hit, ...]:
        """The best ``k`` passages for ``query`` in this scope, numbered from 1."""
        chosen = next((m for m in SEARCH_MODES if m == mode), None)
        if chosen is None:
            raise InvalidRequest(f"The search mode must be one of: {', '.join(SEARCH_MODES)}.")
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(f"Ask for 1 to {MAX_K} passages.")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"Search for at most {MAX_QUERY_CHARS} characters.")
        if chat_id is not None:
            self.chat(owner, chat_id)
        if not query.strip():
            return ()
        try:
            return tuple(self._library.search(query, owner, chat_id, k=k, mode=chosen))
        except RagError as error:
            raise _whole_call(error) from error

    def _add_one(
        self, path: str | Path, name: str, owner: str, chat_id: str | None,
        number: int, total: int, report: Report,
    ) -> FileOutcome:
        label = safe_filename(name)

        def step(progress: IngestProgress) -> None:
            report(FileProgress(label, number, total, progress.stage,
                                (number + progress.fraction) / total))

        try:
            batch = self.uploads.add_many([(path, name)], owner, chat_id, step)
        except (ChatError, RagError) as error:  # a limit, or the index could not be written
            return _refused(label, error)
        outcome = batch.outcomes[0]
        if isinstance(outcome, IngestFailure):
            return _refused(outcome.name, outcome.error)
        return FileOutcome(outcome.name, outcome.document_id, outcome.chunk_count,
                           outcome.duplicate)


# Most specific first: the first matching class names the refusal.
_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (NotUploaded, "not_uploaded"),
    (UnsupportedType, "unsupported_type"),
    (TooMuchText, "too_much_text"),
    (DocumentTooLarge, "too_large"),
    (LibraryFull, "library_full"),
    (EmptyDocument, "empty"),
    (EncryptedDocument, "encrypted"),
    (BinaryContent, "binary"),
    (UnreadableDocument, "unreadable"),
    (DocumentError, "unreadable"),
    (LimitExceeded, "limit_exceeded"),
    (ModelUnavailable, "documents_unavailable"),
)


def _refused(name: str, error: Exception) -> FileOutcome:
    kind = next((k for cls, k in _REFUSALS if isinstance(error, cls)), "index_error")
    text = str(error) if isinstance(error, DocumentError) else f"{name}: {error}"
    return FileOutcome(name, error=text, error_type=kind)


def _whole_call(error: RagError) -> ChatError:
    if isinstance(error, ModelUnavailable):
        return DocumentsUnavailable(str(error))
    return StoreError(f"The document index cannot be used: {error}")


def _not_here(document_id: str, chat_id: str | None) -> str:
    where = "this chat or your library" if chat_id is not None else "your library"
    shown = document_id if len(document_id) <= 64 else document_id[:64] + "…"
    return f"There is no document {shown!r} in {where}."


def _entry(info: DocumentInfo) -> DocumentEntry:
    return DocumentEntry(
        document_id=info.document_id, name=info.name, chat_id=info.conversation_id,
        pages=info.pages, chunks=info.chunk_count, size_bytes=info.size_bytes,
        added_at=info.added_at,
    )
