"""The one adapter from conversation-tree messages to Gradio Chatbot message dicts.

``render_path`` turns the active branch into what the Chatbot shows and, beside
it, which tree message each chat row belongs to (``RenderedChat.message_ids``),
so that an event carrying a chat index (edit, retry) finds its message.

One tree message can become several chat rows, in this order:

- the reasoning, as a collapsible "thought" block (open with a spinner while it
  streams, closed once the answer text starts);
- one collapsible block per tool call (name in the title, arguments as JSON);
- the cited sources, as one collapsible block: "[n] file, page p — passage", n as in the prompt;
- the text, ending in a footer: model, tokens, tok/s, time to first token, the
  status (stopped, error with its text) and the branch control "◀ 2/3 ▶".

The footer's buttons carry their action and message id in CSS classes
(``chatui-act chatui-do-prev chatui-id-<id>``): Gradio's HTML sanitizer keeps
classes but drops ``data-*`` attributes. ``bridge.py`` turns a click on one into
a Gradio event. A user message shows a footer only when it has siblings, and
``strip_footer`` takes it off again when the message is edited.

Text from outside (answers, reasoning, sources, tool names, the model's name and
error) is made inert (``sanitize``): no raw HTML, no image that loads by itself
unless its host is in ``image_hosts`` (``--allowed-image-hosts``). Every
attribute value and text this module puts into its own HTML is escaped, ids
included, and kept on one line so that no Markdown starts inside the footer.

Text is passed as ``{"type": "text", "text": ...}`` rather than a bare string
because Gradio runs ``inspect.cleandoc`` on bare strings, which removes the
indentation of code.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from chatui import tree
from chatui.sanitize import CHAT_LATEX_DELIMITERS, inert_html, plain_markdown
from chatui.tree import Conversation, Message

ChatRow = dict[str, Any]

FOOTER_OPEN = '<div class="chatui-footer">'
_FOOTER_AT_END = re.compile(r"\s*" + re.escape(FOOTER_OPEN) + r"[\s\S]*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)", re.MULTILINE)
_IDENTIFIER = re.compile(r"[\w.\- ]*")  # needs no escaping in Markdown
SNIPPET_CHARS = 300  # of a source's passage in the Sources block; the prompt has it all


@dataclass(frozen=True, slots=True)
class RenderedChat:
    rows: tuple[ChatRow, ...] = ()
    message_ids: tuple[str, ...] = ()  # chat row index -> tree message id

    def __add__(self, other: RenderedChat) -> RenderedChat:
        return RenderedChat(self.rows + other.rows, self.message_ids + other.message_ids)


def render_path(
    conversation: Conversation, path: Sequence[Message], *, streaming: bool = False,
    image_hosts: Collection[str] = (),
) -> RenderedChat:
    """The rows for ``path``; messages not yet stored (a streaming answer) count as newest.

    A question at the end of the path has no answer (it failed): unless an answer
    is ``streaming`` below it, its footer offers to retry.
    """
    rendered = RenderedChat()
    for number, message in enumerate(path, start=1):
        unanswered = number == len(path) and not streaming
        rendered += render_message(conversation, message, unanswered=unanswered,
                                   image_hosts=image_hosts)
    return rendered


def render_conversation(
    conversation: Conversation | None, *, image_hosts: Collection[str] = ()
) -> RenderedChat:
    if conversation is None or conversation.current_leaf_id is None:
        return RenderedChat()
    return render_path(conversation, tree.active_path(conversation), image_hosts=image_hosts)


def render_message(
    conversation: Conversation, message: Message, *, unanswered: bool = False,
    image_hosts: Collection[str] = (),
) -> RenderedChat:
    position = branch_position(conversation, message)
    if message.role == "user":
        rows: list[ChatRow] = [_row("user", _question_text(message, position, unanswered))]
    elif message.role == "assistant":
        rows = _assistant_rows(message, position, image_hosts)
    else:  # system and tool messages are not part of a chat the user reads
        return RenderedChat()
    return RenderedChat(tuple(rows), (message.id,) * len(rows))


def branch_position(conversation: Conversation, message: Message) -> tuple[int, int]:
    """(position, count) among siblings; an unsaved message is the newest sibling."""
    if message.id in conversation.messages:
        return tree.sibling_position(conversation, message.id)
    count = len(tree.children(conversation, message.parent_id)) + 1
    return count, count


def strip_footer(text: str) -> str:
    """The message text without the footer this module appended to it."""
    return _FOOTER_AT_END.sub("", text)


def pending_rows(text: str) -> RenderedChat:
    """What shows between Send and the first token: the question and a waiting answer."""
    rows = (_row("user", text), _row("assistant", _footer(["<em>waiting for the model…</em>"])))
    return RenderedChat(rows, ("", ""))


def _question_text(message: Message, position: tuple[int, int], unanswered: bool) -> str:
    facts = []
    if position[1] > 1:
        facts.append(_branch_control(message.id, position))
    if unanswered:
        facts.append("no answer")
        facts.append(_action(message.id, "answer", "↻ Retry", "Answer this message again"))
    if not facts:
        return message.content
    return f"{_close_open_fence(message.content)}\n\n{_footer(facts)}"


def _assistant_rows(
    message: Message, position: tuple[int, int], image_hosts: Collection[str]
) -> list[ChatRow]:
    def inert(text: str) -> str:
        return inert_html(text, image_hosts=image_hosts, latex_delimiters=CHAT_LATEX_DELIMITERS)

    streaming = message.status == "streaming"
    rows: list[ChatRow] = []
    if message.reasoning:
        thinking = streaming and not message.content and not message.tool_calls
        status = "pending" if thinking else "done"
        rows.append(_row("assistant", inert(message.reasoning),
                         {"title": "Reasoning", "status": status}))
    for call in message.tool_calls:
        title = f"Tool call: {_tool_name(call.name) or 'unnamed'}"
        rows.append(_row("assistant", _code_block(_pretty_json(call.arguments), "json"),
                         {"title": title, "status": "done"}))
    if message.sources:
        listing = "\n".join(
            f"- [{s.number}] **{s.document}**" + (f", page {s.page}" if s.page else "")
            + f" — {_snippet(s.snippet)}" for s in message.sources
        )
        rows.append(_row("assistant", inert(listing), {"title": "Sources", "status": "done"}))
    text = _close_open_fence(inert(message.content))
    footer = _footer(_answer_facts(message, position))
    rows.append(_row("assistant", f"{text}\n\n{footer}" if text else footer))
    return rows


def _answer_facts(message: Message, position: tuple[int, int]) -> list[str]:
    facts: list[str] = []
    if message.model:
        facts.append(_text(message.model))
    timings = message.timings
    if timings is not None:
        facts.append(f"{timings.generated_tokens} tokens")
        if timings.tokens_per_second is not None:
            facts.append(f"{timings.tokens_per_second:.1f} tok/s")
        if timings.ttft_ms is not None:
            facts.append(f"TTFT {timings.ttft_ms:.0f} ms")
    if message.status == "streaming":
        facts.append("<em>generating…</em>")
    elif message.status == "stopped":
        facts.append('<span class="chatui-stopped">⏹ stopped</span>')
    elif message.status == "error":
        reason = _text(message.error or "the answer failed")
        facts.append(f'<span class="chatui-error">⚠️ error: {reason}</span>')
    if position[1] > 1:
        facts.append(_branch_control(message.id, position))
    if message.status != "streaming":
        facts.append(_action(message.id, "regen", "↻ Regenerate",
                             "A new answer beside this one, with the model picked in Settings"))
        facts.append(_action(message.id, "cont", "→ Continue",
                             "Generate more text at the end of this answer"))
    return facts


def _footer(facts: list[str]) -> str:
    return FOOTER_OPEN + " · ".join(facts) + "</div>"


def _branch_control(message_id: str, position: tuple[int, int]) -> str:
    index, count = position
    previous = _action(message_id, "prev", "◀", "Previous version", disabled=index <= 1)
    following = _action(message_id, "next", "▶", "Next version", disabled=index >= count)
    return f'<span class="chatui-branch">{previous} {index}/{count} {following}</span>'


def _action(message_id: str, action: str, label: str, title: str, disabled: bool = False) -> str:
    # Ids are checked where they enter (``storage.is_safe_id``); escaped here all the same.
    classes = _text(f"chatui-act chatui-do-{action} chatui-id-{message_id}"
                    + (" chatui-disabled" if disabled else ""))
    shown = f'class="{classes}" title="{_text(title)}"' + (" disabled" if disabled else "")
    return f"<button {shown}>{_text(label)}</button>"


def _tool_name(name: str) -> str:
    """The model's name for a tool, for a block title (which is Markdown): as plain text."""
    flat = " ".join(name.split())
    return flat if _IDENTIFIER.fullmatch(flat) else plain_markdown(flat)


def _text(value: str) -> str:
    """Text or an attribute value in this module's HTML: escaped (quotes too) and on one
    line (a blank line would end the footer's HTML block and start Markdown). ``$`` and
    ``\\`` become entities: the page finds LaTeX delimiters before it parses anything, and
    one in the footer must not pair with one in the answer above it."""
    escaped = html.escape(" ".join(value.split()), quote=True)
    return escaped.replace("$", "&#36;").replace("\\", "&#92;")


def _row(role: str, text: str, metadata: dict[str, Any] | None = None) -> ChatRow:
    row: ChatRow = {"role": role, "content": {"type": "text", "text": text}}
    if metadata:
        row["metadata"] = metadata
    return row


def _snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    """A source's passage on one line (its own breaks would end the list), shortened."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"


def _close_open_fence(text: str) -> str:
    """Close a code fence left open (a stopped answer) so the footer is not swallowed."""
    if len(_FENCE.findall(text)) % 2:
        return text + "\n```"
    return text


def _pretty_json(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments  # still streaming, or not JSON: show it as it came


def _code_block(text: str, language: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{language}\n{text}\n{fence}"
