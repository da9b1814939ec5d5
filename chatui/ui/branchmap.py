"""The branch map under the chat (issue 13, item 1): the whole tree of the open chat.

Helper I's part of the page. A closed "Branch map" fold holding two ``gr.HTML``:

- the map (``map_html``): one row per message (role, first words, model, its
  ``2/3`` among siblings), the active path highlighted, indented at each branch
  point; a long chain off the active path is folded into one row that shows
  that branch when clicked (``chatui.branchmap.rows``): one HTML value, only
  what is visible drawn, however big the tree;
- the comparison (``compare_html``): two sibling answers side by side with model,
  tokens, tok/s and time to first token.

Clicks go through a hidden ``gr.HTML`` bridge, as the message bars' do
(``ui.bridge``): its script sets the value to "<act> <id>[,<id>] <nonce>" and
fires its ``click``. Acts: ``jump`` (show that branch; the chat follows),
``compare`` (two ticked answers), ``prune`` (asked first, in the row) and
``fork`` (a new chat with the path down to there, opened). The value comes
from the page, so ``parse`` checks it like any client input.

Every text shown (contents, titles, model names) is escaped: the model and the
user are both outside. The map is drawn only while the fold is open, and not
while an answer streams (it is drawn again when it ends).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from chatui import branchmap, forking
from chatui.branchmap import BranchMap, Node, Run, Side
from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.storage import is_safe_id
from chatui.store import shorten
from chatui.ui.actions import delete_branch
from chatui.ui.refresh import Refresh
from chatui.ui.screen import Screen, View, describe_error, show

ACTS = {"jump": 1, "prune": 1, "fork": 1, "compare": 2}  # act -> how many ids it takes
MAX_VALUE = 500  # characters of a click's value: two ids and a nonce
MAX_INDENT = 8  # deeper branch points are drawn at this indent (the depth is still told)
ROLES = {"user": "You", "assistant": "AI", "system": "System", "tool": "Tool"}

MAP_CSS = """
#chatui-map-bridge { display: none !important; }
.chatui-map { font-size: var(--text-sm); }
.chatui-map-head { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center;
  margin-bottom: 6px; color: var(--body-text-color-subdued); }
.chatui-map-list, .chatui-map-list ol { list-style: none; margin: 0; padding: 0; }
.chatui-map-node { display: flex; align-items: center; gap: 6px; padding: 1px 4px;
  border-left: 3px solid transparent; border-radius: 4px; min-height: 28px; }
.chatui-map-node.chatui-map-active { border-left-color: var(--color-accent);
  background: var(--background-fill-secondary); }
.chatui-map-node.chatui-map-current .chatui-map-text { font-weight: 600; }
.chatui-map-node { flex-wrap: wrap; }
#chatui-branchmap button { box-shadow: none; font: inherit; font-size: var(--text-sm);
  line-height: 1.4; min-width: 0; width: auto; margin: 0; }
#chatui-branchmap .chatui-map-jump { flex: 1 1 12em; min-width: 0; display: flex; gap: 6px;
  text-align: left; background: none; border: none; padding: 2px 0; cursor: pointer;
  color: inherit; justify-content: flex-start; font-weight: normal; }
.chatui-map-jump:hover .chatui-map-text, .chatui-map-jump:focus-visible .chatui-map-text {
  text-decoration: underline; }
.chatui-map-role { flex: none; font-weight: 600; min-width: 3.5em; }
.chatui-map-tools { flex: none; display: flex; align-items: center; gap: 6px; }
.chatui-map-text { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.chatui-map-meta { flex: none; color: var(--body-text-color-subdued); white-space: nowrap; }
#chatui-branchmap button.chatui-map-tool, #chatui-branchmap .chatui-map-head button {
  flex: none; font: inherit; padding: 1px 6px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: none; color: inherit; }
#chatui-branchmap .chatui-map-head button:disabled { opacity: 0.4; cursor: default; }
.chatui-map-confirm { font-weight: 600; }
.chatui-map-run summary { cursor: pointer; color: var(--body-text-color-subdued);
  padding: 2px 4px; }
