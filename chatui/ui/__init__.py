"""The Gradio UI: ``build_ui(runtime)`` returns the Blocks that ``server.py`` mounts at /.

    layout.py    the components and where they sit
    wiring.py    events -> handlers -> Gradio updates (the only module that knows both)
    handlers.py  what each action does, over ``ChatService``; no Gradio, tested directly
    render.py    the one adapter from tree messages to Chatbot message dicts
    documents.py the Documents panel: upload, list, delete, search; its handlers and events
    bridge.py    the footer buttons' JavaScript and the page's stylesheet

Per-session state is a ``handlers.View`` in ``gr.State`` (plus the open chat's id
in ``gr.BrowserState``, to reopen it after a reload); the service and its store
hold everything else. Nothing here keeps user state in a module global.
"""

from __future__ import annotations

import gradio as gr

from chatui.runtime import Runtime
from chatui.ui.layout import build_page
from chatui.ui.wiring import session_owner, wire
from chatui.uploads import DocumentUploads

__all__ = ["build_ui", "session_owner"]


def build_ui(runtime: Runtime, uploads: DocumentUploads | None = None) -> gr.Blocks:
    """The page; ``uploads`` is the one ``server.py`` also feeds from Gradio's upload route."""
    page = build_page(runtime.config)
    uploads = uploads or DocumentUploads(runtime.library, runtime.service.limits)
    with page.blocks:
        wire(page, runtime.service, uploads)
    return page.blocks
