"""The Documents panel: add files to this chat or to my library, list and delete them, search them.

    Documents (closed, under Settings)
      Add to: this chat | my library    a drop zone for several files at once
      what happened to each file (its chunks, or why it was refused)
      the documents the open chat can use: name, pages, chunks, scope; pick one, Delete
        (asks first: "Delete <name> (scope)?" Yes / Cancel)
      search them: query, mode (hybrid, dense, bm25) -> rank, score, file, page, passage
    and, by the message box, the open chat's own files as chips

The list and the chips follow the chat on screen: they are read again whenever
the session's View changes (another chat, New chat, a delete, an import, the
page's load).

Split like the chat UI:

    layout.py    the components (``build_documents_panel``); ``ui.layout`` places them
    handlers.py  what each action does, over ``documents.DocumentService``; no Gradio
    wiring.py    Gradio events -> handlers -> component updates (``wire_documents``)

The handlers reach documents only through the ``DocumentService`` (the same
one the REST API uses): scope, limits and the upload checks live there. This
package re-exports the handlers; ``layout`` and ``wiring`` are imported by
their own names (``ui.layout`` imports ``layout``; ``ui.wiring`` imports
``wiring``, which needs ``ui.layout.Page``), so nothing here imports in a
circle.
"""

from __future__ import annotations

from chatui.ui.documents.handlers import (
    MY_LIBRARY,
    SEARCH_K,
    SEARCH_MODES,
    THIS_CHAT,
    TURN_ON,
    DocumentRow,
    HitRow,
    Shelf,
    UploadStep,
    attachment_chips,
    delete_document,
    delete_question,
    search,
    shelf,
    upload,
    upload_report,
)

__all__ = [
    "MY_LIBRARY",
    "SEARCH_K",
    "SEARCH_MODES",
    "THIS_CHAT",
    "TURN_ON",
    "DocumentRow",
    "HitRow",
    "Shelf",
    "UploadStep",
    "attachment_chips",
    "delete_document",
    "delete_question",
    "search",
    "shelf",
    "upload",
    "upload_report",
]
