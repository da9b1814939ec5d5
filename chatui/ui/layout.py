"""The components of the page and where they sit; no event wiring here (see ``wiring``).

    sidebar   New chat · Search · the conversations, newest first
    main      title (edit to rename) · Delete (asks first)
              the model's status line (name, server health; refreshed by a timer)
              the chat · notice line · message box · Send / Stop
              Settings (closed): model, system prompt, sampling, seed, use documents
              Documents (closed): upload, list, delete, search (``documents``)
              the hidden footer bridge (``bridge``)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import gradio as gr

from chatui.config import Config
from chatui.sanitize import CHAT_LATEX_DELIMITERS
from chatui.ui.bridge import bridge_script
from chatui.ui.documents import DocumentsPanel, build_documents_panel
from chatui.ui.screen import FORM_FIELDS, View
from chatui.ui.status import STATUS_SECONDS

# One definition: ``sanitize`` must take out the same LaTeX regions as the Chatbot.
LATEX_DELIMITERS = CHAT_LATEX_DELIMITERS

SettingsField = gr.Dropdown | gr.Textbox | gr.Number | gr.Checkbox


@dataclass(frozen=True, slots=True)
class Page:
    blocks: gr.Blocks
    view: gr.State
    remembered: gr.BrowserState  # the open conversation's id, kept in the browser
    new_chat: gr.Button
    search: gr.Textbox
    conversations: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_row: gr.Row
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    backend_status: gr.Markdown  # the model and its server's health (``ui.status``)
    status_timer: gr.Timer
    chatbot: gr.Chatbot
    notice: gr.Markdown
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    form: tuple[SettingsField, ...]  # in ``FORM_FIELDS`` order
    documents: DocumentsPanel
    bridge: gr.HTML


def build_page(config: Config) -> Page:
    with gr.Blocks(title="chatui", fill_height=True) as blocks:
        view = gr.State(View(image_hosts=config.allowed_image_hosts))
        remembered = gr.BrowserState(
            None, storage_key="chatui-open-conversation", secret=_browser_secret(config),
        )
        with gr.Sidebar(label="Conversations", width=300):
            new_chat = gr.Button("+ New chat", variant="primary")
            search = gr.Textbox(placeholder="Search titles and messages", show_label=False,
                                container=False)
            conversations = gr.Radio(choices=[], show_label=False, container=False,
                                     elem_id="chatui-conversations")
        with gr.Row(equal_height=True):
            title = gr.Textbox(placeholder="New chat", show_label=False, container=False,
                               scale=6, elem_id="chatui-title")
            rename = gr.Button("Rename", size="sm", scale=0, min_width=80)
            delete = gr.Button("Delete", size="sm", scale=0, min_width=80)
        with gr.Row(visible=False) as confirm_row:
            gr.Markdown("**Delete this chat and all its branches?** This cannot be undone.")
            confirm_delete = gr.Button("Yes, delete", variant="stop", size="sm", scale=0)
            cancel_delete = gr.Button("Cancel", size="sm", scale=0)
        backend_status = gr.Markdown("", elem_id="chatui-backend-status")
        status_timer = gr.Timer(STATUS_SECONDS)
        chatbot = gr.Chatbot(
            show_label=False, height="65vh", scale=1, layout="panel", editable="user",
            latex_delimiters=LATEX_DELIMITERS, buttons=["copy", "copy_all"],
            placeholder="Ask anything. Answers stream here; every answer can be "
            "regenerated, continued or edited into a new branch.",
            elem_id="chatui-chat",
        )
        notice = gr.Markdown("", elem_id="chatui-notice")
        with gr.Row(equal_height=True):
            message = gr.Textbox(placeholder="Message (Enter sends, Shift+Enter breaks the line)",
                                 show_label=False, lines=2, max_lines=12, scale=8,
                                 autofocus=True, elem_id="chatui-message")
            send = gr.Button("Send", variant="primary", scale=1, min_width=90)
            stop = gr.Button("Stop", variant="stop", scale=1, min_width=90, visible=False)
        form = _settings_panel(config)
        documents = build_documents_panel()
        bridge = gr.HTML("", html_template="", js_on_load=bridge_script(), elem_id="chatui-bridge")
    return Page(
        blocks=blocks, view=view, remembered=remembered, new_chat=new_chat, search=search,
        conversations=conversations, title=title, rename=rename, delete=delete,
        confirm_row=confirm_row, confirm_delete=confirm_delete, cancel_delete=cancel_delete,
        backend_status=backend_status, status_timer=status_timer,
        chatbot=chatbot, notice=notice, message=message, send=send, stop=stop, form=form,
        documents=documents,
        bridge=bridge,
    )


def _settings_panel(config: Config) -> tuple[SettingsField, ...]:
    defaults = config.defaults
    default = "server default"
    with gr.Accordion("Settings (saved with the chat)", open=False):
        with gr.Row():
            model = gr.Dropdown(choices=[], value=defaults.model or config.model,
                                label="Model", allow_custom_value=True, scale=2,
                                info="Also used by ↻ regenerate")
            seed = gr.Number(defaults.seed, label="Seed", precision=0, placeholder="random")
        system_prompt = gr.Textbox(defaults.system_prompt, label="System prompt", lines=2)
        with gr.Row():
            temperature = gr.Number(defaults.temperature, label="Temperature", minimum=0,
                                    maximum=5, step=0.05, placeholder=default)
            top_p = gr.Number(defaults.top_p, label="Top p", minimum=0, maximum=1, step=0.05,
                              placeholder=default)
            max_tokens = gr.Number(defaults.max_tokens, label="Max tokens", precision=0,
                                   minimum=1, placeholder=default)
        with gr.Row():
            top_k = gr.Number(defaults.top_k, label="Top k", precision=0, minimum=0,
                              placeholder=default)
            min_p = gr.Number(defaults.min_p, label="Min p", minimum=0, maximum=1, step=0.01,
                              placeholder=default)
            repeat_penalty = gr.Number(defaults.repeat_penalty, label="Repeat penalty",
                                       minimum=0, step=0.05, placeholder=default)
        rag_enabled = gr.Checkbox(defaults.rag_enabled, label="Use documents",
                                  info="Answer from this chat's documents and your library, "
                                  "citing them as [1], [2], …", elem_id="chatui-rag")
    by_name: dict[str, SettingsField] = {
        "model": model, "system_prompt": system_prompt, "temperature": temperature,
        "top_p": top_p, "max_tokens": max_tokens, "top_k": top_k, "min_p": min_p,
        "repeat_penalty": repeat_penalty, "seed": seed, "rag_enabled": rag_enabled,
    }
    return tuple(by_name[name] for name in FORM_FIELDS)


def _browser_secret(config: Config) -> str:
    """A key that survives restarts, so the browser's remembered chat can still be read.

    It only hides a conversation id in the browser's storage; the server checks
    ownership on every read, so this is not a security boundary.
    """
    return hashlib.sha256(f"chatui:{config.data_dir}".encode()).hexdigest()[:32]
