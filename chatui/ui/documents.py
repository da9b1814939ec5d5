"""The Documents panel: add files to this chat or to my library, list and delete them, search them.

    Documents (closed, under Settings)
      Add to: this chat | my library    a drop zone for several files at once
      what happened to each file (its chunks, or why it was refused)
      the documents the open chat can use: name, pages, chunks, scope; pick one, Delete
      search them: query, mode (hybrid, dense, bm25) -> rank, score, file, page, passage

The handlers are plain functions over the service, the library and
``uploads.DocumentUploads`` (the one way an upload becomes a document: limits
checked, the upload deleted), tested without a browser; ``wire_documents``
turns them into Gradio events. Rules they keep:

- Files are indexed one at a time, so each gets its progress and its own
  outcome: a refused file is reported by name and the others still go in.
  Every upload is deleted afterwards, whatever happened. The paths come from
  the browser: ``DocumentUploads`` reads only files Gradio's upload route wrote
  for this owner, and refuses any other path by name.
- One user's uploads are indexed one after another; other users' uploads do
  not wait for them (no shared concurrency group).
- "This chat" attaches to the open conversation (a new chat is created if none
  is open) and turns its "Use documents" setting on, before indexing starts,
  so a question sent meanwhile is not saved with the setting still off.
- What the panel lists and searches is what an answer in the open chat can
  retrieve: the owner's library plus that chat's attachments.
- Names and passages come from outside: the Markdown report escapes raw HTML
  (``sanitize.inert_html``); the tables show plain text, never HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from chatui.errors import ChatError
from chatui.sanitize import inert_html
from chatui.service import ChatService
from chatui.tree import Conversation
from chatui.ui import handlers
from chatui.ui.screen import Screen, View, describe_error, settings_from_form, show
from chatui.uploads import DocumentUploads
from rag_index import (
    DocumentError,
    IngestFailure,
    IngestProgress,
    Library,
    RagError,
    SearchMode,
)
from rag_index.loaders import safe_filename

if TYPE_CHECKING:
    from chatui.ui.layout import Page

THIS_CHAT = "chat"
MY_LIBRARY = "library"
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")
SEARCH_K = 8
FILE_TYPES = ".txt .md .pdf .html .htm .docx"
TURN_ON = "Turn on *Use documents* in Settings for this chat's answers to use them."

Report = Callable[[float, str], None]
"""Progress of an upload: the fraction done (0..1) and a line saying what is happening."""

DocumentRow = tuple[str, int, int, str]  # name, pages, chunks, scope
HitRow = tuple[int, float, str, str, str]  # number, score, file, page, passage


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One uploaded file: indexed (``chunks``), already there (``duplicate``), or ``error``."""

    name: str
    chunks: int = 0
    duplicate: bool = False
    error: str | None = None


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


# ----- handlers ------------------------------------------------------------------


def shelf(library: Library, owner: str, view: View) -> Shelf:
    """The owner's library and the open chat's attachments, oldest first."""
    rows: list[DocumentRow] = []
    choices: list[tuple[str, str]] = []
    for info in library.documents(owner, view.conversation_id):
        scope = "this chat" if info.conversation_id is not None else "my library"
        rows.append((info.name, info.pages, info.chunk_count, scope))
        choices.append((f"{info.name} ({scope})", info.document_id))
    return Shelf(tuple(rows), tuple(choices))


