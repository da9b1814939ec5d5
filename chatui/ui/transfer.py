"""Export and import in the page: download the open chat, import a chat from a file.

    Export / import (closed, under Documents)
      [Export JSON (every branch)]  [Export Markdown (this branch)]   -> a file to download
      [Import a chat…]  chatui JSON, llama.cpp web UI (.jsonl, .zip, .json), Open WebUI (.json)
      what happened (imported N chats, or why nothing was)

The JSON download is the REST export (``GET /chats/{id}/history?tree=true``),
so it imports again here or through the API; the Markdown one is the readable
transcript of the branch on screen (``chatui.export``). An import reads the
file through ``chatui.transfer`` (format told from the contents, every rule of
a hostile file kept there), stores the chats through the chat service and
opens the first one.

The uploaded file must be one Gradio's upload route wrote for this visitor
(``DocumentUploads`` holds the receipts): an event forged with another path, or
with someone else's upload, imports nothing and reads nothing. The upload is
deleted once read.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from chatui import transfer
from chatui.api.schemas import ChatImport
from chatui.errors import ChatError
from chatui.sanitize import inert_html
from chatui.service import ChatService
from chatui.tree import Conversation
from chatui.ui import handlers
from chatui.ui.screen import Screen, View, describe_error
from chatui.uploads import DocumentUploads

EXPORT_FOLDER = Path(tempfile.gettempdir()) / "chatui-exports"
EXPORT_KEEP_SECONDS = 600  # Gradio copies the file at once; older exports are swept
KINDS = {"json": ".json", "markdown": ".md"}
IMPORT_TYPES = [".json", ".jsonl", ".zip"]
NOBODY = "\0nobody"  # an owner no request can have (see ``_is_upload_of``)


@dataclass(frozen=True, slots=True)
class TransferPanel:
    export_json: gr.Button
    export_markdown: gr.Button
    download: gr.File
    upload: gr.UploadButton
    report: gr.Markdown


@dataclass(frozen=True, slots=True)
class Imported:
    screen: Screen | None  # the first imported chat, opened; None: nothing changed
    report: str  # Markdown


def build_transfer_panel() -> TransferPanel:
    with gr.Accordion("Export / import", open=False, elem_id="chatui-transfer"):
        with gr.Row(equal_height=True):
            export_json = gr.Button("Export JSON (every branch)", size="sm",
                                    elem_id="chatui-export-json")
            export_markdown = gr.Button("Export Markdown (this branch)", size="sm",
                                        elem_id="chatui-export-markdown")
        download = gr.File(label="Download", interactive=False, visible=False,
                           elem_id="chatui-export-file")
        upload = gr.UploadButton(
            "Import a chat…", file_types=IMPORT_TYPES, file_count="single", size="sm",
            elem_id="chatui-import",
        )
        report = gr.Markdown(
            "Imports chatui's JSON export, llama.cpp web UI's export (.jsonl, or .zip of "
            "all chats) and Open WebUI's chat export (.json).",
            elem_id="chatui-import-report",
        )
    return TransferPanel(export_json, export_markdown, download, upload, report)


# ----- what the buttons do (no Gradio) -----------------------------------------------


def export_file(service: ChatService, owner: str, view: View, kind: str,
                folder: Path = EXPORT_FOLDER) -> tuple[Path | None, str]:
    """The open chat written to a fresh file to download, or None and why not."""
    try:
        conversation = handlers.current(service, owner, view)
    except ChatError as error:
        return None, inert_html(f"Nothing to export: {describe_error(error)}")
    if conversation is None:
        return None, "Open a chat (or send a first message) to export it."
    body = (transfer.export_json(conversation) if kind == "json"
            else transfer.export_markdown(conversation))
    _sweep(folder)
    target = folder / secrets.token_hex(16) / (_file_stem(conversation.title) + KINDS[kind])
    target.parent.mkdir(mode=0o700, parents=True)
    target.write_text(body, encoding="utf-8")
    return target, ""


def import_file(service: ChatService, uploads: DocumentUploads, owner: str, view: View,
                path: str | None) -> Imported:
    """Store the chats in the uploaded file and open the first; or say why nothing was."""
    if not path:
        return Imported(None, "Choose a file to import first.")
    try:
        if not _is_upload_of(uploads, path, owner):
            return Imported(None, "Nothing was imported: that file was not uploaded here.")
        try:
            with open(path, "rb") as file:
                data = file.read(transfer.MAX_IMPORT_BYTES + 1)
        except OSError:
            return Imported(None, "Nothing was imported: the file could not be read.")
    finally:
        uploads.discard(path, owner)
    try:
        chats, name = transfer.read_chats(data, owner, ChatImport.check)
    except ChatError as error:
        return Imported(None, inert_html(f"Nothing was imported: {describe_error(error)}"))
    stored: list[Conversation] = []
    problem = ""
    for chat in chats:
        try:
            stored.append(service.import_conversation(chat, owner))
        except ChatError as error:  # a limit reached half-way: say what went in
            problem = describe_error(error)
            break
    if not stored:
        return Imported(None, inert_html(f"Nothing was imported: {problem}"))
    screen = handlers.open_conversation(service, owner, view, stored[0].id)
    count = "1 chat" if len(stored) == 1 else f"{len(stored)} chats"
    said = f"Imported {count} from {name}: {stored[0].title} is open."
    if problem:
        said += f" The other {len(chats) - len(stored)} were not: {problem}"
    return Imported(screen, inert_html(said))


def _is_upload_of(uploads: DocumentUploads, path: str, owner: str) -> bool:
    """Whether ``path`` is an upload Gradio's route wrote for ``owner``.

    ``may_read`` is true for a file nobody received (anything outside the upload
    folder too) and for one ``owner`` received: false for ``NOBODY`` leaves only
    files someone received, and true for ``owner`` then means ``owner`` did.
    """
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    return not uploads.may_read(path, NOBODY) and uploads.may_read(path, owner)


def _file_stem(title: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60]
    return stem or "chat"


def _sweep(folder: Path) -> None:
    """Delete exports older than ``EXPORT_KEEP_SECONDS``: Gradio serves its own copy."""
    deadline = time.time() - EXPORT_KEEP_SECONDS
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime < deadline:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


# ----- events ------------------------------------------------------------------------


def wire_transfer(
    panel: TransferPanel,
    view: gr.State,
    service: ChatService,
    uploads: DocumentUploads,
    *,
    outputs: list[Any],
    shown: Callable[[Screen, View], tuple[Any, ...]],
    owner_of: Callable[[gr.Request | None], str],
) -> None:
    """The panel's events. ``outputs`` / ``shown`` are the page's (``ui.wiring``)."""

    def exporter(kind: str) -> Callable[..., tuple[Any, str]]:
        def on_export(request: gr.Request, opened: View) -> tuple[Any, str]:
            path, said = export_file(service, owner_of(request), opened, kind)
            if path is None:
                return gr.update(value=None, visible=False), said
            return gr.update(value=str(path), visible=True), said
        return on_export

    def on_import(request: gr.Request, opened: View, path: str | None) -> tuple[Any, ...]:
        done = import_file(service, uploads, owner_of(request), opened, path)
        around = (shown(done.screen, opened) if done.screen is not None
                  else (gr.skip(),) * len(outputs))
        return (*around, None, done.report)

    quick: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden",
                             "api_visibility": "private"}
    panel.export_json.click(exporter("json"), [view], [panel.download, panel.report], **quick)
    panel.export_markdown.click(exporter("markdown"), [view], [panel.download, panel.report],
                                **quick)
    panel.upload.upload(on_import, [view, panel.upload],
                        [*outputs, panel.upload, panel.report], **quick)
