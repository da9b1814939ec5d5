"""The one adapter from conversation-tree messages to Gradio Chatbot message dicts.

``render_path`` turns the active branch into what the Chatbot shows and, beside
it, which tree message each chat row belongs to (``RenderedChat.message_ids``),
so that an event carrying a chat index (edit, retry) finds its message.

One tree message can become several chat rows, in this order:

- the reasoning, as a collapsible "thought" block (open with a spinner while it
  streams, closed once the answer text starts); shown as written: a ``*`` in it
  is a star, not emphasis;
- one collapsible block per tool call (name in the title, arguments as JSON);
- the cited sources, as one collapsible block: "[n] file, page p — passage", n as in the prompt;
- the text, exactly the message's text: nothing is appended to it.

What shows under a message (model, tokens, tok/s, time to first token, its
state, the branch arrows around "2/3" and the actions: copy, edit, regenerate,
continue, delete) is its **bar**: plain data kept beside the row under
``BAR`` and taken off by ``split_bars`` before the rows reach the Chatbot,
then sent to the page as JSON (``ui.actions``), where the bridge draws it
with DOM text nodes (``bridge.py``). So the footer is in neither the copied
text nor the message's accessible name, and a streaming answer's text only
grows at its end. A question with no answer (it failed) gets an empty answer
row of its own whose bar offers to retry: two failed questions in a row stay
two bubbles.

Text from outside (answers, reasoning, sources, tool names) is made inert
(``sanitize``): no raw HTML, no image that loads by itself unless its host is
in ``image_hosts`` (``--allowed-image-hosts``). The bars are data, never HTML.

Text is passed as ``{"type": "text", "text": ...}`` rather than a bare string
because Gradio runs ``inspect.cleandoc`` on bare strings, which removes the
indentation of code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chatui import tree
from chatui.details import details_markdown
from chatui.sanitize import CHAT_LATEX_DELIMITERS, inert_html, plain_markdown, stars_as_text
from chatui.tree import Conversation, Message

ChatRow = dict[str, Any]
Bar = dict[str, Any]

BAR = "chatui_bar"  # the row key that carries its bar until ``split_bars``
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

    A question followed by no answer (it failed) gets an answer row that offers to
    retry, unless an answer is ``streaming`` below the last one.
    """
    rendered = RenderedChat()
    for number, message in enumerate(path, start=1):
        following = path[number] if number < len(path) else None
        last = following is None
        unanswered = message.role == "user" and (
            (last and not streaming) or (following is not None and following.role == "user"))
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
        rows: list[ChatRow] = [_row("user", message.content, _question_bar(message, position))]
        if unanswered:
            rows.append(_row("assistant", "", _bar(message.id, "assistant", state="unanswered",
                                                   actions=("answer",))))
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
    """The text of a message being edited. Nothing is appended to a message's text any
    more (its bar is beside it), so this is the text itself; kept for ``generation``."""
    return text


def pending_rows(text: str) -> RenderedChat:
    """What shows between Send and the first token: the question and a waiting answer."""
    rows = (_row("user", text, _bar("", "user", text=text)),
            _row("assistant", "", _bar("", "assistant", state="waiting")))
    return RenderedChat(rows, ("", ""))


def split_bars(rows: Iterable[ChatRow], **page: Any) -> tuple[list[ChatRow], str]:
    """The rows as the Chatbot takes them, and their bars as JSON for the page.

    The JSON is ``{"rows": [bar or null, ...], **page}``: one entry per row, in order.
    ``page`` adds what the bars share (the models to regenerate with, for instance).
    """
    clean: list[ChatRow] = []
    bars: list[Bar | None] = []
    for row in rows:
        bars.append(row.get(BAR))
        clean.append({key: value for key, value in row.items() if key != BAR})
    return clean, json.dumps({"rows": bars, **page}, ensure_ascii=False)


def _question_bar(message: Message, position: tuple[int, int]) -> Bar:
    return _bar(message.id, "user", branch=position, text=message.content,
                actions=("copy", "edit", "delete"))


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
        rows.append(_row("assistant", inert(stars_as_text(message.reasoning)),
                         metadata={"title": "Reasoning", "status": status}))
    for call in message.tool_calls:
        title = f"Tool call: {_tool_name(call.name) or 'unnamed'}"
        rows.append(_row("assistant", _code_block(_pretty_json(call.arguments), "json"),
                         metadata={"title": title, "status": "done"}))
    if message.sources:
        listing = "\n".join(
            f"- [{s.number}] **{s.document}**" + (f", page {s.page}" if s.page else "")
            + f" — {_snippet(s.snippet)}" for s in message.sources
        )
        rows.append(_row("assistant", inert(listing),
                         metadata={"title": "Sources", "status": "done"}))
    text = _close_open_fence(inert(message.content)) if not streaming else inert(message.content)
    rows.append(_row("assistant", text, _answer_bar(message, position)))
    return rows


def _answer_bar(message: Message, position: tuple[int, int]) -> Bar:
    facts: list[str] = []
    if message.model:
        facts.append(message.model)
    timings = message.timings
    if timings is not None:
        count = timings.generated_tokens
        facts.append(f"{count} token" + ("" if count == 1 else "s"))
        if timings.tokens_per_second is not None:
            facts.append(f"{timings.tokens_per_second:.1f} tok/s")
        if timings.ttft_ms is not None:
            facts.append(f"TTFT {timings.ttft_ms:.0f} ms")
    if message.status == "streaming":
        return _bar(message.id, "assistant", facts=facts, state="streaming", branch=position)
    state = message.status if message.status in ("stopped", "error") else ""
    bar = _bar(message.id, "assistant", facts=facts, state=state, branch=position,
               error=(message.error or "") if state == "error" else "", text=message.content,
               actions=("copy", "regen", "cont", "delete"))
    bar["details"] = details_markdown(message)  # how it was made (``chatui.details``)
    return bar


def _bar(
    message_id: str, role: str, *, facts: Sequence[str] = (), state: str = "",
    branch: tuple[int, int] = (1, 1), error: str = "", text: str = "",
    actions: Sequence[str] = (),
) -> Bar:
    """What the page draws under one message; every string in it is shown as text."""
    return {"id": message_id, "role": role, "facts": list(facts), "state": state,
            "branch": list(branch), "error": error, "text": text, "actions": list(actions)}


def _tool_name(name: str) -> str:
    """The model's name for a tool, for a block title (which is Markdown): as plain text."""
    flat = " ".join(name.split())
    return flat if _IDENTIFIER.fullmatch(flat) else plain_markdown(flat)


def _row(role: str, text: str, bar: Bar | None = None,
         metadata: dict[str, Any] | None = None) -> ChatRow:
    row: ChatRow = {"role": role, "content": {"type": "text", "text": text}}
    if metadata:
        row["metadata"] = metadata
    if bar is not None:
        row[BAR] = bar
    return row


def _snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    """A source's passage on one line (its own breaks would end the list), shortened."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"


def _close_open_fence(text: str) -> str:
    """Close a code fence left open (a stopped answer), so it ends where the answer does."""
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