def upload(
    service: ChatService,
    uploads: DocumentUploads,
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
    outcomes: list[FileOutcome] = []  # one per file handed to ``uploads``, which deletes it
    try:
        if not files:
            yield UploadStep(None, "Choose one or more files first.", done=True)
            return
        screen: Screen | None = None
        note = ""
        target: str | None = None
        if scope == THIS_CHAT:
            try:
                conversation, changed = _chat_using_documents(service, owner, view, form)
            except (ChatError, ValueError) as error:
                problem = describe_error(error) if isinstance(error, ChatError) else str(error)
                yield UploadStep(None, inert_html(f"Nothing was added: {problem}"), done=True)
                return
            target = conversation.id
            if changed:
                screen = show(service, owner, view, conversation, settings=conversation.settings)
                note = "*Use documents* is now on for this chat."
            elif not conversation.settings.rag_enabled:
                note = TURN_ON
        elif not _uses_documents(service, owner, view):
            note = TURN_ON
        where = "this chat" if target else "your library"
        loading = f"{uploads.library.status} " if not uploads.library.ready else ""
        yield UploadStep(screen, f"{loading}Adding {_files(len(files))} to {where}…")
        for number, (path, name) in enumerate(files):
            outcome = _add_one(uploads, owner, target, path, name, number, len(files), report)
            outcomes.append(outcome)
            done = f"{name}: " + (_chunks(outcome.chunks) if outcome.error is None else "refused")
            report((number + 1) / len(files), f"{done} ({number + 1} of {len(files)} files)")
        opened = screen.view if screen is not None else view
        yield UploadStep(
            None, upload_report(outcomes, where, note), tuple(outcomes),
            shelf(uploads.library, owner, opened), done=True,
        )
    finally:
        for path, _name in files[len(outcomes):]:  # never handed over: refused early, or cancelled
            uploads.discard(path, owner)


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
        lines.append(f"**Not added ({len(refused)} of {len(outcomes)}):**")
        lines.extend(f"- ✗ {outcome.error}" for outcome in refused)
    if note and added:
        lines.append(note)
    return inert_html("\n".join(lines))


def delete_document(
    library: Library, owner: str, view: View, document_id: str | None
) -> tuple[Shelf, str]:
    """Remove one of the owner's documents; the new listing and what happened."""
    if not document_id:
        return shelf(library, owner, view), "Pick a document to delete first."
    try:
        removed = library.delete(document_id, owner)
    except RagError as error:
        return shelf(library, owner, view), inert_html(str(error))
    return shelf(library, owner, view), inert_html(f"Deleted {removed.name}.")


def search(
    library: Library, owner: str, view: View, query: str, mode: str, k: int = SEARCH_K
) -> tuple[tuple[HitRow, ...], str]:
    """The best passages for ``query`` in what the open chat can use, with their scores."""
    if not query.strip():
        return (), "Type something to search for."
    chosen: SearchMode = next((m for m in SEARCH_MODES if m == mode), "hybrid")
    try:
        hits = library.search(query, owner, view.conversation_id, k=k, mode=chosen)
    except RagError as error:
        return (), inert_html(str(error))
    rows = tuple(
        (hit.citation, round(float(hit.score), 4), hit.document_name,
         str(hit.page) if hit.page is not None else "", " ".join(hit.text.split()))
        for hit in hits
    )
    return rows, "" if rows else "Nothing found in the documents this chat can use."


def _chat_using_documents(
    service: ChatService, owner: str, view: View, form: Sequence[Any]
) -> tuple[Conversation, bool]:
    """The open chat with "Use documents" on (a new one if none is open); True if that changed."""
    conversation = handlers.current(service, owner, view)
    if conversation is None:
        settings = settings_from_form(form, handlers.fresh_settings(service, None))
        return service.create(owner, settings=replace(settings, rag_enabled=True)), True
    if conversation.settings.rag_enabled or service.is_generating(conversation.id):
        return conversation, False  # busy: its settings cannot change until the answer ends
    wanted = replace(conversation.settings, rag_enabled=True)
    return service.update_settings(conversation.id, wanted, owner), True


def _uses_documents(service: ChatService, owner: str, view: View) -> bool:
    """Whether the open chat (if any) answers from documents."""
    try:
        conversation = handlers.current(service, owner, view)
    except ChatError:
        return True  # no chat to talk about
    return conversation is None or conversation.settings.rag_enabled


def _add_one(
    uploads: DocumentUploads, owner: str, conversation_id: str | None,
    path: str | Path, name: str, number: int, total: int, report: Report,
) -> FileOutcome:
    def step(progress: IngestProgress) -> None:
        report((number + progress.fraction) / total, f"{name}: {progress.stage}…")

    try:
        batch = uploads.add_many([(path, name)], owner, conversation_id, step)
    except (ChatError, RagError) as error:  # a limit, or the index could not be written
        text = str(error) if isinstance(error, DocumentError) else f"{name}: {error}"
        return FileOutcome(name, error=text)
    outcome = batch.outcomes[0]
    if isinstance(outcome, IngestFailure):
        return FileOutcome(name, error=str(outcome.error))
    return FileOutcome(name, chunks=outcome.chunk_count, duplicate=outcome.duplicate)


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _chunks(count: int) -> str:
    return "1 chunk" if count == 1 else f"{count} chunks"


# ----- layout --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentsPanel:
    scope: gr.Radio
    files: gr.File
    report: gr.Markdown
    listing: gr.Dataframe
    picked: gr.Dropdown
    delete: gr.Button
    query: gr.Textbox
    mode: gr.Radio
    find: gr.Button
    hits: gr.Dataframe


def build_documents_panel() -> DocumentsPanel:
    with gr.Accordion("Documents", open=False, elem_id="chatui-documents"):
        scope = gr.Radio(
            [("This chat", THIS_CHAT), ("My library (all my chats)", MY_LIBRARY)],
            value=THIS_CHAT, label="Add to", elem_id="chatui-document-scope",
        )
        # No ``file_types``: Gradio would refuse the whole batch for one odd file;
        # the library refuses that file alone, by name.
        files = gr.File(file_count="multiple", label=f"Add documents ({FILE_TYPES})",
                        height=120, elem_id="chatui-upload")
        report = gr.Markdown("", elem_id="chatui-upload-report")
        listing = gr.Dataframe(
            headers=["Document", "Pages", "Chunks", "Scope"],
            datatype=["str", "number", "number", "str"], interactive=False,
            label="Documents this chat can use", elem_id="chatui-document-list",
        )
        with gr.Row(equal_height=True):
            picked = gr.Dropdown(choices=[], value=None, label="Document", scale=4,
                                 elem_id="chatui-document-picked")
            delete = gr.Button("Delete document", variant="stop", size="sm", scale=1)
        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Search the documents", scale=4,
                               placeholder="Words or a question", elem_id="chatui-document-query")
            mode = gr.Radio(list(SEARCH_MODES), value="hybrid", label="Mode", scale=2)
        find = gr.Button("Search documents", size="sm")
        hits = gr.Dataframe(
            headers=["#", "Score", "File", "Page", "Passage"],
            datatype=["number", "number", "str", "str", "str"], interactive=False, wrap=True,
            column_widths=["5%", "9%", "20%", "7%", "59%"],
            label="Best passages", elem_id="chatui-document-hits",
        )
    return DocumentsPanel(scope, files, report, listing, picked, delete, query, mode, find, hits)


