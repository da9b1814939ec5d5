"""The components of the page and where they sit; no event wiring here (see ``wiring``).

    sidebar   New chat · Search · the chat list by date, a page at a time (``sidebar``)
    main      title (edit to rename) · Delete (asks first)
              header: the chat's model (a picker) · the server's health (refreshed by a timer)
              the chat · notice line · message box · Send / Stop
              Branch map (closed): the tree, compare, prune, fork (``branchmap``)
              Settings (closed): one field per ``chatui.settings.FIELDS`` row, in its order
              Documents (closed): upload, list, delete, search (``documents.layout``)
              Export / import (closed): download the chat, import a file (``transfer``)
              the hidden footer bridge (``bridge``)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import gradio as gr

from chatui.codec import settings_to_dict
from chatui.config import Config
from chatui.sanitize import CHAT_LATEX_DELIMITERS
from chatui.settings import FIELDS, SettingField
from chatui.ui.actions import build_bars
from chatui.ui.bridge import KEYS_HELP, bridge_script
from chatui.ui.documents.layout import (
    DocumentsPanel,
    build_attachment_chips,
    build_documents_panel,
)
from chatui.ui.branchmap import MapPanel, build_branchmap
from chatui.ui.gauge import Gauge, build_gauge
from chatui.ui.header import build_header
from chatui.ui.screen import FORM_FIELDS, View
from chatui.ui.sidebar import build_chat_list
from chatui.ui.status import STATUS_SECONDS
from chatui.ui.transfer import TransferPanel, build_transfer_panel

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
    conversations: gr.HTML  # the chat list (``sidebar``)
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_row: gr.Row
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    backend_status: gr.Markdown  # the model and its server's health (``ui.status``)
    model_picker: gr.Dropdown  # the header's model: the open chat's (``ui.header``)
    bars: gr.HTML  # what shows under each message, as JSON (``ui.actions``)
    status_timer: gr.Timer
    chatbot: gr.Chatbot
    notice: gr.Markdown
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    form: tuple[SettingsField, ...]  # in ``FORM_FIELDS`` order
    documents: DocumentsPanel
    transfer: TransferPanel  # Export / import (``ui.transfer``)
    bridge: gr.HTML
    answering_marks: gr.State  # which chats the list shows answering (``sidebar``)
    gauge: Gauge  # under the message box: context used, prompt progress (``ui.gauge``)
    branch_map: MapPanel  # the whole tree, compare, prune, fork (``ui.branchmap``)
    sidebar_timer: gr.Timer  # refreshes those marks


def build_page(config: Config) -> Page:
    with gr.Blocks(title="chatui", fill_height=True) as blocks:
        view = gr.State(View(image_hosts=config.allowed_image_hosts))
        remembered = gr.BrowserState(
            None, storage_key="chatui-open-conversation", secret=_browser_secret(config),
        )
        with gr.Sidebar(label="Conversations", width=300, elem_id="chatui-sidebar"):
            new_chat = gr.Button("+ New chat", variant="primary", elem_id="chatui-new-chat")
            search = gr.Textbox(placeholder="Search titles and messages (Ctrl+K)",
                                show_label=False, container=False, elem_id="chatui-search")
            conversations, answering_marks, sidebar_timer = build_chat_list()
        with gr.Row(equal_height=True):
            title = gr.Textbox(placeholder="New chat", show_label=False, container=False,
                               scale=6, elem_id="chatui-title")
            rename = gr.Button("Rename", size="sm", scale=0, min_width=80)
            delete = gr.Button("Delete", size="sm", scale=0, min_width=80)
        with gr.Row(visible=False) as confirm_row:
            gr.Markdown("**Delete this chat and all its branches?** This cannot be undone.")
            confirm_delete = gr.Button("Yes, delete", variant="stop", size="sm", scale=0)
            cancel_delete = gr.Button("Cancel", size="sm", scale=0)
        model_picker, backend_status = build_header()
        status_timer = gr.Timer(STATUS_SECONDS)
        chatbot = gr.Chatbot(
            show_label=False, height="65vh", scale=1, layout="panel", editable="user",
            latex_delimiters=LATEX_DELIMITERS, buttons=["copy_all"],
            placeholder="Ask anything. Answers stream here; every answer can be "
            "regenerated, continued or edited into a new branch.",
            elem_id="chatui-chat",
        )
        notice = gr.Markdown("", elem_id="chatui-notice")
        with gr.Row(equal_height=True):
            message = gr.Textbox(placeholder=KEYS_HELP,
                                 show_label=False, lines=2, max_lines=12, scale=8,
                                 autofocus=True, elem_id="chatui-message")
            send = gr.Button("Send", variant="primary", scale=1, min_width=90,
                             elem_id="chatui-send")
            stop = gr.Button("Stop", variant="stop", scale=1, min_width=90, visible=False,
                             elem_id="chatui-stop")
        gauge = build_gauge()  # context used, or the prompt being read (``ui.gauge``)
        branch_map = build_branchmap()  # closed: the whole tree (``ui.branchmap``)
        chips = build_attachment_chips()  # the open chat's attached files, by the message box
        form = _settings_panel(config)
        documents = build_documents_panel(chips)
        transfer = build_transfer_panel()
        bridge = gr.HTML("", html_template="", js_on_load=bridge_script(), elem_id="chatui-bridge")
        bars = build_bars()
    return Page(
        blocks=blocks, view=view, remembered=remembered, new_chat=new_chat, search=search,
        conversations=conversations, title=title, rename=rename, delete=delete,
        confirm_row=confirm_row, confirm_delete=confirm_delete, cancel_delete=cancel_delete,
        backend_status=backend_status, status_timer=status_timer,
        model_picker=model_picker, bars=bars,
        chatbot=chatbot, notice=notice, message=message, send=send, stop=stop, form=form,
        documents=documents, transfer=transfer,
        bridge=bridge, answering_marks=answering_marks, sidebar_timer=sidebar_timer,
        gauge=gauge, branch_map=branch_map,
    )


NUMBERS_PER_ROW = 3
ELEMENT_IDS = {"rag_enabled": "chatui-rag"}  # what the page's tests and scripts look for


def _settings_panel(config: Config) -> tuple[SettingsField, ...]:
    """One component per row of ``chatui.settings.FIELDS``, in its order; numbers side by side."""
    values = {**settings_to_dict(config.defaults), "model": config.defaults.model or config.model}
    components: dict[str, SettingsField] = {}
    with gr.Accordion("Settings (saved with the chat)", open=False):
        numbers = [s for s in FIELDS if s.widget == "number"]
        for setting in FIELDS:
            if setting.widget != "number":
                components[setting.name] = _setting_component(setting, values[setting.name])
            elif setting is numbers[0]:  # all the numbers, in rows, where the first one is
                for start in range(0, len(numbers), NUMBERS_PER_ROW):
                    with gr.Row():
                        for number in numbers[start:start + NUMBERS_PER_ROW]:
                            components[number.name] = _setting_component(
                                number, values[number.name])
    return tuple(components[name] for name in FORM_FIELDS)


def _setting_component(setting: SettingField, value: Any) -> SettingsField:
    span = f" ({setting.range_text})" if setting.range_text else ""
    common: dict[str, Any] = {
        "label": setting.label, "info": setting.help + span,
        "elem_id": ELEMENT_IDS.get(setting.name),
    }
    if setting.widget == "model":
        return gr.Dropdown(choices=[], value=value, allow_custom_value=True, **common)
    if setting.widget == "toggle":
        return gr.Checkbox(value, **common)
    if setting.widget == "text":
        return gr.Textbox(value, lines=2, max_length=setting.max_length, **common)
    return gr.Number(
        value, minimum=setting.minimum, maximum=setting.maximum, step=setting.step or 1,
        precision=0 if setting.kind is int else None, placeholder=setting.unset, **common,
    )


def _browser_secret(config: Config) -> str:
    """A key that survives restarts, so the browser's remembered chat can still be read.

    It only hides a conversation id in the browser's storage; the server checks
    ownership on every read, so this is not a security boundary.
    """
    return hashlib.sha256(f"chatui:{config.data_dir}".encode()).hexdigest()[:32]
