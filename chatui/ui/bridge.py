"""The browser side of the chat: hidden ``gr.HTML`` components with a little JavaScript.

The bars under the messages (``render`` makes them as data, ``actions`` sends
them as JSON in the hidden ``#chatui-bars``): ``bars_script`` draws each one
after its message with DOM nodes and ``textContent`` only (no HTML from the
data is ever parsed), again whenever the Chatbot re-renders or the JSON
changes: the facts (model, tokens, tok/s, TTFT), the state (waiting,
generating, stopped, the error in words with its detail folded), the branch
arrows around "2/3" and the actions as buttons with an icon, a label and a
tooltip: Copy (the message's own Markdown, via ``navigator.clipboard``), Edit
(opens the Chatbot's own edit box, whose button is hidden), Regenerate with a
model picker (default: the chat's model), Continue, Retry, Delete (asks
first). While an answer streams only Copy works.

The bridge's ``js_on_load`` (``bridge_script``):

- ``window.__chatuiAct(action, id, model)`` sets the bridge's value to
  "<action> <message id> <nonce>[ <model>]" and fires its ``click`` (branch
  steps, delete: quick) or ``submit`` (answers that stream) event;
- handles the keyboard (``KEYS_HELP``): in the message box Enter sends and
  Shift+Enter breaks the line (Gradio's multi-line box does the opposite, so
  the key is caught before it); ↑ in the empty box edits the last question;
  Esc stops the answer; Ctrl+K goes to the search box; Ctrl+Shift+O opens a
  new chat. Each clicks the page's own button, so the same event runs as with
  the mouse;
- adds the page's stylesheet, once (``mount_gradio_app`` replaces the Blocks'
  own ``css`` with its argument, so the UI brings its style along here).

Gradio internals relied on (tests/test_ui_actions.py fails if they change): a
Chatbot row is a ``div.message`` inside the group's ``div.message``, followed
by its ``.message-buttons``, whose only button (per-message copy is off) is
Edit; the edit box is ``textarea.edit-textarea``.
"""

from __future__ import annotations

import json

CSS = """
#chatui-bridge, #chatui-bars { display: none !important; }
#chatui-chat button[aria-label="Clear"] { display: none; }
#chatui-notice { color: var(--error-text-color, #b91c1c); }
/* ---- helper G: message bars, header, errors ---- */
#chatui-chat div.message:not(:has(textarea.edit-textarea)) + .message-buttons { display: none; }
#chatui-chat button.copy_code_button { display: none; }  /* one Copy per message: the bar's */
.chatui-bar {
  display: flex; flex-wrap: wrap; align-items: center; gap: 2px 6px; width: 100%;
  font-size: 0.8em; line-height: 1.4; margin: 2px 0 8px; user-select: none;
  color: var(--body-text-color-subdued);
}
.chatui-bar-user { justify-content: flex-end; }
.chatui-bar button, .chatui-bar select {
  min-height: 28px; min-width: 28px; padding: 2px 6px; border-radius: 6px; font: inherit;
  color: var(--body-text-color); background: none; border: 1px solid transparent;
  cursor: pointer; display: inline-flex; align-items: center; justify-content: center; gap: 4px;
}
.chatui-bar svg.chatui-icon { display: inline-block; flex: none; }
.chatui-bar select { border-color: var(--border-color-primary); max-width: 14em; }
.chatui-bar button:hover:not(:disabled), .chatui-bar button:focus-visible {
  background: var(--background-fill-secondary); border-color: var(--border-color-primary);
}
.chatui-bar button:disabled, .chatui-bar select:disabled { opacity: 0.4; cursor: default; }
.chatui-bar .chatui-icon { font-size: 1.1em; }
.chatui-bar .chatui-facts { opacity: 0.85; }
.chatui-bar .chatui-state-error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.chatui-bar .chatui-state-stopped { font-weight: 600; }
.chatui-bar details { width: 100%; }
.chatui-bar .chatui-made ul { margin: 2px 0 4px 1.2em; padding: 0; }
.chatui-bar .chatui-confirm { font-weight: 600; }
.chatui-detail summary { cursor: pointer; font-size: 0.85em; }
.chatui-detail code { white-space: pre-wrap; word-break: break-word; }
#chatui-header { align-items: center; }
@media (max-width: 768px) {
  .chatui-bar .chatui-label { display: none; }
  .chatui-bar button, .chatui-bar select { min-height: 36px; min-width: 36px; }
}
/* ---- end helper G ---- */
"""

