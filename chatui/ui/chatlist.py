"""The sidebar's chat list as a plain value, and its HTML; no Gradio here.

``list_chats`` asks the service for the first ``limit`` of an owner's chats,
newest first (only those matching a search, which the store answers from its
index), a page at a time: with 10,000 chats stored, the page still reads and
renders ``limit`` rows, never the whole list. ``ChatList.more`` says whether
there are others after them (the list's "More chats" button asks for them).

``render_list`` turns a ``ChatList`` into the list's HTML. Titles and
previews come from outside (a user, an import, the model's first words), so
every text and attribute is escaped here, in the one place the list is
written. The date groups (Today, Yesterday, Previous 7 days, Older) are drawn
by the page's script from each row's ``data-updated``, because "today" is the
reader's, in the browser's time zone, which the server does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from chatui.service import ChatService
from chatui.store import ConversationSummary

PAGE_SIZE = 50
"""Chats listed at first, and added by each "More chats"."""

MAX_LISTED = 5000
"""The most chats the list shows at once (``More`` stops there; search finds the rest)."""


# Drawn, not glyphs: a browser without an emoji font would show a box.
_ICON = ('<svg aria-hidden="true" width="16" height="16" viewBox="0 0 24 24" fill="none" '
         'stroke="currentColor" stroke-width="2" stroke-linecap="round" '
         'stroke-linejoin="round">{}</svg>')
PENCIL = _ICON.format('<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z"/>')
BIN = _ICON.format('<path d="M3 6h18"/><path d="M8 6V4h8v2"/>'
                   '<path d="M19 6l-1 14H6L5 6"/>')


@dataclass(frozen=True, slots=True)
class ChatList:
    """The owner's newest chats (matching ``search``), and which of them are answering."""

    items: tuple[ConversationSummary, ...] = ()
    more: bool = False  # there are chats after these
    answering: frozenset[str] = frozenset()
    search: str = ""

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(title, id) of each listed chat, newest first."""
        return tuple((item.title, item.id) for item in self.items)


def listed_count(wanted: int) -> int:
    """How many chats to list for a page that asks for ``wanted`` (from the browser)."""
    return max(PAGE_SIZE, min(int(wanted), MAX_LISTED))


def list_chats(service: ChatService, owner: str, search: str = "",
               limit: int = PAGE_SIZE) -> ChatList:
    """The first ``limit`` of ``owner``'s chats, newest first, read a page at a time."""
    limit = listed_count(limit)
    text = search.strip()
    items: list[ConversationSummary] = []
    cursor: str | None = None
    while True:
        page = service.conversation_page(owner, limit=min(limit - len(items), 200),
                                         cursor=cursor, search=text)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None or len(items) >= limit or not page.items:
            break
    return ChatList(items=tuple(items[:limit]), more=cursor is not None,
                    answering=service.answering(owner), search=text)


def _row(item: ConversationSummary, open_id: str | None, answering: frozenset[str]) -> str:
    classes = ["chatui-chat"]
    if item.id == open_id:
        classes.append("chatui-open")
    if item.id in answering:
        classes.append("chatui-answering")
    title = escape(item.title or "Untitled", quote=True)
    preview = escape(item.preview, quote=True)
    current = ' aria-current="true"' if item.id == open_id else ""
    mark = ('<span class="chatui-mark" role="img" aria-label="answering" '
            'title="Answering…"></span>' if item.id in answering else "")
    return (
        f'<li class="{" ".join(classes)}" data-id="{escape(item.id, quote=True)}" '
        f'data-updated="{item.updated_at:.3f}">'
        f'<button type="button" class="chatui-pick" title="{preview or title}"{current}>'
        f'<span class="chatui-chat-title">{title}</span>{mark}</button>'
        f'<button type="button" class="chatui-rename" aria-label="Rename “{title}”" '
        f'title="Rename (or double-click the title, or F2)">{PENCIL}</button>'
        f'<button type="button" class="chatui-delete" aria-label="Delete “{title}”" '
        f'title="Delete">{BIN}</button></li>'
    )


def render_list(chats: ChatList, open_id: str | None) -> str:
    """The list's HTML: one row per chat (the open one marked), then "More chats"."""
    rows = "".join(_row(item, open_id, chats.answering) for item in chats.items)
    if not chats.items:
        empty = "No chat matches." if chats.search else "No chats yet."
        rows = f'<li class="chatui-empty">{empty}</li>'
    more = ('<button type="button" class="chatui-more">More chats</button>'
            if chats.more else "")
    return (f'<nav class="chatui-list" aria-label="Chats" data-count="{len(chats.items)}">'
            f'<ul>{rows}</ul>{more}</nav>')
