"""The Documents panel's components and where they sit; no events here (see ``wiring``)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from chatui.ui.documents.handlers import MY_LIBRARY, SEARCH_MODES, THIS_CHAT
from rag_index import SUPPORTED_EXTENSIONS

FILE_TYPES = " ".join(sorted(SUPPORTED_EXTENSIONS))  # what the loader reads, one definition


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