KEYS_HELP = ("Message (Enter sends, Shift+Enter new line, ↑ edits the last question, "
             "Esc stops, Ctrl+K search, Ctrl+Shift+O new chat)")

_JS = """
if (!document.getElementById('chatui-style')) {
  const style = document.createElement('style');
  style.id = 'chatui-style';
  style.textContent = __CSS__;
  document.head.appendChild(style);
}
const quick = new Set(['prev', 'next', 'delete']);
window.__chatuiAct = (action, id, model) => {
  props.value = [action, id, Date.now()].join(' ') + (model ? ' ' + model : '');
  trigger(quick.has(action) ? 'click' : 'submit');
};
function press(id) {
  const button = document.getElementById(id);
  if (!button || button.offsetParent === null || button.disabled) return false;
  button.click();
  return true;
}
function editLast() {
  const edits = document.querySelectorAll('#chatui-chat .chatui-bar-user [data-act="edit"]');
  const last = edits[edits.length - 1];
  if (!last || last.disabled) return false;
  last.click();
  return true;
}
function onKey(event) {
  if (event.isComposing || event.keyCode === 229) return;  // an input method is composing
  const box = event.target.closest && event.target.closest('#chatui-message');
  const command = event.ctrlKey || event.metaKey;
  const key = (event.key || '').toLowerCase();
  if (box && key === 'enter' && !command && !event.altKey) {
    event.stopPropagation();  // Gradio's own Enter handling never sees it
    if (event.shiftKey) return;  // the browser breaks the line
    event.preventDefault();
    if (event.target.value.trim()) press('chatui-send');
  } else if (box && key === 'arrowup' && !command && !event.shiftKey && !event.altKey
             && event.target.value === '') {
    if (editLast()) event.preventDefault();
  } else if (key === 'escape') {
    if (press('chatui-stop')) event.preventDefault();
  } else if (command && !event.shiftKey && key === 'k') {
    const search = document.querySelector('#chatui-search textarea, #chatui-search input');
    if (search) { event.preventDefault(); search.focus(); }
  } else if (command && event.shiftKey && key === 'o') {
    event.preventDefault();
    press('chatui-new-chat');
  }
}
function onKeyPress(event) {
  // Gradio's box submits on keypress: keep every Enter of the message box from it.
  const box = event.target.closest && event.target.closest('#chatui-message');
  if (box && event.key === 'Enter') event.stopPropagation();
}
if (window.__chatuiKey) document.removeEventListener('keydown', window.__chatuiKey, true);
if (window.__chatuiKeyPress) {
  document.removeEventListener('keypress', window.__chatuiKeyPress, true);
}
window.__chatuiKey = onKey;
window.__chatuiKeyPress = onKeyPress;
document.addEventListener('keydown', onKey, true);
document.addEventListener('keypress', onKeyPress, true);
"""

