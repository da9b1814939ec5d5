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
if (window.__chatuiClick) document.removeEventListener('click', window.__chatuiClick, true);
window.__chatuiClick = onClick;
document.addEventListener('click', onClick, true);
"""


def bridge_script() -> str:
    return _JS.replace("__CSS__", json.dumps(CSS))
