"""The Gradio UI: ``build_ui(runtime)`` returns the Blocks that ``server.py`` mounts at /.

    layout.py    the components and where they sit
    wiring.py    events -> handlers -> Gradio updates (the only module that knows both)
    handlers.py  what each action does, over ``ChatService``; no Gradio, tested directly
    render.py    the one adapter from tree messages to Chatbot message dicts
    documents/   the Documents panel (its layout, handlers over ``DocumentService``, wiring)
    bridge.py    the footer buttons' JavaScript and the page's stylesheet

Per-session state is a ``handlers.View`` in ``gr.State`` (plus the open chat's id
in ``gr.BrowserState``, to reopen it after a reload); the service and its store
hold everything else. Nothing here keeps user state in a module global.
"""

from __future__ import annotations

import os

import gradio as gr

from chatui.runtime import Runtime
from chatui.ui.layout import build_page
from chatui.ui.wiring import session_owner, wire

__all__ = ["build_ui", "session_owner"]

ANALYTICS_EVERY = 100_000  # events between two of Gradio's analytics summaries


def build_ui(runtime: Runtime) -> gr.Blocks:
    """The page, over the runtime's chat and document services.

    ``server.py`` feeds the same ``runtime.documents.uploads`` from Gradio's upload route.
    """
    # Gradio's queue sums up its last 10,000 events in a pandas table after every event
    # (for a monitoring page chatui does not show): 2-5 ms of CPU each, beside the streams.
    # Read when the Blocks' queue is made, so set before the page is built.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))
    page = build_page(runtime.config)
    with page.blocks:
        wire(page, runtime.service, runtime.documents)
    return page.blocks