.chatui-map-d1 { margin-left: 1.2em; } .chatui-map-d2 { margin-left: 2.4em; }
.chatui-map-d3 { margin-left: 3.6em; } .chatui-map-d4 { margin-left: 4.8em; }
.chatui-map-d5 { margin-left: 6em; } .chatui-map-d6 { margin-left: 7.2em; }
.chatui-map-d7 { margin-left: 8.4em; } .chatui-map-d8 { margin-left: 9.6em; }
.chatui-compare { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.chatui-compare-side { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px; min-width: 0; }
.chatui-compare-facts { color: var(--body-text-color-subdued); font-size: var(--text-sm); }
.chatui-compare-text { white-space: pre-wrap; word-break: break-word; font: inherit;
  margin: 6px 0 0; }
@media (max-width: 768px) {
  .chatui-compare { grid-template-columns: 1fr; }
  .chatui-map-model { display: none; }
  #chatui-branchmap .chatui-map-jump { flex-basis: 100%; }
  .chatui-map-tools { margin-left: 3.5em; }
  #chatui-branchmap button.chatui-map-tool { min-height: 32px; }
  .chatui-map-d1, .chatui-map-d2, .chatui-map-d3, .chatui-map-d4, .chatui-map-d5,
  .chatui-map-d6, .chatui-map-d7, .chatui-map-d8 { margin-left: 0; }
  .chatui-map-d1 { padding-left: 0.6em; } .chatui-map-d2 { padding-left: 1.2em; }
  .chatui-map-d3 { padding-left: 1.8em; } .chatui-map-d4 { padding-left: 2.4em; }
  .chatui-map-d5 { padding-left: 3em; } .chatui-map-d6 { padding-left: 3.6em; }
  .chatui-map-d7 { padding-left: 4.2em; } .chatui-map-d8 { padding-left: 4.8em; }
}
"""

_JS = """
if (!document.getElementById('chatui-map-style')) {
  const style = document.createElement('style');
  style.id = 'chatui-map-style';
  style.textContent = __CSS__;
  document.head.appendChild(style);
}
const act = (kind, ids) => {
  props.value = [kind, ids, Date.now()].join(' ');
  trigger('click');
};
function picked() {
  return [...document.querySelectorAll('#chatui-branchmap input[data-map="pick"]:checked')];
}
const rowId = (control) => {
  const row = control.closest('li[data-id]');
  return row ? row.dataset.id : '';
};
function made(tag, className, text, dataset) {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text;
  Object.assign(element.dataset, dataset || {});
  if (tag === 'button') element.type = 'button';
  return element;
}
function askPrune(control) {
  const count = Number(control.dataset.count || 1);
  const ask = made('span', 'chatui-map-confirm',
    'Delete ' + (count === 1 ? 'this message' : 'these ' + count + ' messages') + '? ');
  ask.setAttribute('role', 'alert');
  const yes = made('button', 'chatui-map-tool', 'Yes, delete',
                   {map: 'prune-yes'});
  const no = made('button', 'chatui-map-tool', 'Cancel', {map: 'prune-no'});
  ask.append(yes, no);
  control.hidden = true;
  control.after(ask);
  no.focus();
}
function onClick(event) {
  const control = event.target.closest && event.target.closest('#chatui-branchmap [data-map]');
  if (!control || control.dataset.map === 'pick') return;
  event.preventDefault();
  const kind = control.dataset.map;
  if (kind === 'jump' || kind === 'fork') act(kind, rowId(control));
  else if (kind === 'prune') askPrune(control);
  else if (kind === 'prune-yes') act('prune', rowId(control));
  else if (kind === 'prune-no') {
    const ask = control.closest('.chatui-map-confirm');
    const trigger = ask.previousElementSibling;
    ask.remove();
    if (trigger) { trigger.hidden = false; trigger.focus(); }
  } else if (kind === 'compare') {
    const ids = picked().map(rowId);
    if (ids.length === 2) act('compare', ids.join(','));
  }
}
function onChange(event) {
  const box = event.target.closest
    && event.target.closest('#chatui-branchmap input[data-map="pick"]');
  if (!box) return;
  const kept = (window.__chatuiMapPicks || []).filter((b) => b.checked && b.isConnected);
  window.__chatuiMapPicks = box.checked ? kept.concat([box]) : kept;
  const boxes = picked();
  if (boxes.length > 2) {  // keep the last two ticked
    const order = (window.__chatuiMapPicks || []).filter((b) => b.checked && b !== box);
    (order[0] || boxes[0]).checked = false;
  }
  const button = document.querySelector('#chatui-branchmap [data-map="compare"]');
  if (button) button.disabled = picked().length !== 2;
}
if (window.__chatuiMapClick) document.removeEventListener('click', window.__chatuiMapClick, true);
if (window.__chatuiMapChange) document.removeEventListener('change', window.__chatuiMapChange);
window.__chatuiMapClick = onClick;
window.__chatuiMapChange = onChange;
document.addEventListener('click', onClick, true);
document.addEventListener('change', onChange);
"""


@dataclass(frozen=True, slots=True)
class MapPanel:
    fold: gr.Accordion
    map: gr.HTML  # the tree (``map_html``)
    compare: gr.HTML  # two answers side by side (``compare_html``)
    bridge: gr.HTML  # hidden: what a click asks for
    shown: gr.State  # whether the fold is open: the map is drawn only then


def build_branchmap() -> MapPanel:
    """The closed "Branch map" fold; ``ui.layout`` places it under the message box."""
    with gr.Accordion("Branch map", open=False, elem_id="chatui-branchmap-fold") as fold:
        tree = gr.HTML(empty_html(), elem_id="chatui-branchmap", padding=False)
        compare = gr.HTML("", elem_id="chatui-compare", padding=False)
    bridge = gr.HTML("", html_template="", elem_id="chatui-map-bridge",
                     js_on_load=_JS.replace("__CSS__", json.dumps(MAP_CSS)))
    return MapPanel(fold, tree, compare, bridge, gr.State(False))


def empty_html() -> str:
    return '<div class="chatui-map"><p>No messages yet.</p></div>'


def map_html(mapped: BranchMap) -> str:
    """The whole map as one HTML value; every text from outside escaped."""
    if not mapped.nodes:
        return empty_html()
    sizes = _subtree_sizes(mapped.nodes)
    head = (
        f'<div class="chatui-map-head"><span>{len(mapped.nodes)} messages · '
        f'{mapped.branches} branch{"" if mapped.branches == 1 else "es"}</span>'
        '<button type="button" data-map="compare" disabled '
        'title="Tick two answers to the same question first">Compare the two ticked answers'
        '</button><span>Click a message to show its branch. Fork: a new chat with the '
        'conversation down to there. Prune: delete a message and all below it.</span></div>'
    )
    items = []
    for row in branchmap.rows(mapped):
        if isinstance(row, Run):
            first = row.nodes[0]  # a jump there shows the branch, unfolded
            items.append(f'<li class="chatui-map-run chatui-map-d{_indent(first)}" '
                         f'data-id="{html.escape(first.id)}"><button type="button" '
                         f'data-map="jump">… {len(row.nodes)} more messages: show this '
                         'branch</button></li>')
        else:
            items.append(_node_html(row, sizes))
    return f'<div class="chatui-map">{head}<ol class="chatui-map-list">{"".join(items)}</ol></div>'


def _indent(node: Node) -> int:
    return min(node.depth, MAX_INDENT)


def _subtree_sizes(nodes: Sequence[Node]) -> dict[str, int]:
    sizes = {node.id: 1 for node in nodes}
    for node in reversed(nodes):  # depth first: every child comes after its parent
        if node.parent_id in sizes:
            sizes[node.parent_id] += sizes[node.id]
    return sizes


def _node_html(node: Node, sizes: dict[str, int]) -> str:
    esc = html.escape
    classes = f"chatui-map-node chatui-map-d{_indent(node)}"
    if node.active:
        classes += " chatui-map-active"
    if node.current:
        classes += " chatui-map-current"
    meta = []
    if node.model:
        meta.append(f'<span class="chatui-map-meta chatui-map-model">{esc(node.model)}</span>')
    if node.siblings > 1:
        meta.append(f'<span class="chatui-map-meta" title="version {node.position} of '
                    f'{node.siblings}">{node.position}/{node.siblings}</span>')
    if node.status != "complete":
        meta.append(f'<span class="chatui-map-meta">{esc(node.status)}</span>')
    nid = esc(node.id)
    pick = ""
    if node.role == "assistant":
        pick = ('<label class="chatui-map-meta"><input type="checkbox" data-map="pick">'
                ' compare</label>')
    role = ROLES.get(node.role, node.role)
    return (
        f'<li class="{classes}" data-id="{nid}" data-role="{esc(node.role)}">'
        f'<button type="button" class="chatui-map-jump" data-map="jump">'
        f'<span class="chatui-map-role">{esc(role)}</span>'
        f'<span class="chatui-map-text">{esc(node.preview) or "(empty)"}</span></button>'
        f'<span class="chatui-map-tools">{"".join(meta)}{pick}'
        '<button type="button" class="chatui-map-tool" data-map="fork">Fork</button>'
        f'<button type="button" class="chatui-map-tool" data-map="prune" '
        f'data-count="{sizes[node.id]}">Prune</button></span></li>'
    )


def compare_html(question: str, sides: tuple[Side, Side]) -> str:
    esc = html.escape
    columns = []
    for side in sides:
        facts = [f"answer {side.position}/{side.siblings}", side.model or "model unknown"]
        if side.tokens is not None:
            facts.append(f"{side.tokens} token" + ("" if side.tokens == 1 else "s"))
        if side.tokens_per_second is not None:
            facts.append(f"{side.tokens_per_second:.1f} tok/s")
        if side.ttft_ms is not None:
            facts.append(f"TTFT {side.ttft_ms:.0f} ms")
        if side.status != "complete":
            facts.append(side.status)
        columns.append(
            f'<div class="chatui-compare-side" data-id="{esc(side.id)}">'
            f'<div class="chatui-compare-facts">{esc(" · ".join(facts))}</div>'
            f'<pre class="chatui-compare-text">{esc(side.content)}</pre></div>')
    return (f'<div class="chatui-compare-wrap"><p><strong>Comparing two answers to:</strong> '
            f'{esc(question)}</p><div class="chatui-compare">{"".join(columns)}</div></div>')


def parse(value: object) -> tuple[str, tuple[str, ...]] | None:
    """The act and ids a click sent; None for anything else (a forged event may send any
    JSON value)."""
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        return None
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] not in ACTS:
        return None
    ids = tuple(parts[1].split(","))
    if len(ids) != ACTS[parts[0]] or not all(is_safe_id(i) for i in ids):
        return None
    return parts[0], ids


def run(service: ChatService, owner: str, view: View, value: object
        ) -> tuple[Screen | None, str | None]:
    """Do what a click asked: the page to show (None: unchanged) and a comparison, if any."""
    parsed = parse(value)
    cid = view.conversation_id
    if parsed is None or cid is None:
        return None, None
    kind, ids = parsed
    try:
        if kind == "compare":
            conversation = service.conversation(cid, owner)
            sides = branchmap.compare(conversation, *ids)
            parent = conversation.message(ids[0]).parent_id
            question = conversation.message(parent).content if parent else ""
            return None, compare_html(shorten(question, 300), sides)
        if kind == "prune":
            return delete_branch(service, owner, view, ids[0]), ""
        if kind == "fork":
            return show(service, owner, view, forking.fork(service, cid, ids[0], owner)), ""
        return show(service, owner, view, service.switch_branch(cid, ids[0], owner)), None
    except ChatError as error:
        return Screen(view=view, notice=describe_error(error)), None


def current_map(service: ChatService, owner: str, view: View) -> str:
    if view.conversation_id is None:
        return empty_html()
    try:
        return map_html(branchmap.branch_map(service.conversation(view.conversation_id, owner)))
    except ChatError:
        return empty_html()  # a chat just deleted


def wire_branchmap(
    panel: MapPanel, view: gr.State, service: ChatService, *, outputs: list[Any],
    shown: Callable[[Screen, View | None], tuple[Any, ...]],
    owner_of: Callable[[gr.Request | None], str], loaded: Any,
) -> Refresh:
    """Draw the map when the fold opens and when the view changes while it is open (the
    ``Refresh`` returned, for ``ui.refresh``); clicks on it act through the bridge and
    redraw it."""
    skip = gr.skip()

    def redraw(request: gr.Request, view: View, open_: bool) -> Any:
        if not open_ or view.generating:
            return skip
        return current_map(service, owner_of(request), view)

    def on_open(request: gr.Request, view: View) -> tuple[Any, ...]:
        return True, current_map(service, owner_of(request), view)

    def on_act(request: gr.Request, view: View, value: object) -> tuple[Any, ...]:
        owner = owner_of(request)
        screen, compared = run(service, owner, view, value)
        page = shown(screen, view) if screen is not None else (skip,) * len(outputs)
        after = screen.view if screen is not None else view
        return (*page, current_map(service, owner, after),
                skip if compared is None else compared)

    quiet: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private",
                             "concurrency_limit": None}
    panel.fold.expand(on_open, [view], [panel.shown, panel.map], **quiet)
    panel.fold.collapse(lambda: False, None, panel.shown, **quiet)
    refresh: dict[str, Any] = {"fn": redraw, "inputs": [view, panel.shown],
                               "outputs": panel.map, **quiet}
    loaded.then(**refresh)
    panel.bridge.click(on_act, [view, panel.bridge],
                       [*outputs, panel.map, panel.compare], **quiet)
    return Refresh(redraw, [view, panel.shown], [panel.map])
