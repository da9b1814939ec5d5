"""The Documents panel's Gradio events: components -> ``handlers`` -> component updates.

The list (and the chips by the message box) follows the open chat: it is read
again whenever the session's ``View`` changes (a chat opened, a new chat, a
delete, an import, the page's load opening the remembered chat), from the View
as it is after that change, and once at load for a page that opens no chat.
Delete asks first; the service checks the document against the owner and the
open chat whatever the page sends.

One user's uploads are indexed one after another (the document service keeps
a queue per owner); other users' uploads do not wait for them, so no event
here shares a concurrency group (``concurrency_limit=None``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import gradio as gr

from chatui.documents import DocumentService
from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.ui.documents.handlers import (
    Shelf,
    attachment_chips,
    delete_document,
    delete_question,
    search,
    shelf,
    upload,
)
from chatui.ui.layout import Page
from chatui.ui.refresh import Refresh
from chatui.ui.screen import Screen, View


def wire_documents(
    page: Page,
    service: ChatService,
    documents: DocumentService,
    *,
    outputs: list[Any],
    shown: Callable[[Screen, View], tuple[Any, ...]],
    owner_of: Callable[[gr.Request | None], str],
) -> Refresh:
    """Events of the panel. ``outputs`` / ``shown`` are the page's (``ui.wiring``). The
    list's refresh on View changes is returned, for ``ui.refresh``."""
    panel = page.documents
    listed = [panel.listing, panel.picked, panel.chips]

    def shelf_updates(found: Shelf) -> tuple[Any, Any, str]:
        return ([list(row) for row in found.rows],
                gr.update(choices=list(found.choices), value=None), attachment_chips(found))

    def on_upload(request: gr.Request, view: View, paths: list[str] | None, scope: str,
                  progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio passes it
                  *form: Any) -> Iterator[tuple[Any, ...]]:
        skip = (gr.skip(),) * len(outputs)
        steps = upload(service, documents, owner_of(request), view, paths, scope, form,
                       lambda fraction, line: progress(fraction, desc=line))
        for step in steps:
            around = shown(step.screen, view) if step.screen is not None else skip
            found = shelf_updates(step.shelf) if step.shelf is not None else (gr.skip(),) * 3
            yield (*around, None if step.done else gr.skip(), step.report, *found)

    def on_list(request: gr.Request, view: View) -> tuple[Any, Any, str]:
        return shelf_updates(shelf(documents, owner_of(request), view))

    def on_load(request: gr.Request, view: View, remembered: str | None) -> tuple[Any, ...]:
        """The list for the chat the page's load opens (``handlers.load``'s choice)."""
        owner = owner_of(request)
        opened = opening(service, owner, remembered)
        if isinstance(opened, bool):  # the load opens the newest chat: its View change lists it
            return (gr.skip(),) * len(listed)
        return shelf_updates(shelf(documents, owner, replace(view, conversation_id=opened)))

    def on_ask(request: gr.Request, view: View, document_id: str | None) -> tuple[Any, ...]:
        question = delete_question(shelf(documents, owner_of(request), view), document_id)
        if question is None:
            return gr.update(visible=False), "", "Pick a document to delete first."
        return gr.update(visible=True), question, ""

    def on_delete(request: gr.Request, view: View, document_id: str | None
                  ) -> tuple[Any, Any, str, str]:
        found, said = delete_document(documents, owner_of(request), view, document_id)
        return (*shelf_updates(found), said)

    def on_search(request: gr.Request, view: View, query: str, mode: str) -> list[list[Any]]:
        if not documents.ready and query.strip():
            gr.Info(documents.status)  # "Loading the document model…": the search waits for it
        rows, said = search(documents, owner_of(request), view, query, mode)
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
    page.blocks.load(on_load, [page.view, page.remembered], listed, **quick, queue=False)
    hide = gr.update(visible=False)
    panel.delete.click(on_ask, [page.view, panel.picked],
                       [panel.confirm_row, panel.confirm_text, panel.report], **quick)
    panel.cancel_delete.click(lambda: hide, None, panel.confirm_row, **quick)
    panel.confirm_delete.click(lambda: hide, None, panel.confirm_row, **quick).then(
        on_delete, [page.view, panel.picked], [*listed, panel.report], **quick)
    gr.on([panel.find.click, panel.query.submit], on_search,
          [page.view, panel.query, panel.mode], [panel.hits], **quick)
    # Read from the View as it is after the change: a chat opened, new, deleted, imported.
    return Refresh(on_list, [page.view], listed)


def opening(service: ChatService, owner: str, remembered: str | None) -> str | bool | None:
    """The chat a page's load opens: the remembered one if it is the owner's, None when
    there is no chat at all, False when it is the newest one (found by the load itself)."""
    if remembered:
        try:
            return service.conversation(remembered, owner).id
        except ChatError:
            pass
    return False if service.conversations(owner) else None
