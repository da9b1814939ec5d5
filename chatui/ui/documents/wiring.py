"""The Documents panel's Gradio events: components -> ``handlers`` -> component updates.

One user's uploads are indexed one after another (the document service keeps
a queue per owner); other users' uploads do not wait for them, so no event
here shares a concurrency group (``concurrency_limit=None``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from chatui.documents import DocumentService
from chatui.service import ChatService
from chatui.ui.documents.handlers import Shelf, delete_document, search, shelf, upload
from chatui.ui.layout import Page
from chatui.ui.screen import Screen, View


def wire_documents(
    page: Page,
    service: ChatService,
    documents: DocumentService,
    *,
    outputs: list[Any],
    shown: Callable[[Screen, View], tuple[Any, ...]],
    owner_of: Callable[[gr.Request | None], str],
) -> None:
    """Events of the panel. ``outputs`` / ``shown`` are the page's (``ui.wiring``)."""
    panel = page.documents
    listed = [panel.listing, panel.picked]

    def shelf_updates(found: Shelf) -> tuple[Any, Any]:
        return [list(row) for row in found.rows], gr.update(choices=list(found.choices), value=None)

    def on_upload(request: gr.Request, view: View, paths: list[str] | None, scope: str,
                  progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio passes it
                  *form: Any) -> Iterator[tuple[Any, ...]]:
        skip = (gr.skip(),) * len(outputs)
        steps = upload(service, documents, owner_of(request), view, paths, scope, form,
                       lambda fraction, line: progress(fraction, desc=line))
        for step in steps:
            around = shown(step.screen, view) if step.screen is not None else skip
            found = shelf_updates(step.shelf) if step.shelf is not None else (gr.skip(),) * 2
            yield (*around, None if step.done else gr.skip(), step.report, *found)

    def on_list(request: gr.Request, view: View) -> tuple[Any, Any]:
        return shelf_updates(shelf(documents, owner_of(request), view))

    def on_delete(request: gr.Request, view: View, document_id: str | None
                  ) -> tuple[Any, Any, str]:
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
    # The chat list's value is the open chat: when it changes, so do the usable documents.
    page.conversations.change(on_list, [page.view], listed, **quick)
    page.blocks.load(on_list, [page.view], listed, **quick, queue=False)  # as the page load
    panel.delete.click(on_delete, [page.view, panel.picked], [*listed, panel.report], **quick)
    gr.on([panel.find.click, panel.query.submit], on_search,
          [page.view, panel.query, panel.mode], [panel.hits], **quick)
