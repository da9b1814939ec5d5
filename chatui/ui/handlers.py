"""What each quick UI action does: plain functions over the chat service, no Gradio here.

Every handler takes the service, the owner, the session's ``View`` and the
inputs, and returns a ``Screen`` (``screen.py``): what the page should show
next. ``wiring`` turns it into Gradio updates, so these are tested without a
browser. Actions that stream an answer live in ``generation.py``.

The service is the source of truth: a Screen that shows a conversation is
rendered from what the service returned or stored, never from what the browser
sent back. Errors are shown (``Screen.notice``), never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.tree import Conversation, Settings
from chatui.ui.chatlist import PAGE_SIZE
from chatui.ui.screen import (
    Screen,
    View,
    conversation_list,
    describe_error,
    settings_from_form,
    show,
)


def current(service: ChatService, owner: str, view: View) -> Conversation | None:
    """The open conversation as stored, or None for a new chat."""
    if view.conversation_id is None:
        return None
    return service.conversation(view.conversation_id, owner)


def fresh_settings(service: ChatService, model: str | None) -> Settings:
    """The configured defaults for a new chat, with ``model`` if one is picked."""
    return replace(service.defaults, model=model or service.defaults.model or service.default_model)


def _notice_only(view: View, error: ChatError) -> Screen:
    return Screen(view=view, notice=describe_error(error))


# ----- conversations -------------------------------------------------------------


def load(
    service: ChatService, owner: str, remembered_id: str | None, view: View | None = None
) -> Screen:
    """A fresh page: the list, and the conversation this browser had open (else the newest)."""
    models, notice = _models(service)
    conversation = None
    if remembered_id:
        try:
            conversation = service.conversation(remembered_id, owner)
        except ChatError:
            conversation = None
    if conversation is None:
        newest = service.conversation_page(owner, limit=1).items  # not the whole list
        conversation = service.conversation(newest[0].id, owner) if newest else None
    settings = conversation.settings if conversation else fresh_settings(service, None)
    opened = view or View()  # the session's fresh view: it carries the page's image hosts
    return show(service, owner, opened, conversation, notice, settings=settings, models=models)


def _models(service: ChatService) -> tuple[tuple[str, ...], str]:
    try:
        return tuple(service.models()), ""
    except ChatError as error:
        return (), f"Could not list the models: {describe_error(error)}"


def open_conversation(service: ChatService, owner: str, view: View, conversation_id: str) -> Screen:
    try:
        conversation = service.conversation(conversation_id, owner)
    except ChatError as error:
        return show(service, owner, view, None, describe_error(error))
    return show(service, owner, view, conversation, settings=conversation.settings)


def refresh(service: ChatService, owner: str, view: View) -> Screen:
    """The open chat as stored (after the Chatbot emptied itself, for instance)."""
    if view.conversation_id is None:
        return show(service, owner, view, None)
    return open_conversation(service, owner, view, view.conversation_id)


def new_chat(service: ChatService, owner: str, view: View, model: str | None) -> Screen:
    """An empty chat; it is stored with the first message. The picked model stays."""
    return show(service, owner, view, None, settings=fresh_settings(service, model))


def search(service: ChatService, owner: str, view: View, text: str) -> Screen:
    searched = replace(view, search=text, listed=PAGE_SIZE)
    return Screen(view=searched, conversations=conversation_list(service, owner, text))


def rename(service: ChatService, owner: str, view: View, title: str) -> Screen:
    if view.conversation_id is None or not title.strip():
        return Screen(view=view, notice="Open a chat and type a new title first.")
    try:
        conversation = service.rename(view.conversation_id, title, owner)
    except ChatError as error:
        return _notice_only(view, error)
    return show(service, owner, view, conversation)


def delete(service: ChatService, owner: str, view: View) -> Screen:
    """Delete the open conversation (the UI has asked for confirmation) and open the newest.

    An answer streaming there is stopped first (the service does it, as for the REST API).
    """
    if view.conversation_id is None:
        return Screen(view=view, notice="There is no open chat to delete.")
    try:
        service.delete(view.conversation_id, owner)
    except ChatError as error:
        return _notice_only(view, error)
    newest = service.conversation_page(owner, limit=1).items  # not the whole list
    conversation = service.conversation(newest[0].id, owner) if newest else None
    settings = conversation.settings if conversation else fresh_settings(service, None)
    return show(service, owner, view, conversation, settings=settings)


def save_settings(service: ChatService, owner: str, view: View, form: Sequence[Any]) -> Screen:
    """Store the panel's settings with the open chat (a new chat takes them on Send)."""
    try:
        conversation = current(service, owner, view)
        if conversation is not None:
            wanted = settings_from_form(form, conversation.settings)
            if wanted != conversation.settings:
                service.update_settings(conversation.id, wanted, owner)
    except (ChatError, ValueError) as error:
        return Screen(view=view, notice=f"The settings were not saved: {error}")
    return Screen(view=view)

# ----- branches --------------------------------------------------------------------


def step(service: ChatService, owner: str, view: View, message_id: str, direction: int) -> Screen:
    """Show the previous (-1) or next (+1) version of a message, down to its newest leaf."""
    if view.conversation_id is None:
        return Screen(view=view)
    try:
        conversation = service.step_sibling(view.conversation_id, message_id, direction, owner)
    except ChatError as error:
        return _notice_only(view, error)
    return show(service, owner, view, conversation)

