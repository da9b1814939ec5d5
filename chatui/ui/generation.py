"""The UI actions that stream an answer: send, edit, regenerate, continue, retry; and Stop.

Like ``handlers``, plain functions over the chat service that yield ``Screen``s:

- a first Screen (the question shown, Stop visible) within ``FIRST_SCREEN_WAIT``,
  with the first tokens if they came by then; the request starts at once
  (``pump.Pump`` runs the service's generation in a thread);
- then at most one Screen per ``FRAME_INTERVAL`` while tokens arrive (the first
  token at once): a long conversation is rendered once per frame, and what is
  above the answer only once per answer;
- always a last Screen rendered from the store, with the error (if any) told
  in words: a failed answer with no text is gone, a partial one is marked.

Closing a generator here (Gradio does when the page goes away) stops the
service's generation, which ends the upstream request and keeps the partial
answer as "stopped".

``address`` is where the browser's request came from (``wiring`` reads it from
``gr.Request``); the service counts an anonymous visitor's answers against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from chatui.errors import ChatError, ConversationBusy, InvalidRequest, LimitExceeded
from chatui.service import ChatService, Progress
from chatui.ui import handlers
from chatui.ui.pump import Pump
from chatui.ui.render import (
    RenderedChat,
    pending_rows,
    render_conversation,
    render_message,
    render_path,
    strip_footer,
)
from chatui.ui.screen import Screen, View, describe_error, settings_from_form, show

FRAME_INTERVAL = 0.05  # seconds between streamed screen updates
FIRST_SCREEN_WAIT = 0.1  # show the question at once, unless the first token is this close
STOP_GRACE = 1.0  # how long Stop waits for a generation that is just starting

Start = Callable[[], Iterator[Progress]]


def send(
    service: ChatService, owner: str, view: View, text: str, form: Sequence[Any],
    address: str | None = None,
) -> Iterator[Screen]:
    """Add the user's message and stream the answer; a new chat is created first."""
    if not text.strip():
        yield Screen(view=view, notice="Type a message first.")
        return
    try:
        conversation = handlers.current(service, owner, view)
        if conversation is None:
            settings = settings_from_form(form, handlers.fresh_settings(service, None))
            conversation = service.create(owner, settings=settings)
        else:
            wanted = settings_from_form(form, conversation.settings)
            if wanted != conversation.settings:
                conversation = service.update_settings(conversation.id, wanted, owner)
    except ChatError as error:
        yield Screen(view=view, notice=describe_error(error))
        return
    except ValueError as error:  # a setting that is not a number
        yield Screen(view=view, notice=f"A setting is not valid: {error}")
        return
    cid = conversation.id
    stored = conversation
    yield from _generate(
        service, owner, replace(view, conversation_id=cid),
        lambda: render_conversation(stored, image_hosts=view.image_hosts) + pending_rows(text),
        lambda: service.send(cid, text, owner=owner, address=address), text,
    )


def edit(
    service: ChatService, owner: str, view: View, index: int | tuple[int, int], text: str,
    address: str | None = None,
) -> Iterator[Screen]:
    """A new version of the user message at chat row ``index``, with a fresh answer."""
    message_id = _message_at(view, index)
    cid = view.conversation_id
    if cid is None or not message_id:
        yield Screen(view=view, notice="That message cannot be edited.")
        return
    text = strip_footer(text)
    yield from _generate(
        service, owner, view, None,
        lambda: service.edit(cid, message_id, text, owner=owner, address=address),
    )


def regenerate(
    service: ChatService, owner: str, view: View, message_id: str, model: str | None,
    address: str | None = None,
) -> Iterator[Screen]:
    """A new answer beside ``message_id`` (with ``model`` when given); the old one stays."""
    cid = view.conversation_id
    if cid is None:
        return
    yield from _generate(
        service, owner, view, None,
        lambda: service.regenerate(cid, message_id, owner=owner, model=model or None,
                                   address=address),
    )


