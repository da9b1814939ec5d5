"""What the sidebar's own controls do: plain functions over the chat service, no Gradio.

The chat list (``chatlist``) is HTML; its script sends what was clicked as
the event's data: ``{"id": ...}`` to open a chat, ``{"action": "rename",
"id": ..., "title": ...}``, ``{"action": "delete", "id": ...}`` (asked
first, in the row) or ``{"action": "more"}``. That data comes from the
browser and may be forged, so ``act`` reads it as hostile: an unknown action,
a malformed id or an over-long title is refused in words, and every id is
looked up for the session's owner (another's chat is "no such conversation").

Like ``handlers``, each returns a ``Screen``; a change to a chat other than
the open one only redraws the list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.storage import is_safe_id
from chatui.ui import handlers
from chatui.ui.chatlist import PAGE_SIZE, listed_count
from chatui.ui.screen import Screen, View, conversation_list, describe_error, show

MAX_TITLE_CHARS = 200
NO_SUCH_CHAT = "There is no such conversation."


def listing(service: ChatService, owner: str, view: View) -> Screen:
    """Only the list, as it is now (the open chat stays as it is)."""
    return Screen(view=view, conversations=conversation_list(
        service, owner, view.search, view.listed))


def open_chat(service: ChatService, owner: str, view: View, data: Any) -> Screen:
    """Open the chat the list's row names (``{"id": ...}``)."""
    chat_id = _chat_id(data)
    if chat_id is None:
        return show(service, owner, view, None, NO_SUCH_CHAT)
    return handlers.open_conversation(service, owner, view, chat_id)


def act(service: ChatService, owner: str, view: View, data: Any) -> Screen:
    """Rename, delete or list more, as the list's script asked."""
    action = data.get("action") if isinstance(data, dict) else None
    if action == "more":
        more = replace(view, listed=listed_count(view.listed + PAGE_SIZE))
        return listing(service, owner, more)
    chat_id = _chat_id(data)
    if action not in {"rename", "delete"}:
        return Screen(view=view, notice="That is not something the chat list can do.")
    if chat_id is None:
        return Screen(view=view, notice=NO_SUCH_CHAT)
    if action == "rename":
        return rename(service, owner, view, chat_id, data.get("title"))
    return delete(service, owner, view, chat_id)


def rename(service: ChatService, owner: str, view: View, chat_id: str, title: Any) -> Screen:
    if not isinstance(title, str) or not title.strip():
        return Screen(view=view, notice="Type a title first (Esc leaves it as it was).")
    if len(title) > MAX_TITLE_CHARS:
        return Screen(view=view, notice=f"A title has at most {MAX_TITLE_CHARS} characters.")
    try:
        renamed = service.rename(chat_id, " ".join(title.split()), owner)
    except ChatError as error:
        return Screen(view=view, notice=describe_error(error))
    if chat_id == view.conversation_id:  # the title above the chat changes too
        return replace(listing(service, owner, view), title=renamed.title)
    return listing(service, owner, view)


def delete(service: ChatService, owner: str, view: View, chat_id: str) -> Screen:
    """Delete a chat (the row asked first); the open one: as the Delete button does."""
    if chat_id == view.conversation_id:
        return handlers.delete(service, owner, view)
    try:
        service.delete(chat_id, owner)
    except ChatError as error:
        return Screen(view=view, notice=describe_error(error))
    return listing(service, owner, view)


def _chat_id(data: Any) -> str | None:
    chat_id = data.get("id") if isinstance(data, dict) else None
    return chat_id if isinstance(chat_id, str) and is_safe_id(chat_id) else None
