"""The Documents panel's components and where they sit; no events here (see ``wiring``)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from chatui.ui.documents.handlers import MY_LIBRARY, SEARCH_MODES, THIS_CHAT
from rag_index import SUPPORTED_EXTENSIONS

FILE_TYPES = " ".join(sorted(SUPPORTED_EXTENSIONS))  # what the loader reads, one definition

# ----- helper F: the attachment chips by the message box ---------------------------------
CHIPS_CSS = """
.chatui-chips { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 2px 0 4px; }
.chatui-chips-label { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
.chatui-chip { display: inline-flex; align-items: center; min-height: 24px; padding: 2px 10px;
  border-radius: 999px; border: 1px solid var(--border-color-primary);
  background: var(--background-fill-secondary); font-size: var(--text-sm);
  max-width: 260px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
"""


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
    chips: gr.HTML  # the open chat's attachments, by the message box (``build_attachment_chips``)
    confirm_row: gr.Row  # "Delete <name>?" Yes / Cancel, shown by Delete
    confirm_text: gr.Markdown
    confirm_delete: gr.Button
    cancel_delete: gr.Button


def build_attachment_chips() -> gr.HTML:
    """Where the open chat's attached files show as chips; placed by ``ui.layout``."""
    return gr.HTML("", elem_id="chatui-attachments", padding=False, css_template=CHIPS_CSS)


def build_documents_panel(chips: gr.HTML | None = None) -> DocumentsPanel:
    """The panel; ``chips`` is where the page placed the chips (else they go in the panel)."""
    with gr.Accordion("Documents", open=False, elem_id="chatui-documents"):
        chips = chips if chips is not None else build_attachment_chips()
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
            delete = gr.Button("Delete document", variant="stop", size="sm", scale=1,
                               elem_id="chatui-document-delete")
        with gr.Row(visible=False, elem_id="chatui-document-confirm") as confirm_row:
            confirm_text = gr.Markdown("")
            confirm_delete = gr.Button("Yes, delete", variant="stop", size="sm", scale=0,
                                       elem_id="chatui-document-confirm-delete")
            cancel_delete = gr.Button("Cancel", size="sm", scale=0,
                                      elem_id="chatui-document-cancel-delete")
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
    return DocumentsPanel(scope, files, report, listing, picked, delete, query, mode, find, hits,
                          chips, confirm_row, confirm_text, confirm_delete, cancel_delete)
