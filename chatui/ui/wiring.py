"""Events of the page -> handlers -> Gradio updates. The only place both meet.

Every handler's ``Screen`` goes through ``updates`` into the same list of
outputs (``_outputs``); a part the Screen leaves as ``None`` is ``gr.skip()``.
The events that stream an answer list fewer outputs (``_streamed_outputs``);
while it streams, only the chat (and the session's view) change.

Concurrency: every event that streams an answer shares the concurrency group
"answers", whose limit is the queue's default (``server.py`` sets it from
``--concurrency-limit``), so that many answers stream at once across all
users. Quick events (Stop, branch steps, opening a chat, ...) have no limit
and never wait behind the streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from chatui.documents import DocumentService
from chatui.service import ChatService
from chatui.ui import actions, generation, handlers
from chatui.ui.documents.wiring import wire_documents
from chatui.ui.branchmap import wire_branchmap
from chatui.ui.gauge import wire_gauge
from chatui.ui.header import model_choices, wire_header
from chatui.ui.held import hold_stream
from chatui.ui.layout import Page
from chatui.ui.live import wire_live
from chatui.ui.notice import notice_markdown
from chatui.ui.refresh import on_view_change
from chatui.ui.screen import FORM_FIELDS, Screen, View, settings_to_form
from chatui.ui.sidebar import list_update, wire_sidebar
from chatui.ui.status import status_line
from chatui.ui.transfer import wire_transfer

ANSWERS = "answers"


def session_owner(request: gr.Request | None) -> str:
    """Whose conversations this browser session sees (see ``chatui.users``).

    Gradio's user name: the login name with --auth, the signed anonymous id of
    ``chatui.visitors`` when browsers are kept apart; else the one local user.
    """
    username = request.username if request is not None else None
    return username or "local"


def session_address(request: gr.Request | None) -> str | None:
    """The network address this request came from (the client's, behind a trusted proxy)."""
    client = getattr(request, "client", None) if request is not None else None
    host = getattr(client, "host", None)
    return str(host) if host else None


def _outputs(page: Page) -> list[Any]:
    return [
        page.view, page.remembered, page.chatbot, page.conversations, page.title, page.notice,
        page.message, page.send, page.stop, page.new_chat, page.delete, page.rename, *page.form,
        page.answering_marks, page.bars, page.model_picker,
    ]


def _streamed_outputs(page: Page) -> list[Any]:
    """The parts an answer's frames can change: a subset of ``_outputs``.

    Gradio builds a throwaway component for every output a frame skips, so a
    streaming event lists only these (the settings form, the model picker and
    New chat never change while an answer streams): Gradio's work per frame is
    halved (3.9 vs 7.8 ms for a new chat, 5.7 vs 15.6 ms for 200 messages).
    """
    return [
        page.view, page.remembered, page.chatbot, page.conversations, page.title, page.notice,
        page.message, page.send, page.stop, page.delete, page.rename, page.answering_marks,
        page.bars,
    ]


def updates(screen: Screen, before: View | None = None) -> tuple[Any, ...]:
    """One value per ``_outputs`` entry for ``screen``."""
    skip = gr.skip()
    view = screen.view
    chat: Any = skip
    bars: Any = skip  # what shows under each message, beside its text (``ui.actions``)
    model = screen.settings.model if screen.settings is not None else None
    if screen.chat is not None:
        chat, bars = actions.bars_value(screen.chat, busy=view.generating,
                                        models=screen.models, model=model)
    view_out = skip if view == before else view
    if screen.streaming_frame:
        if before is not None and view.message_ids == before.message_ids:
            bars = skip  # the same rows: a per-token frame carries the chat's new text alone
        return (view_out, skip, chat) + (skip,) * (10 + len(FORM_FIELDS)) + (bars, skip)
    idle = not view.generating
    listing, marks = list_update(screen.conversations, view.conversation_id)
    # Told once, here (no toast); text from outside too (the model server's error): as text
    notice = skip if screen.notice is None else notice_markdown(screen.notice)
    return (
        view_out,
        view.conversation_id if screen.chat is not None else skip,
        chat,
        listing,
        skip if screen.title is None else screen.title,
        notice,
        skip if screen.input_text is None else screen.input_text,
        gr.update(visible=idle),
        gr.update(visible=not idle),
        gr.update(interactive=True),  # New chat: the answer goes on meanwhile
        gr.update(interactive=idle),
        gr.update(interactive=idle),
        *_form_updates(screen),
        marks,
        bars,
        model_choices(screen.models, model) if screen.settings is not None else skip,
    )


def _form_updates(screen: Screen) -> list[Any]:
    values = (settings_to_form(screen.settings) if screen.settings is not None
              else (gr.skip(),) * len(FORM_FIELDS))
    result = list(values)
    model_index = FORM_FIELDS.index("model")
    if screen.models is not None:
        model = screen.settings.model if screen.settings is not None else None
        choices = list(screen.models)
        if model and model not in choices:
            choices.append(model)
        result[model_index] = gr.update(choices=choices, value=model)
    return result


def wire(page: Page, service: ChatService, documents: DocumentService) -> None:
    outputs = _outputs(page)
    streamed = _streamed_outputs(page)
    picked = [next(i for i, part in enumerate(outputs) if part is wanted) for wanted in streamed]
    form = list(page.form)
    model = page.form[FORM_FIELDS.index("model")]

    def shown(screens: Iterator[Screen], before: View) -> Iterator[tuple[Any, ...]]:
        """The frames of an answer, for the ``streamed`` outputs."""
        empty = True
        for screen in screens:
            values = updates(screen, before)
            yield tuple(values[i] for i in picked)
            before = screen.view
            empty = False
        if empty:  # Gradio would send null to every output of a generator that yields nothing
            yield tuple(gr.skip() for _ in streamed)

    def on_load(request: gr.Request, remembered: str | None, view: View) -> tuple[Any, ...]:
        return updates(handlers.load(service, session_owner(request), remembered, view))

    def on_send(
        request: gr.Request, view: View, text: str, *values: Any
    ) -> Iterator[tuple[Any, ...]]:
        yield from shown(generation.send(service, session_owner(request), view, text, values,
                                         session_address(request)), view)

    def on_edit(request: gr.Request, data: gr.EditData, view: View) -> Iterator[tuple[Any, ...]]:
        text = data.value if isinstance(data.value, str) else str(data.value)
        yield from shown(generation.edit(service, session_owner(request), view, data.index, text,
                                         session_address(request)), view)

    def on_act(request: gr.Request, view: View, action: str) -> Iterator[tuple[Any, ...]]:
        yield from shown(actions.run(service, session_owner(request), view, action,
                                     session_address(request)), view)

    def on_stop(request: gr.Request, view: View) -> None:
        generation.stop(service, session_owner(request), view)

    def on_clear(request: gr.Request, view: View) -> tuple[Any, ...]:
        # The Chatbot's own Clear (hidden by the stylesheet) only empties the screen.
        return updates(handlers.refresh(service, session_owner(request), view), view)

    def on_new(request: gr.Request, view: View, picked: str | None) -> tuple[Any, ...]:
        return updates(handlers.new_chat(service, session_owner(request), view, picked), view)

    def on_search(request: gr.Request, view: View, text: str) -> tuple[Any, ...]:
        return updates(handlers.search(service, session_owner(request), view, text), view)

    def on_rename(request: gr.Request, view: View, title: str) -> tuple[Any, ...]:
        return updates(handlers.rename(service, session_owner(request), view, title), view)

    def on_delete(request: gr.Request, view: View) -> tuple[Any, ...]:
        return updates(handlers.delete(service, session_owner(request), view), view)

    def on_settings(request: gr.Request, view: View, *values: Any) -> tuple[Any, ...]:
        return updates(handlers.save_settings(service, session_owner(request), view, values), view)

    # Outside the queue: opening the page is quick and must work when the queue is full
    # (with --max-queue answers waiting, a queued load would be refused and the page broken).
    loaded = page.blocks.load(on_load, [page.remembered, page.view], outputs, queue=False,
                     api_visibility="private")
    hold_stream(page.blocks)
    answer_options: dict[str, Any] = {
        "outputs": streamed, "concurrency_id": ANSWERS, "show_progress": "hidden",
    }
    answered = [
        gr.on([page.send.click, page.message.submit], on_send, [page.view, page.message, *form],
              api_name="send", **answer_options),
        page.chatbot.edit(on_edit, [page.view], api_visibility="private", **answer_options),
        page.bridge.submit(on_act, [page.view, page.bridge], api_name="act",
                           **answer_options),
    ]
    # The model's status line: on load, every few seconds, and after each answer (or error).
    status: dict[str, Any] = {"queue": False, "show_progress": "hidden",
                              "api_visibility": "private"}
    gr.on([page.blocks.load, page.status_timer.tick], lambda: status_line(service), None,
          page.backend_status, **status)
    for event in answered:
        event.then(lambda: status_line(service), None, page.backend_status, **status)
    quick: dict[str, Any] = {"outputs": outputs, "concurrency_limit": None,
                             "show_progress": "hidden"}
    page.bridge.click(on_act, [page.view, page.bridge], api_name="step",
                      **(quick | {"outputs": streamed}))
    # Not queued: Stop must work while the queue is full (``--max-queue`` reached).
    page.stop.click(on_stop, [page.view], None, queue=False, api_name="stop",
                    show_progress="hidden")
    opened = wire_sidebar(page.conversations, page.answering_marks, page.sidebar_timer,
                          page.view, service, outputs=outputs, shown=updates,
                          owner_of=session_owner)
    page.chatbot.clear(on_clear, [page.view], api_visibility="private", **quick)
    page.new_chat.click(on_new, [page.view, model], api_name="new_chat", **quick)
    # .change, not .input: Gradio 6 fires no "input" when a key deletes text
    page.search.change(on_search, [page.view, page.search], trigger_mode="always_last",
                      api_name="search", **quick)
    gr.on([page.rename.click, page.title.submit], on_rename, [page.view, page.title],
          api_name="rename", **quick)
    page.delete.click(lambda: gr.update(visible=True), None, page.confirm_row,
                      concurrency_limit=None, api_visibility="private")
    page.cancel_delete.click(lambda: gr.update(visible=False), None, page.confirm_row,
                             concurrency_limit=None, api_visibility="private")
    page.confirm_delete.click(
        lambda: gr.update(visible=False), None, page.confirm_row, concurrency_limit=None,
        api_visibility="private",
    ).then(on_delete, [page.view], api_name="delete", **quick)
    rag = page.form[FORM_FIELDS.index("rag_enabled")]
    saves = [field.blur for field in page.form  # a Checkbox has no blur
             if field is not model and not isinstance(field, gr.Checkbox)]
    gr.on([*saves, model.input, rag.input], on_settings, [page.view, *form],
          api_name="save_settings", **quick)
    wire_header(page.model_picker, model, lambda picked: picked.then(
        on_settings, [page.view, *form], api_visibility="private", **quick))
    follows_view = [wire_documents(page, service, documents, outputs=outputs, shown=updates,
                                   owner_of=session_owner)]
    wire_transfer(page.transfer, page.view, service, documents.uploads, outputs=outputs,
                  shown=updates, owner_of=session_owner)
    follows_view.append(wire_gauge(page.gauge, page.view, page.message, service, session_owner,
                                   loaded))
    follows_view.append(wire_branchmap(page.branch_map, page.view, service, outputs=outputs,
                                       shown=updates, owner_of=session_owner, loaded=loaded))
    on_view_change(page.view, follows_view)
    wire_live(service, page.view, streamed, shown, session_owner, opened=[loaded, opened],
              leaving=[page.conversations.click, page.new_chat.click], streams=answered)
