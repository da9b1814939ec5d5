"""The browser side of the message footers: a hidden ``gr.HTML`` with a little JavaScript.

The Chatbot renders each message's footer buttons (◀ ▶ ↻ ⏵, see ``render``)
as plain HTML, which Gradio cannot listen to. The bridge's ``js_on_load``
installs one click listener on the document that:

- for a footer button, sets the bridge's value to "<action> <message id> <nonce>"
  and fires the bridge's ``click`` (branch steps, quick) or ``submit`` (answers
  that stream) event; the click does not reach the message, so it is not also
  a "select";
- after any click, removes the footer from the Chatbot's edit box, so editing a
  message shows its text only (the edit handler strips it too, in case);
- handles the keyboard (``KEYS_HELP``): in the message box Enter sends and
  Shift+Enter breaks the line (Gradio's multi-line box does the opposite, so
  the key is caught before it); Esc stops the answer; Ctrl+K goes to the
  search box; Ctrl+Shift+O opens a new chat. Each clicks the page's own
  button, so the same event runs as with the mouse;
- adds the page's stylesheet, once (``mount_gradio_app`` replaces the Blocks'
  own ``css`` with its argument, so the UI brings its style along here).
"""

from __future__ import annotations

import json

CSS = """
#chatui-bridge { display: none !important; }
.chatui-footer { font-size: 0.8em; opacity: 0.8; margin-top: 0.6em; line-height: 1.6; }
.chatui-footer button.chatui-act {
  border: none; background: none; padding: 0 0.3em; margin: 0; font: inherit;
  color: inherit; cursor: pointer; border-radius: 4px;
}
.chatui-footer button.chatui-act:hover { background: var(--background-fill-secondary); }
.chatui-footer button.chatui-disabled { opacity: 0.35; cursor: default; }
.chatui-footer .chatui-branch { white-space: nowrap; }
.chatui-footer .chatui-error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.chatui-footer .chatui-stopped { font-weight: 600; }
#chatui-chat button[aria-label="Clear"] { display: none; }
#chatui-notice { color: var(--error-text-color, #b91c1c); }
#chatui-conversations .wrap { flex-direction: column; flex-wrap: nowrap; gap: 2px; }
#chatui-conversations label { width: 100%; }
#chatui-conversations label span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
"""

KEYS_HELP = ("Message (Enter sends, Shift+Enter new line, Esc stops, Ctrl+K search, "
             "Ctrl+Shift+O new chat)")

_JS = """
if (!document.getElementById('chatui-style')) {
  const style = document.createElement('style');
  style.id = 'chatui-style';
  style.textContent = __CSS__;
  document.head.appendChild(style);
}
const footer = /\\s*<div class="chatui-footer">[\\s\\S]*$/;
const quick = new Set(['prev', 'next']);
function cleanEditBoxes() {
  document.querySelectorAll('textarea.edit-textarea').forEach((box) => {
    const clean = box.value.replace(footer, '');
    if (clean !== box.value) {
      box.value = clean;
      box.dispatchEvent(new Event('input', { bubbles: true }));
    }
  });
}
function onClick(event) {
  const button = event.target.closest && event.target.closest('.chatui-act');
  if (!button) {
    setTimeout(cleanEditBoxes, 60);
    return;
  }
  event.stopPropagation();
  event.preventDefault();
  if (button.disabled || button.classList.contains('chatui-disabled')) return;
  const classes = [...button.classList];
  const action = (classes.find((c) => c.startsWith('chatui-do-')) || '').slice(10);
  const id = (classes.find((c) => c.startsWith('chatui-id-')) || '').slice(10);
  if (!action || !id) return;
  props.value = action + ' ' + id + ' ' + Date.now();
  trigger(quick.has(action) ? 'click' : 'submit');
}
function press(id) {
  const button = document.getElementById(id);
  if (!button || button.offsetParent === null || button.disabled) return false;
  button.click();
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
if (window.__chatuiClick) document.removeEventListener('click', window.__chatuiClick, true);
window.__chatuiClick = onClick;
document.addEventListener('click', onClick, true);
"""


def bridge_script() -> str:
    return _JS.replace("__CSS__", json.dumps(CSS))