# ----- wiring --------------------------------------------------------------------


def wire_documents(
    page: Page,
    service: ChatService,
    uploads: DocumentUploads,
    *,
    outputs: list[Any],
    shown: Callable[[Screen, View], tuple[Any, ...]],
    owner_of: Callable[[gr.Request | None], str],
) -> None:
    """Events of the panel. ``outputs`` / ``shown`` are the page's (``wiring``)."""
    panel = page.documents
    library = uploads.library
    listed = [panel.listing, panel.picked]

    def shelf_updates(found: Shelf) -> tuple[Any, Any]:
        return [list(row) for row in found.rows], gr.update(choices=list(found.choices), value=None)

    def on_upload(request: gr.Request, view: View, paths: list[str] | None, scope: str,
                  progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio passes it
                  *form: Any) -> Iterator[tuple[Any, ...]]:
        skip = (gr.skip(),) * len(outputs)
        steps = upload(service, uploads, owner_of(request), view, paths, scope, form,
                       lambda fraction, line: progress(fraction, desc=line))
        for step in steps:
            around = shown(step.screen, view) if step.screen is not None else skip
            found = shelf_updates(step.shelf) if step.shelf is not None else (gr.skip(),) * 2
            yield (*around, None if step.done else gr.skip(), step.report, *found)

    def on_list(request: gr.Request, view: View) -> tuple[Any, Any]:
        return shelf_updates(shelf(library, owner_of(request), view))

    def on_delete(request: gr.Request, view: View, document_id: str | None
                  ) -> tuple[Any, Any, str]:
        found, said = delete_document(library, owner_of(request), view, document_id)
        return (*shelf_updates(found), said)

    def on_search(request: gr.Request, view: View, query: str, mode: str) -> list[list[Any]]:
        if not library.ready and query.strip():
            gr.Info(library.status)  # "Loading the document model…": the search waits for it
        rows, said = search(library, owner_of(request), view, query, mode)
        if said:
            gr.Info(said)
        return [list(row) for row in rows]

    panel.files.upload(
        on_upload, [page.view, panel.files, panel.scope, *page.form],
        [*outputs, panel.files, panel.report, *listed],
        # No shared group: one user's uploads wait for each other in ``DocumentUploads``
        # (a lock per owner), never for another user's.
        concurrency_limit=None, show_progress="full", show_progress_on=[panel.files],
        api_visibility="private",
    )
    quick: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden",
                             "api_visibility": "private"}
    # The chat list's value is the open chat: when it changes, so do the usable documents.
    page.conversations.change(on_list, [page.view], listed, **quick)
    page.blocks.load(on_list, [page.view], listed, **quick)
    panel.delete.click(on_delete, [page.view, panel.picked], [*listed, panel.report], **quick)
    gr.on([panel.find.click, panel.query.submit], on_search,
          [page.view, panel.query, panel.mode], [panel.hits], **quick)
