"""The UI actions that stream an answer: send, edit, regenerate, continue, retry; and Stop.

Like ``handlers``, plain functions over the chat service that yield ``Screen``s:

- nothing at all if the service refuses to start (busy chat, a limit, the model
  down): a notice, the typed text given back, nothing stored, not even a new chat;
- a first Screen (the question shown, Stop visible) within ``FIRST_SCREEN_WAIT``,
  with the first tokens if they came by then; the request starts at once (the
  service's ``Answer`` runs it on its own thread; ``pacing.frames`` reads it);
- then at most one Screen per ``frame_interval`` (longer in a long chat) while
  tokens arrive (the first token at once, the last ones as they end): what is
  above the answer is rendered only once per answer;
- always a last Screen rendered from the store, with the error (if any) told
  in words: a failed answer with no text is gone, a partial one is marked.

A generation belongs to the server, not to the page: closing a generator here
(Gradio does when the page goes away, or when the user opens another chat)
only detaches its reader, and the answer goes on and is stored as it ends.
``follow`` shows it live again when its chat is opened (re-attach). Only Stop
(from any tab of the same owner) or deleting the chat stops an answer. Stop
acts at once: the answer is registered before its first screen.

``address`` is where the browser's request came from (``wiring`` reads it from
``gr.Request``); the service counts an anonymous visitor's answers against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from chatui.answer import Answer, Follower
from chatui.errors import ChatError
from chatui.service import ChatService
from chatui.ui import handlers
from chatui.ui.pacing import Reader, frames
from chatui.ui.render import (
    RenderedChat,
    pending_rows,
    render_conversation,
    render_message,
    render_path,
    strip_footer,
)
from chatui.ui.screen import Screen, View, describe_error, settings_from_form, show

FRAME_INTERVAL = 0.05  # seconds between streamed screen updates, in a short chat
FRAME_PER_ROW = 0.0005  # s more per message already shown: the page re-reads them all per frame
FRAME_INTERVAL_MAX = 0.25
FIRST_SCREEN_WAIT = 0.1  # show the question at once, unless the first token is this close
HEARTBEAT = 1.0  # s: an empty frame while the model is quiet, so a closed page lets go

Start = Callable[[], Answer]


def send(
    service: ChatService, owner: str, view: View, text: str, form: Sequence[Any],
    address: str | None = None,
) -> Iterator[Screen]:
    """Add the user's message and stream the answer; a new chat is stored with it, if admitted."""
    if not text.strip():
        yield Screen(view=view, notice="Type a message first.")
        return
    start: Start
    try:
        conversation = handlers.current(service, owner, view)
        if conversation is None:  # a new chat: stored with its first message, if admitted
            settings = settings_from_form(form, handlers.fresh_settings(service, None))
            start = partial(service.start_chat, text, owner=owner, settings=settings,
                            address=address)
        else:
            wanted = settings_from_form(form, conversation.settings)
            if wanted != conversation.settings:
                conversation = service.update_settings(conversation.id, wanted, owner)
            start = partial(service.start_send, conversation.id, text, owner=owner,
                            address=address)
    except ChatError as error:
        yield Screen(view=view, notice=describe_error(error))
        return
    except ValueError as error:  # a setting that is not a number
        yield Screen(view=view, notice=f"A setting is not valid: {error}")
        return
    stored = conversation
    yield from _generate(
        service, owner, view,
        lambda: render_conversation(stored, image_hosts=view.image_hosts) + pending_rows(text),
        start, text,
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
        lambda: service.start_edit(cid, message_id, text, owner=owner, address=address),
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
        lambda: service.start_regenerate(cid, message_id, owner=owner, model=model or None,
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
        lambda: service.start_continue(cid, message_id, owner=owner, address=address),
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
        lambda: service.start_retry(cid, message_id, owner=owner, model=model or None,
                                    address=address),
    )


def stop(service: ChatService, owner: str, view: View) -> bool:
    """Stop the open chat's answer; True if one was stopped.

    The answer is registered before its first screen (the service starts it
    eagerly), so a Stop shown on the page always finds it: no waiting here.
    """
    if view.conversation_id is None:
        return False
    try:
        return service.stop(view.conversation_id, owner)
    except ChatError:
        return False


def follow(service: ChatService, owner: str, view: View) -> Iterator[Screen]:
    """Show the open chat's answer live, if one is being generated (re-attach).

    Nothing at all when the chat is not answering. Else the answer so far at
    once (with Stop), then paced frames, then the stored chat. Closing this
    generator (the page went away, another chat was opened) only detaches.
    """
    if view.conversation_id is None:
        return
    try:
        follower = service.follow(view.conversation_id, owner)
    except ChatError:
        return
    if follower is None:
        return
    yield from _stream(service, owner, view, follower, None)


def frame_interval(rows: int) -> float:
    """Seconds between frames of an answer below ``rows`` messages.

    Gradio's page copies and diffs the whole chat for every frame, so a frame of
    a 200-message chat costs the browser several times one of a new chat; on a
    busy machine 20 of them a second fell behind the stream (the last words
    showed seconds late). Fewer frames for longer chats keep the page current.
    """
    return min(FRAME_INTERVAL + FRAME_PER_ROW * rows, FRAME_INTERVAL_MAX)


def _message_at(view: View, index: Any) -> str:
    position = index[0] if isinstance(index, (list, tuple)) else index
    if not isinstance(position, int) or not 0 <= position < len(view.message_ids):
        return ""
    return view.message_ids[position]


def _generate(
    service: ChatService, owner: str, view: View, waiting: Callable[[], RenderedChat] | None,
    start: Start, typed: str | None = None,
) -> Iterator[Screen]:
    """Drive one answer: start it, a first screen, paced frames, a final screen from the store.

    ``start`` raises at once if the service refuses: then nothing was stored and
    the typed text is given back. ``waiting`` renders what to show if the first
    token is slow (the question and a waiting answer); it is not rendered at all
    when the token is quick.
    """
    try:
        answer = start()  # checked, admitted and claimed; the request is on its way
    except ChatError as error:  # refused: nothing was stored, the typed text comes back
        yield _refused(service, owner, view, describe_error(error), typed)
        return
    yield from _stream(service, owner, view, answer, waiting, typed)


def _stream(
    service: ChatService, owner: str, view: View, reader: Answer | Follower,
    waiting: Callable[[], RenderedChat] | None, typed: str | None = None,
) -> Iterator[Screen]:
    """Screens of a running answer read by ``reader``; a final one from the store.

    However it ends (the answer's end, the generator closed), the reader only
    detaches: the answer itself is stopped by Stop or a delete alone.
    """
    cid = reader.conversation_id
    view = replace(view, conversation_id=cid)
    running = replace(view, generating=True)
    first = True  # the first screen also shows Stop and clears the message box
    notice = ""
    paced: Reader = reader
    try:
        prefix: RenderedChat | None = None
        for progress in frames(paced, frame_interval(len(view.message_ids)),
                               quiet_after=FIRST_SCREEN_WAIT, heartbeat=HEARTBEAT):
            if progress is None:  # quiet: the question and a waiting answer, once; else nothing
                frame = waiting() if waiting and first else None
            else:
                if prefix is None:  # what is above the answer does not change while it streams
                    prefix = render_path(progress.conversation, progress.path()[:-1],
                                         streaming=True, image_hosts=view.image_hosts)
                frame = prefix + render_message(progress.conversation, progress.message,
                                                image_hosts=view.image_hosts)
            if frame:
                running = replace(running, message_ids=frame.message_ids)
            yield Screen(
                view=running, chat=frame.rows if frame else None, streaming_frame=not first,
                notice="" if first else None, input_text="" if first and typed else None,
            )
            first = False
    except ChatError as error:
        notice = describe_error(error)
    finally:  # the page went away, or another chat was opened: the answer goes on
        if isinstance(reader, Follower):
            reader.close()
        else:
            reader.detach()
    try:
        conversation = service.conversation(cid, owner)
    except ChatError as error:
        yield show(service, owner, view, None, notice or describe_error(error))
        return
    cleared = "" if typed and first else None  # no screen came before: clear the box now
    yield show(service, owner, view, conversation, notice, input_text=cleared)


def _refused(service: ChatService, owner: str, view: View, notice: str, typed: str | None
             ) -> Screen:
    if view.conversation_id is None:
        return Screen(view=view, notice=notice, input_text=typed)
    try:
        conversation = service.conversation(view.conversation_id, owner)
    except ChatError as error:
        return show(service, owner, view, None, describe_error(error))
    return show(service, owner, view, conversation, notice, input_text=typed)
