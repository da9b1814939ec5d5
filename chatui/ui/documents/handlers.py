"""What the Documents panel does, as plain functions over the chat and document services.

No Gradio here: ``wiring`` turns these into events, and the tests call them
directly. Rules they keep (the service keeps the rest: scope, limits, the
upload checks):

- Files are indexed one at a time, so each gets its progress and its own
  outcome: a refused file is reported by name and the others still go in.
  Every upload is deleted afterwards, whatever happened: the service deletes
  the files it was handed, ``upload`` the ones it never handed over.
- "This chat" attaches to the open conversation (a new chat is created, with
  the Settings form's values, if none is open) and turns its "Use documents"
  setting on, before indexing starts, so a question sent meanwhile is not
  saved with the setting still off.
- What the panel lists and searches is what an answer in the open chat can
  retrieve: the owner's library plus that chat's attachments.
- Names and passages come from outside: the Markdown report escapes raw HTML
  (``sanitize.inert_html``); the tables show plain text, never HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_index.loaders import safe_filename

from chatui.documents import (
    DEFAULT_K,
    SEARCH_MODES,
    DocumentService,
    FileOutcome,
    FileProgress,
)
from chatui.errors import ChatError, NotFound
from chatui.sanitize import inert_html
from chatui.service import ChatService
from chatui.ui import handlers
from chatui.ui.screen import Screen, View, describe_error, settings_from_form, show

THIS_CHAT = "chat"
MY_LIBRARY = "library"
SEARCH_K = DEFAULT_K
TURN_ON = "Turn on *Use documents* in Settings for this chat's answers to use them."

Report = Callable[[float, str], None]
"""Progress of an upload: the fraction done (0..1) and a line saying what is happening."""

DocumentRow = tuple[str, int, int, str]  # name, pages, chunks, scope
HitRow = tuple[int, float, str, str, str]  # number, score, file, page, passage


@dataclass(frozen=True, slots=True)
class Shelf:
    """The documents the open chat can use, as listed, and the choices of the Delete picker."""

    rows: tuple[DocumentRow, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()  # (label, document id)


@dataclass(frozen=True, slots=True)
class UploadStep:
    """One step of an upload: the page around the panel (None: unchanged) and the panel."""

    screen: Screen | None
    report: str  # Markdown, one line per file so far
    outcomes: tuple[FileOutcome, ...] = ()
    shelf: Shelf | None = None
    done: bool = False


def shelf(documents: DocumentService, owner: str, view: View) -> Shelf:
    """The owner's library and the open chat's attachments, oldest first."""
    try:
        entries = documents.listing(owner, view.conversation_id)
    except NotFound:  # the open chat was deleted elsewhere: the library is still theirs
        entries = documents.listing(owner, None)
    rows: list[DocumentRow] = []
    choices: list[tuple[str, str]] = []
    for entry in entries:
        scope = "this chat" if entry.scope == "chat" else "my library"
        rows.append((entry.name, entry.pages, entry.chunks, scope))
        choices.append((f"{entry.name} ({scope})", entry.document_id))
    return Shelf(tuple(rows), tuple(choices))


def attachment_chips(found: Shelf) -> str:
    """HTML: one chip per file attached to the open chat (names escaped), or nothing."""
    names = [row[0] for row in found.rows if row[3] == "this chat"]
    if not names:
        return ""
    chips = "".join(f'<span class="chatui-chip" title="Attached to this chat">'
                    f"{html.escape(name)}</span>" for name in names)
    return ('<div class="chatui-chips" role="group" aria-label="Files attached to this chat">'
            f'<span class="chatui-chips-label">Attached:</span>{chips}</div>')


def delete_question(found: Shelf, document_id: str | None) -> str | None:
    """Markdown asking to confirm deleting the picked document; None if it is not listed."""
    label = next((label for label, key in found.choices if key == document_id), None)
    if label is None:
        return None
    return inert_html(f"**Delete {label}?** It cannot be undone.")


def upload(
    service: ChatService,
    documents: DocumentService,
    owner: str,
    view: View,
    paths: Sequence[str | Path] | None,
    scope: str,
    form: Sequence[Any],
    progress: Report | None = None,
) -> Iterator[UploadStep]:
    """Index the uploaded files into ``scope``; yields once before and once after indexing."""
    report = progress or (lambda _fraction, _line: None)
    files = [(path, safe_filename(Path(path).name)) for path in paths or ()]
    handed_over = False  # from then on the service deletes every upload
    try:
        if not files:
            yield UploadStep(None, "Choose one or more files first.", done=True)
            return
        screen: Screen | None = None
        note = ""
        target: str | None = None
        if scope == THIS_CHAT:
            try:
                fresh = settings_from_form(form, handlers.fresh_settings(service, None))
                attached = documents.attach(owner, view.conversation_id, new_chat=fresh)
            except (ChatError, ValueError) as error:
                problem = describe_error(error) if isinstance(error, ChatError) else str(error)
                yield UploadStep(None, inert_html(f"Nothing was added: {problem}"), done=True)
                return
            conversation = attached.conversation
            target = conversation.id
            if attached.changed:
                screen = show(service, owner, view, conversation, settings=conversation.settings)
                note = "*Use documents* is now on for this chat."
            elif not conversation.settings.rag_enabled:
                note = TURN_ON
        elif not _uses_documents(service, owner, view):
            note = TURN_ON
        where = "this chat" if target else "your library"
        loading = f"{documents.status} " if not documents.ready else ""
        yield UploadStep(screen, f"{loading}Adding {_files(len(files))} to {where}…")

        def step(at: FileProgress) -> None:
            if at.outcome is None:
                report(at.fraction, f"{at.name}: {at.stage}…")
                return
            done = _chunks(at.outcome.chunks) if at.outcome.added else "refused"
            report(at.fraction, f"{at.name}: {done} ({at.number + 1} of {at.total} files)")

        handed_over = True
        try:
            outcomes = documents.upload(files, owner, target, step)
        except ChatError as error:  # too many files, no room left, the chat is gone
            yield UploadStep(None, inert_html(f"Nothing was added: {error}"), done=True)
            return
        opened = screen.view if screen is not None else view
        yield UploadStep(
            None, upload_report(outcomes, where, note), outcomes,
            shelf(documents, owner, opened), done=True,
        )
    finally:
        if not handed_over:  # refused early, or the event was cancelled before indexing
            for path, _name in files:
                documents.discard(path, owner)


def upload_report(outcomes: Sequence[FileOutcome], where: str, note: str = "") -> str:
    """Markdown: the files added (with their chunks), then the files refused and why."""
    added = [o for o in outcomes if o.error is None]
    refused = [o for o in outcomes if o.error is not None]
    lines: list[str] = []
    if added:
        lines.append(f"**Added to {where}:**")
        for outcome in added:
            again = " (already there)" if outcome.duplicate else ""
            lines.append(f"- ✓ {outcome.name}: {_chunks(outcome.chunks)}{again}")
    if refused:
        lines.append(f"\n**Not added ({len(refused)} of {len(outcomes)}):**")  # not in the list
        lines.extend(f"- ✗ {outcome.error}" for outcome in refused)
    if note and added:
        lines.append(f"\n{note}")  # its own paragraph, not a lazy line of the last item
    return inert_html("\n".join(lines))


def delete_document(
    documents: DocumentService, owner: str, view: View, document_id: str | None
) -> tuple[Shelf, str]:
    """Remove one of the documents the open chat can use; the new listing and what happened.

    The service checks the document against the owner and the open chat: one
    attached to another chat is not deleted from here.
    """
    if not document_id:
        return shelf(documents, owner, view), "Pick a document to delete first."
    try:
        removed = documents.delete(document_id, owner, view.conversation_id)
    except ChatError as error:
        return shelf(documents, owner, view), inert_html(str(error))
    return shelf(documents, owner, view), inert_html(f"Deleted {removed.name}.")


def search(
    documents: DocumentService, owner: str, view: View, query: str, mode: str,
    k: int = SEARCH_K,
) -> tuple[tuple[HitRow, ...], str]:
    """The best passages for ``query`` in what the open chat can use, with their scores."""
    if not query.strip():
        return (), "Type something to search for."
    chosen = mode if mode in SEARCH_MODES else "hybrid"
    try:
        hits = documents.search(query, owner, view.conversation_id, mode=chosen, k=k)
    except ChatError as error:
        return (), inert_html(str(error))
    rows = tuple(
        (hit.citation, round(float(hit.score), 4), hit.document_name,
         str(hit.page) if hit.page is not None else "", " ".join(hit.text.split()))
        for hit in hits
    )
    return rows, "" if rows else "Nothing found in the documents this chat can use."


def _uses_documents(service: ChatService, owner: str, view: View) -> bool:
    """Whether the open chat (if any) answers from documents."""
    try:
        conversation = handlers.current(service, owner, view)
    except ChatError:
        return True  # no chat to talk about
    return conversation is None or conversation.settings.rag_enabled


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _chunks(count: int) -> str:
    return "1 chunk" if count == 1 else f"{count} chunks"