def continue_answer(
    service: ChatService, owner: str, view: View, message_id: str, address: str | None = None,
) -> Iterator[Screen]:
    """More text at the end of the answer ``message_id``, in place."""
    cid = view.conversation_id
    if cid is None:
        return
    yield from _generate(
        service, owner, view, None,
        lambda: service.continue_answer(cid, message_id, owner=owner, address=address),
    )


def answer(
    service: ChatService, owner: str, view: View, message_id: str, model: str | None,
    address: str | None = None,
) -> Iterator[Screen]:
    """Answer a user message whose answer failed (the footer's Retry on such a question)."""
    cid = view.conversation_id
    if cid is None:
        return
    yield from _generate(
        service, owner, view, None,
        lambda: service.answer(cid, message_id, owner=owner, model=model or None,
                               address=address),
    )


def act(
    service: ChatService, owner: str, view: View, value: str | None, model: str | None,
    address: str | None = None,
) -> Iterator[Screen]:
    """Run a footer button's action (see ``render``): branch steps, regenerate, continue."""
    parsed = handlers.parse_action(value)
    if parsed is None:
        return
    action, message_id = parsed
    if action in ("prev", "next"):
        yield handlers.step(service, owner, view, message_id, -1 if action == "prev" else 1)
    elif action == "regen":
        yield from regenerate(service, owner, view, message_id, model, address)
    elif action == "cont":
        yield from continue_answer(service, owner, view, message_id, address)
    else:
        yield from answer(service, owner, view, message_id, model, address)


def stop(service: ChatService, view: View, grace: float = STOP_GRACE) -> bool:
    """Stop the open chat's generation; True if one was stopped.

    Stop is visible from the first screen of a generation, a moment before the
    service has registered it; so while the view says one is running, keep
    trying for ``grace`` seconds.
    """
    if view.conversation_id is None:
        return False
    deadline = time.monotonic() + grace
    while not service.stop(view.conversation_id):
        if not view.generating or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _message_at(view: View, index: Any) -> str:
    position = index[0] if isinstance(index, (list, tuple)) else index
    if not isinstance(position, int) or not 0 <= position < len(view.message_ids):
        return ""
    return view.message_ids[position]


def _generate(
    service: ChatService, owner: str, view: View, waiting: Callable[[], RenderedChat] | None,
    start: Start, typed: str | None = None,
) -> Iterator[Screen]:
    """Drive one generation: a first screen, paced frames, a final screen from the store.

    ``waiting`` renders what to show if the first token is slow (the question
    and a waiting answer); it is not rendered at all when the token is quick.
    """
    running = replace(view, generating=True)
    cid = view.conversation_id
    assert cid is not None
    pump = Pump(start, stop=lambda: service.stop(cid))  # the request starts now
    first = True  # the first screen also shows Stop and clears the message box
    notice, restore = "", None
    try:
        prefix: RenderedChat | None = None
        for progress in pump.steps(FRAME_INTERVAL, quiet_after=FIRST_SCREEN_WAIT):
            if progress is None:
                frame = waiting() if waiting else None
            else:
                if prefix is None:  # what is above the answer does not change while it streams
                    prefix = render_path(progress.conversation, progress.path()[:-1],
                                         streaming=True, image_hosts=view.image_hosts)
                frame = prefix + render_message(progress.conversation, progress.message,
                                                image_hosts=view.image_hosts)
            yield Screen(
                view=replace(running, message_ids=frame.message_ids) if frame else running,
                chat=frame.rows if frame else None, streaming_frame=not first,
                notice="" if first else None, input_text="" if first and typed else None,
            )
            first = False
    except ChatError as error:
        notice = describe_error(error)
        if isinstance(error, (ConversationBusy, InvalidRequest, LimitExceeded)):
            restore = typed  # nothing was stored: give the text back
    finally:
        pump.cancel()  # only if still running: the page went away, which is a Stop
    try:
        conversation = service.conversation(cid, owner)
    except ChatError as error:
        yield show(service, owner, view, None, notice or describe_error(error))
        return
    cleared = "" if typed and first else None  # no screen came before: clear the box now
    yield show(service, owner, view, conversation, notice,
               input_text=restore if restore is not None else cleared)
