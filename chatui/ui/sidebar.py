"""The sidebar's chat list in the page: its component, its script and style, its events.

    New chat · Search (layout) · the list: date groups, rows, "More chats"

The list is one ``gr.HTML`` whose value is ``chatlist.render_list``'s HTML
(escaped there): only the listed rows reach the page, however many chats are
stored. Its script (``js_on_load``, one listener on the list, so it survives
each redraw) does what the rows ask:

- a click on a row opens the chat (the list's ``click`` event, data
  ``{"id": ...}``); on a narrow screen (<= 768 px) the sidebar then closes
  (after New chat too);
- the pencil or a double-click edits the title in place: Enter saves, Esc
  (or leaving the box) cancels; the bin asks in the row first, then deletes;
  "More chats" (clicked, or scrolled into view) lists the next page. Each is
  the list's ``submit`` event with ``{"action": ...}`` (``sidebar_actions``);
- after each redraw it puts the date headings in (Today, Yesterday, Previous
  7 days, Older), by the browser's clock and time zone; an empty value (what
  Gradio sends every output of a streaming event that yielded nothing) is
  ignored: the list keeps what it showed;
- on a narrow screen the sidebar is closed when the page loads, and its
  toggle sits low on the left edge, where a thumb reaches it.

The answering mark: a ``gr.Timer`` asks the service which of the owner's
chats are answering (cheap: no store access) and redraws the list only when
that changed from what the page shows (``marks``, written with every list).

Gradio internals relied on (``tests/test_ui_sidebar.py`` breaks if they
change): ``js_on_load``'s ``trigger(event, data)`` reaching the handler as
``gr.EventData._data``, its ``watch('value', ...)``, and the sidebar's DOM
(``#chatui-sidebar`` with class ``open`` and a ``.toggle-button`` child).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import gradio as gr

from chatui.service import ChatService
from chatui.ui import sidebar_actions
from chatui.ui.chatlist import ChatList, render_list
from chatui.ui.screen import Screen, View

MARKS_SECONDS = 2.0
"""How often the page asks which chats are answering."""

NARROW = "(max-width: 768px)"

CSS = """
#chatui-conversations .chatui-list ul { list-style: none; margin: 0; padding: 0; }
#chatui-conversations .chatui-group {
  font-size: 0.8em; font-weight: 600; opacity: 0.65;
  margin: 0.9em 0 0.2em 0.4em;
}
#chatui-conversations .chatui-group:first-child { margin-top: 0.2em; }
#chatui-conversations .chatui-chat { display: flex; align-items: center; border-radius: 6px; }
#chatui-conversations .chatui-chat:hover,
#chatui-conversations .chatui-chat:focus-within { background: var(--background-fill-primary); }
#chatui-conversations .chatui-chat.chatui-open {
  background: var(--color-accent-soft, var(--background-fill-primary)); font-weight: 600;
}
#chatui-conversations button {
  border: none; background: none; color: inherit; font: inherit; cursor: pointer;
  min-height: 32px; border-radius: 6px;
}
#chatui-conversations .chatui-pick {
  flex: 1; min-width: 0; display: flex; align-items: center; gap: 0.4em;
  text-align: left; padding: 0.3em 0.5em;
}
#chatui-conversations .chatui-chat-title {
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1;
}
#chatui-conversations .chatui-rename, #chatui-conversations .chatui-delete {
  min-width: 32px; opacity: 0; padding: 0;
  display: inline-flex; align-items: center; justify-content: center;
}
#chatui-conversations .chatui-chat:hover .chatui-rename,
#chatui-conversations .chatui-chat:hover .chatui-delete,
#chatui-conversations .chatui-chat:focus-within .chatui-rename,
#chatui-conversations .chatui-chat:focus-within .chatui-delete { opacity: 0.8; }
#chatui-conversations .chatui-mark {
  width: 0.6em; height: 0.6em; border-radius: 50%; flex: none;
  background: var(--color-accent, #f97316); animation: chatui-pulse 1.2s ease-in-out infinite;
}
@keyframes chatui-pulse { 50% { opacity: 0.3; } }
#chatui-conversations .chatui-title-edit {
  flex: 1; min-width: 0; font: inherit; padding: 0.3em 0.4em; margin: 0 0.2em;
}
#chatui-conversations .chatui-confirm {
  flex: 1; display: flex; align-items: center; gap: 0.3em; padding: 0 0.4em; font-size: 0.9em;
}
#chatui-conversations .chatui-confirm .chatui-yes { color: var(--error-text-color, #b91c1c); }
#chatui-conversations .chatui-more { width: 100%; margin-top: 0.4em; opacity: 0.8; }
#chatui-conversations .chatui-empty { opacity: 0.7; padding: 0.4em; }
@media (max-width: 768px) {
  #chatui-conversations .chatui-rename, #chatui-conversations .chatui-delete { opacity: 0.8; }
  #chatui-conversations button { min-height: 44px; }
  #chatui-conversations .chatui-rename, #chatui-conversations .chatui-delete { min-width: 44px; }
  #chatui-sidebar > .toggle-button {
    top: auto !important; bottom: 30vh; width: 44px; height: 56px;
  }
}
"""

_JS = """
if (!document.getElementById('chatui-sidebar-style')) {
  const style = document.createElement('style');
  style.id = 'chatui-sidebar-style';
  style.textContent = __CSS__;
  document.head.appendChild(style);
}
const narrow = window.matchMedia(__NARROW__);
function closeSidebar() {
  const bar = document.getElementById('chatui-sidebar');
  if (!narrow.matches || !bar || !bar.classList.contains('open')) return false;
  const toggle = bar.querySelector(':scope > .toggle-button');
  if (toggle) toggle.click();
  return true;
}
function closeAtLoad(tries) {  // the sidebar shows itself open a moment after mounting
  if (!narrow.matches || closeSidebar() || tries <= 0) return;
  setTimeout(() => closeAtLoad(tries - 1), 50);
}
if (window.__chatuiNewChatCloses) {
  document.removeEventListener('click', window.__chatuiNewChatCloses, true);
}
window.__chatuiNewChatCloses = (event) => {  // a new chat, like a pick, shows the chat
  if (event.target.closest && event.target.closest('#chatui-new-chat')) closeSidebar();
};
document.addEventListener('click', window.__chatuiNewChatCloses, true);
const DAY = 86400000;
function groupOf(updated, today) {
  if (updated >= today) return 'Today';
  if (updated >= today - DAY) return 'Yesterday';
  if (updated >= today - 7 * DAY) return 'Previous 7 days';
  return 'Older';
}
function decorate() {
  const list = element.querySelector('.chatui-list ul');
  if (!list) return;
  list.querySelectorAll(':scope > li.chatui-group').forEach((old) => old.remove());
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  let last = null;
  list.querySelectorAll(':scope > li.chatui-chat').forEach((row) => {
    const group = groupOf(parseFloat(row.dataset.updated) * 1000, midnight.getTime());
    if (group !== last) {
      const heading = document.createElement('li');
      heading.className = 'chatui-group';
      heading.setAttribute('role', 'presentation');
      heading.textContent = group;
      row.before(heading);
      last = group;
    }
  });
  const more = element.querySelector('.chatui-more');
  if (more && 'IntersectionObserver' in window) {
    const seen = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) {
        seen.disconnect();
        askMore(more);
      }
    });
    seen.observe(more);
  }
}
function askMore(more) {
  if (more.disabled) return;
  more.disabled = true;
  more.textContent = 'Loading…';
  trigger('submit', { action: 'more' });
}
function titleOf(row) {
  const title = row.querySelector('.chatui-chat-title');
  return title ? title.textContent : '';
}
function rowById(id) {
  return [...element.querySelectorAll('li.chatui-chat')].find((row) => row.dataset.id === id);
}
let editing = null;  // the title box open, and its chat: a redraw puts it back (restore)
let confirming = null;  // the chat whose row asks "Delete?", likewise
function restore() {
  if (editing && !editing.box.isConnected) {
    const lost = editing;
    editing = null;
    const row = rowById(lost.id);
    if (row) editTitle(row, lost.box.value);
  }
  if (confirming && !element.querySelector('.chatui-confirm')) {
    const row = rowById(confirming);
    confirming = null;
    if (row) confirmDelete(row);
  }
}
function editTitle(row, typed) {
  if (row.querySelector('.chatui-title-edit')) return;
  const box = document.createElement('input');
  box.className = 'chatui-title-edit';
  box.setAttribute('aria-label', 'New title (Enter saves, Esc cancels)');
  box.maxLength = 200;
  box.value = typed === undefined ? titleOf(row) : typed;
  const hidden = [...row.children];
  hidden.forEach((child) => { child.hidden = true; });
  row.prepend(box);
  editing = { id: row.dataset.id, box: box };
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (editing && editing.box === box) editing = null;
    const title = box.value.trim();
    box.remove();
    hidden.forEach((child) => { child.hidden = false; });
    if (save && title && title !== titleOf(row)) {
      row.querySelector('.chatui-chat-title').textContent = title;
      trigger('submit', { action: 'rename', id: row.dataset.id, title: title });
    }
    const pick = row.querySelector('.chatui-pick');
    if (pick) pick.focus();
  };
  box.addEventListener('keydown', (event) => {
    event.stopPropagation();  // the page's own keys (Esc stops an answer) stay out of it
    if (event.key === 'Enter') { event.preventDefault(); finish(true); }
    else if (event.key === 'Escape') { event.preventDefault(); finish(false); }
  });
  // Leaving the box cancels; a redraw taking it away does not (``restore`` puts it back).
  box.addEventListener('blur', () => setTimeout(() => { if (box.isConnected) finish(false); }));
  box.focus();
  if (typed === undefined) box.select();
}
function confirmDelete(row) {
  if (row.querySelector('.chatui-confirm')) return;
  const hidden = [...row.children];
  hidden.forEach((child) => { child.hidden = true; });
  const ask = document.createElement('div');
  ask.className = 'chatui-confirm';
  ask.setAttribute('role', 'group');
  const question = document.createElement('span');
  question.textContent = 'Delete “' + titleOf(row) + '”?';
  question.style.flex = '1';
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.className = 'chatui-yes';
  yes.textContent = 'Delete';
  const no = document.createElement('button');
  no.type = 'button';
  no.className = 'chatui-no';
  no.textContent = 'Cancel';
  ask.append(question, yes, no);
  row.prepend(ask);
  confirming = row.dataset.id;
  const back = () => {
    confirming = null;
    ask.remove();
    hidden.forEach((child) => { child.hidden = false; });
  };
  no.addEventListener('click', (event) => { event.stopPropagation(); back(); });
  yes.addEventListener('click', (event) => {
    event.stopPropagation();
    yes.disabled = no.disabled = true;
    confirming = null;
    trigger('submit', { action: 'delete', id: row.dataset.id });
  });
  ask.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') { event.stopPropagation(); back(); }
  });
  no.focus();
}
element.addEventListener('click', (event) => {
  const target = event.target;
  const more = target.closest('.chatui-more');
  if (more) { askMore(more); return; }
  const row = target.closest('li.chatui-chat');
  if (!row || target.closest('.chatui-confirm, .chatui-title-edit')) return;
  if (target.closest('.chatui-rename')) { editTitle(row); return; }
  if (target.closest('.chatui-delete')) { confirmDelete(row); return; }
  if (!target.closest('.chatui-pick') || event.detail > 1) return;  // a double-click renames
  closeSidebar();
  if (row.classList.contains('chatui-open')) return;  // open already
  element.querySelectorAll('li.chatui-open').forEach((open) => {
    open.classList.remove('chatui-open');
  });
  row.classList.add('chatui-open');
  clearTimeout(awaiting);
  awaiting = setTimeout(afterRedraw, 3000);  // (if the list comes back unchanged)
  trigger('click', { id: row.dataset.id });
});
element.addEventListener('dblclick', (event) => {
  const row = event.target.closest('li.chatui-chat');
  if (!row || !event.target.closest('.chatui-pick')) return;
  // The first click opened the chat: its redraw would take the edit box away, so
  // the box comes after it.
  if (awaiting) editNext = row.dataset.id;
  else editTitle(row);
});
element.addEventListener('keydown', (event) => {
  const row = event.target.closest('li.chatui-chat');
  if (row && event.key === 'F2' && event.target.closest('.chatui-pick')) {
    event.preventDefault();
    editTitle(row);
  }
});
let awaiting = null;  // the timer of an open sent whose redraw has not come yet
let editNext = null;  // the chat whose title to edit after that redraw
function afterRedraw() {
  clearTimeout(awaiting);
  awaiting = null;
  decorate();
  restore();
  const id = editNext;
  editNext = null;
  const row = id && rowById(id);
  if (row) editTitle(row);
}
let shown = props.value;
watch('value', () => {
  // A streaming event that ends without a value (a generator that yielded nothing)
  // sends null to all its outputs: the list keeps what it showed.
  if (props.value) shown = props.value;
  else props.value = shown;
  setTimeout(afterRedraw, 0);  // after the redraw
});
decorate();
closeAtLoad(40);
"""


def sidebar_script() -> str:
    return _JS.replace("__CSS__", json.dumps(CSS)).replace("__NARROW__", json.dumps(NARROW))


def build_chat_list() -> tuple[gr.HTML, gr.State, gr.Timer]:
    """The list, the answering marks it shows, and the timer that refreshes them."""
    listing = gr.HTML(render_list(ChatList(), None), js_on_load=sidebar_script(),
                      elem_id="chatui-conversations", padding=False)
    marks = gr.State(frozenset())
    timer = gr.Timer(MARKS_SECONDS)
    return listing, marks, timer


def list_update(chats: ChatList | None, open_id: str | None) -> tuple[Any, Any]:
    """The list's and the marks' values for a Screen (``gr.skip()`` when it has none)."""
    if chats is None:
        return gr.skip(), gr.skip()
    return render_list(chats, open_id), chats.answering


Shown = Callable[[Screen, View], tuple[Any, ...]]


def wire_sidebar(
    listing: gr.HTML, marks: gr.State, timer: gr.Timer, view: gr.State, service: ChatService,
    *, outputs: list[Any], shown: Shown, owner_of: Callable[[gr.Request | None], str],
) -> Any:
    """The list's events; returns the event that opens a chat (others chain on it)."""

    def on_open(request: gr.Request, current: View, event: gr.EventData) -> tuple[Any, ...]:
        owner = owner_of(request)
        return shown(sidebar_actions.open_chat(service, owner, current, event._data), current)

    def on_act(request: gr.Request, current: View, event: gr.EventData) -> tuple[Any, ...]:
        owner = owner_of(request)
        return shown(sidebar_actions.act(service, owner, current, event._data), current)

    def on_tick(request: gr.Request, current: View, shown_marks: frozenset[str] | None
                ) -> tuple[Any, Any]:
        owner = owner_of(request)
        if service.answering(owner) == shown_marks:
            return gr.skip(), gr.skip()
        screen = sidebar_actions.listing(service, owner, current)
        return list_update(screen.conversations, current.conversation_id)

    quick: dict[str, Any] = {"outputs": outputs, "concurrency_limit": None,
                             "show_progress": "hidden"}
    opened = listing.click(on_open, [view], api_name="open", **quick)
    listing.submit(on_act, [view], api_name="sidebar", **quick)
    timer.tick(on_tick, [view, marks], [listing, marks], queue=False, show_progress="hidden",
               api_visibility="private")
    return opened