_BARS_JS = """
const shared = window.__chatuiShared || (window.__chatuiShared = {models: [], model: ''});
let data = {rows: [], busy: false};
function read() {
  try { data = JSON.parse(props.value || '{}'); } catch (error) { data = {}; }
  if (!Array.isArray(data.rows)) data.rows = [];
  if (Array.isArray(data.models)) shared.models = data.models.map(String);
  if (typeof data.model === 'string') shared.model = data.model;
}
function node(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = String(text);
  return made;
}
const ICONS = {  // drawn, not emoji: every browser has them
  copy: 'M8 8h11v11H8zM5 16V5h11',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6',
};
function svgIcon(path) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'chatui-icon');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  line.setAttribute('d', path);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '2');
  line.setAttribute('stroke-linejoin', 'round');
  svg.append(line);
  return svg;
}
function button(act, icon, label, tip, onClick, disabled) {
  const made = node('button', 'chatui-act');
  made.type = 'button';
  made.dataset.act = act;
  made.title = tip;
  made.setAttribute('aria-label', label || tip);
  made.append(ICONS[icon] ? svgIcon(ICONS[icon]) : node('span', 'chatui-icon', icon));
  if (label) made.append(node('span', 'chatui-label', ' ' + label));
  made.disabled = Boolean(disabled);
  made.addEventListener('click', (event) => {
    event.preventDefault();
    event.stopPropagation();  // not also a "select" of the message
    if (!made.disabled) onClick(made);
  });
  return made;
}
function modelPicker(disabled) {
  const picker = node('select', 'chatui-model');
  picker.setAttribute('aria-label', 'Model for Regenerate');
  picker.title = 'The model that writes the new answer';
  const chat = shared.model ? "chat's model (" + shared.model + ')' : "chat's model";
  picker.append(new Option(chat, ''));
  for (const name of shared.models) picker.append(new Option(name, name));
  picker.disabled = Boolean(disabled);
  picker.addEventListener('click', (event) => event.stopPropagation());
  return picker;
}
async function copy(text, control) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    const area = node('textarea');
    area.value = text;
    area.style.position = 'fixed';
    area.style.left = '-9999px';
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  const label = control.querySelector('.chatui-label');
  if (label) {
    label.textContent = ' Copied';
    setTimeout(() => { label.textContent = ' Copy'; }, 1500);
  }
}
function editRow(bar) {
  // The row as it is now (the Chatbot may have drawn it anew): just before the bar.
  let row = bar.previousElementSibling;
  const gradioButtons = row && row.matches('.message-buttons') ? row : null;
  if (gradioButtons) row = row.previousElementSibling;
  if (!row) return;
  const buttons = gradioButtons ? [...gradioButtons.querySelectorAll('button')] : [];
  const edit = buttons.find((b) => b.getAttribute('aria-label') === 'Edit') || buttons[0];
  if (!edit) return;
  edit.click();
  setTimeout(() => {
    const box = row.querySelector('textarea.edit-textarea');
    if (box) { box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
  }, 50);
}
function confirmDelete(bar, id, trigger) {
  const ask = node('span', 'chatui-confirm', 'Delete this message and its branch? ');
  ask.setAttribute('role', 'alert');
  const yes = button('delete-yes', 'trash', 'Yes, delete', 'Delete it for good', () => {
    window.__chatuiAct('delete', id);
  });
  const no = button('delete-no', '✕', 'Cancel', 'Keep it', () => {
    ask.remove();
    trigger.hidden = false;
    trigger.focus();
  });
  ask.append(yes, no);
  trigger.hidden = true;
  trigger.after(ask);
  no.focus();
}
const STATES = {
  waiting: 'waiting for the model…', streaming: 'generating…', stopped: '\u25a0 stopped',
  unanswered: 'No answer.',
};
function drawBar(bar) {
  const busy = Boolean(data.busy);
  const id = String(bar.id || '');
  const user = bar.role === 'user';
  const made = node('div', 'chatui-bar ' + (user ? 'chatui-bar-user' : 'chatui-bar-bot'));
  made.setAttribute('role', 'toolbar');
  made.setAttribute('aria-label', user ? 'Your message' : 'Answer');
  made.dataset.role = user ? 'user' : 'assistant';
  const branch = Array.isArray(bar.branch) ? bar.branch.map(Number) : [1, 1];
  if (id && branch[1] > 1) {
    const group = node('span', 'chatui-branch');
    group.append(
      button('prev', '\\u2039', '', 'Previous version', () => window.__chatuiAct('prev', id),
             busy || branch[0] <= 1),
      node('span', 'chatui-position', branch[0] + '/' + branch[1]),
      button('next', '\\u203a', '', 'Next version', () => window.__chatuiAct('next', id),
             busy || branch[0] >= branch[1]));
    made.append(group);
  }
  const facts = (Array.isArray(bar.facts) ? bar.facts : []).map(String);
  if (facts.length) made.append(node('span', 'chatui-facts', facts.join(' · ')));
  const state = String(bar.state || '');
  if (state === 'error') {
    made.append(node('span', 'chatui-state-error',
      '\u26a0 This answer broke off: the model server failed. '
      + 'Regenerate or Continue to try again.'));
    if (bar.error) {
      const detail = node('details', 'chatui-detail');
      detail.append(node('summary', '', 'Technical detail'), node('code', '', bar.error));
      made.append(detail);
    }
  } else if (STATES[state]) {
    made.append(node('span', 'chatui-state-' + state, STATES[state]));
  }
  const actions = new Set(Array.isArray(bar.actions) ? bar.actions : []);
  if (actions.has('copy')) {
    made.append(button('copy', 'copy', 'Copy', 'Copy this message as Markdown',
                       (control) => copy(String(bar.text || ''), control)));
  }
  if (actions.has('edit')) {
    made.append(button('edit', '✎', 'Edit', 'Edit this question: a new branch',
                       () => editRow(made), busy));
  }
  if (actions.has('regen') || actions.has('answer')) {
    const retry = actions.has('answer');
    const picker = modelPicker(busy);
    made.append(button(retry ? 'answer' : 'regen', '↻', retry ? 'Retry' : 'Regenerate',
      retry ? 'Answer this question again' : 'A new answer beside this one',
      () => window.__chatuiAct(retry ? 'answer' : 'regen', id, picker.value), busy), picker);
  }
  if (actions.has('cont')) {
    made.append(button('cont', '→', 'Continue', 'Generate more at the end of this answer',
                       () => window.__chatuiAct('cont', id), busy));
  }
  if (actions.has('delete')) {
    const remove = button('delete', 'trash', 'Delete', 'Delete this message and its branch',
                          (control) => confirmDelete(made, id, control), busy);
    made.append(remove);
  }
  if (bar.details) made.append(detailsFold(String(bar.details), id, busy));
  return made;
}
function detailsFold(markdown, id, busy) {
  // How the answer was made (chatui.details): its Markdown lines, shown as plain text.
  const fold = node('details', 'chatui-made');
  fold.append(node('summary', '', 'Details'));
  const list = node('ul');
  for (const line of markdown.split('\\n')) {
    const words = line.replace(/^\\s*-\\s*/, '').split('`').join('');
    if (words) list.append(node('li', '', words));
  }
  fold.append(list, button('again', '\u21bb', 'Retry with the same settings',
    'Answer again as this one was made: its model, settings and seed',
    () => window.__chatuiAct('again', id), busy));
  return fold;
}
function chatRows() {
  return [...document.querySelectorAll('#chatui-chat .message-wrap div.message div.message')];
}
function draw() {
  scheduled = false;
  const rows = chatRows();
  const bars = data.rows;
  const kept = new Set();
  if (rows.length === bars.length) {
    rows.forEach((row, index) => {
      const bar = bars[index];
      if (!bar || typeof bar !== 'object') return;
      const anchor = row.nextElementSibling && row.nextElementSibling.matches('.message-buttons')
        ? row.nextElementSibling : row;
      const key = JSON.stringify([bar, Boolean(data.busy), shared.models, shared.model]);
      let current = anchor.nextElementSibling;
      if (!(current && current.classList.contains('chatui-bar'))) current = null;
      if (current && current.__chatuiKey === key) { kept.add(current); return; }
      const made = drawBar(bar);
      made.__chatuiKey = key;
      if (current) current.replaceWith(made); else anchor.after(made);
      kept.add(made);
    });
  } else {
    return;  // the Chatbot and the bars are between two updates: wait for both
  }
  document.querySelectorAll('#chatui-chat .chatui-bar').forEach((old) => {
    if (!kept.has(old)) old.remove();
  });
}
let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(draw);
}
read();
schedule();
watch('value', () => { read(); schedule(); });
if (window.__chatuiObserver) window.__chatuiObserver.disconnect();
window.__chatuiObserver = new MutationObserver(schedule);
window.__chatuiObserver.observe(document.body, {childList: true, subtree: true});
"""


def bridge_script() -> str:
    return _JS.replace("__CSS__", json.dumps(CSS))


def bars_script() -> str:
    return _BARS_JS
