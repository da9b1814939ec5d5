"""What the page shows, as plain values: the session's ``View`` and a handler's ``Screen``.

Also the conversions every handler shares: the settings form to and from
``Settings``, an error to the sentence the user reads, and ``show``, which
renders a whole page for a conversation from what the service stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatui.errors import ChatError, InvalidRequest
from chatui.service import ChatService
from chatui.settings import FIELDS, settings_from_values
from chatui.tree import Conversation, Settings
from chatui.ui.chatlist import PAGE_SIZE, ChatList, list_chats
from chatui.ui.notice import explain
from chatui.ui.render import ChatRow, render_conversation

# The settings panel, in the order of its inputs: the settings table's order.
FORM_FIELDS = tuple(setting.name for setting in FIELDS)


@dataclass(frozen=True, slots=True)
class View:
    """What one browser session has open; kept in ``gr.State``."""

    conversation_id: str | None = None
    message_ids: tuple[str, ...] = ()  # chat row index -> message id ("" for none)
    generating: bool = False
    search: str = ""
    listed: int = PAGE_SIZE  # how many chats the sidebar lists ("More chats" adds)
    image_hosts: tuple[str, ...] = ()  # images from these show (``--allowed-image-hosts``)


@dataclass(frozen=True, slots=True)
class Screen:
    """What to show; ``None`` leaves that part of the page as it is."""

    view: View
    chat: tuple[ChatRow, ...] | None = None
    conversations: ChatList | None = None  # the sidebar's list, newest first
    title: str | None = None
    settings: Settings | None = None
    models: tuple[str, ...] | None = None
    notice: str | None = None
    input_text: str | None = None
    streaming_frame: bool = False  # only the chat changed


# ----- settings form -----------------------------------------------------------


def settings_to_form(settings: Settings) -> tuple[Any, ...]:
    """The settings panel's values, in ``FORM_FIELDS`` order."""
    return tuple(getattr(settings, name) for name in FORM_FIELDS)


def settings_from_form(values: Sequence[Any], base: Settings) -> Settings:
    """``base`` with the form's values; an empty field means the server's default.

    The values come from the browser, so each is checked against the settings
    table (``InvalidRequest`` names the setting and its range); a form of the
    wrong length is refused the same way.
    """
    if len(values) != len(FORM_FIELDS):
        raise InvalidRequest("The settings form is out of date: reload the page.")
    return settings_from_values(dict(zip(FORM_FIELDS, values, strict=True)), base)


# ----- screens -------------------------------------------------------------------


def describe_error(error: ChatError) -> str:
    """What happened and what to try, then the technical detail on its own line
    (``notice.explain``; the notice line folds it)."""
    return explain(error)


def conversation_list(
    service: ChatService, owner: str, search: str, limit: int = PAGE_SIZE
) -> ChatList:
    """The owner's first ``limit`` chats, newest first; only those matching ``search`` if set."""
    return list_chats(service, owner, search, limit)


def show(
    service: ChatService, owner: str, view: View, conversation: Conversation | None,
    notice: str = "", **extra: Any,
) -> Screen:
    """The whole page for ``conversation`` (None: an empty new chat)."""
    rendered = render_conversation(conversation, image_hosts=view.image_hosts)
    if notice and _ends_in_error(conversation):
        notice = ""  # the answer that broke off tells it, once (``ui.notice``)
    opened = replace(
        view, conversation_id=conversation.id if conversation else None,
        message_ids=rendered.message_ids, generating=False,
    )
    return Screen(
        view=opened, chat=rendered.rows,
        conversations=conversation_list(service, owner, view.search, view.listed),
        title=conversation.title if conversation else "", notice=notice, **extra,
    )


def _ends_in_error(conversation: Conversation | None) -> bool:
    leaf = conversation.current_leaf_id if conversation else None
    if conversation is None or leaf is None or leaf not in conversation.messages:
        return False
    return conversation.messages[leaf].status == "error"
