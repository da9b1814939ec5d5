"""The controls under each message: what a click sends, and what it does.

The page draws each message's bar (``render`` makes it, ``bridge`` draws it)
from the JSON the hidden ``bars`` component holds (``bars_value``). A click on
one of its buttons sets the bridge's value to

    "<action> <message id> <nonce>[ <model>]"

and fires the bridge's ``click`` (quick: branch steps, delete) or ``submit``
(an answer that streams: regenerate, continue, retry). Copy and Edit stay in
the browser (the clipboard; the Chatbot's own edit box). The value comes from
the page, so it is checked here like anything a client sends: a known action,
an id a message can have, a model name of bounded, printable text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import gradio as gr

from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.storage import is_safe_id
from chatui.ui import generation, handlers
from chatui.ui.bridge import bars_script
from chatui.ui.render import ChatRow, split_bars
from chatui.ui.screen import Screen, View, describe_error, show

QUICK = frozenset({"prev", "next", "delete"})  # the bridge's click event; the rest stream
STREAMING = frozenset({"regen", "cont", "answer", "again"})
MODEL_CHARS = 200


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    message_id: str
    model: str | None = None  # regenerate/retry with this model; None: the chat's


def build_bars() -> gr.HTML:
    """The hidden component whose value is the bars' JSON (``split_bars``); the page's
    script draws them (``bridge.bars_script``). Its template never shows the value."""
    return gr.HTML('{"rows": []}', html_template="<span hidden></span>",
                   js_on_load=bars_script(), elem_id="chatui-bars")


def bars_value(rows: Sequence[ChatRow], *, busy: bool, models: Sequence[str] | None = None,
               model: str | None = None) -> tuple[list[ChatRow], str]:
    """The Chatbot's rows and the bars' JSON: ``busy`` while an answer streams (only Copy
    works then); the models to regenerate with and the chat's model, when known."""
    page: dict[str, object] = {"busy": busy}
    if models is not None:
        page["models"] = list(models)
    if model is not None:
        page["model"] = model
    return split_bars(rows, **page)


def parse(value: str | None) -> Action | None:
    """The action a bar's button sent; None for anything else."""
    parts = (value or "").split(" ", 3)
    if len(parts) < 3 or parts[0] not in QUICK | STREAMING or not is_safe_id(parts[1]):
        return None
    model = " ".join(parts[3].split()) if len(parts) == 4 else ""
    if len(model) > MODEL_CHARS or not model.isprintable():
        return None
    return Action(parts[0], parts[1], model or None)


def run(service: ChatService, owner: str, view: View, value: str | None,
        address: str | None = None) -> Iterator[Screen]:
    """Do what a bar's button asked; nothing for a value that is not an action."""
    action = parse(value)
    if action is None:
        return
    kind, message_id = action.kind, action.message_id
    if kind in ("prev", "next"):
        yield handlers.step(service, owner, view, message_id, -1 if kind == "prev" else 1)
    elif kind == "delete":
        yield delete_branch(service, owner, view, message_id)
    elif kind == "regen":
        yield from generation.regenerate(service, owner, view, message_id, action.model, address)
    elif kind == "cont":
        yield from generation.continue_answer(service, owner, view, message_id, address)
    elif kind == "again":
        yield from _again(service, owner, view, message_id, address)
    else:
        yield from generation.answer(service, owner, view, message_id, action.model, address)


def _again(service: ChatService, owner: str, view: View, message_id: str,
           address: str | None) -> Iterator[Screen]:
    """Answer again beside ``message_id`` as it was made (its model, settings and seed)."""
    cid = view.conversation_id
    if cid is None:
        return
    yield from generation._generate(  # one driver for every streamed answer
        service, owner, view, None,
        lambda: service.start_reproduce(cid, message_id, owner=owner, address=address))


def delete_branch(service: ChatService, owner: str, view: View, message_id: str) -> Screen:
    """Delete a message and everything below it (the page asked first); its siblings stay."""
    if view.conversation_id is None:
        return Screen(view=view)
    try:
        conversation = service.delete_message(view.conversation_id, message_id, owner)
    except ChatError as error:
        return Screen(view=view, notice=describe_error(error))
    return show(service, owner, view, conversation)
