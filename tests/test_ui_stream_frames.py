"""A per-token frame carries what changed: the chat's text, not the bars of every message.

The bars' JSON (``ui.actions``) holds each message's text (for Copy): sent on
every frame of a 200-message chat it re-sent the whole chat's text per token and
made the page redraw every bar. While the rows stay the same it is sent once.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatui import tree
from chatui.ui.render import render_conversation
from chatui.ui.screen import Screen, View
from chatui.ui.wiring import updates

BARS = -2  # the bars' place in ``wiring._outputs`` (then the model picker)


def _chat(answer: str) -> tuple[tree.Conversation, Any]:
    conversation = tree.new_conversation("Long", tree.Settings())
    parent = None
    for number in range(20):
        role: tree.Role = "user" if number % 2 == 0 else "assistant"
        message = tree.make_message(role, f"message {number}", parent)
        conversation = tree.add_message(conversation, message)
        parent = message.id
    streaming = tree.make_message("assistant", answer, parent, status="streaming")
    return conversation, render_conversation(tree.add_message(conversation, streaming))


def _frame(answer: str, before: View | None) -> tuple[View, tuple[Any, ...]]:
    _, rendered = _chat(answer)
    view = View(conversation_id="c", message_ids=rendered.message_ids, generating=True)
    return view, updates(Screen(view=view, chat=rendered.rows, streaming_frame=True), before)


def test_a_frame_with_the_same_rows_sends_no_bars() -> None:
    first_view, first = _frame("t0", None)
    assert isinstance(first[BARS], str) and "message 3" in first[BARS]  # the first frame has them
    same_ids = View(conversation_id="c", message_ids=first_view.message_ids, generating=True)
    _, rendered = _chat("t0 t1 t2")
    later = updates(Screen(view=same_ids, chat=rendered.rows, streaming_frame=True), first_view)
    assert later[BARS] == gr.skip()
    assert "t2" in str(later[2])  # the chat itself still carries the new text


def test_a_frame_whose_rows_change_sends_the_bars() -> None:
    first_view, _ = _frame("t0", None)
    grown = View(conversation_id="c", message_ids=(*first_view.message_ids, "x"), generating=True)
    _, rendered = _chat("t0")
    frame = updates(Screen(view=grown, chat=rendered.rows, streaming_frame=True), first_view)
    assert isinstance(frame[BARS], str)


def test_an_answer_streams_into_few_outputs_and_one_event_follows_the_view(
    fake_backend: Any, tmp_path: Any,
) -> None:
    """Gradio builds a throwaway component for each output a frame skips, and the page
    updates the loading status of every component per event: an answer's events list only
    what a frame can change (not the settings form), and the documents list, the gauge and
    the branch map follow the View in one event, not three. Gradio's analytics table is
    not summed up after every event."""
    from chatui.ui import ANALYTICS_EVERY, build_ui
    from tests.apiharness import open_test_runtime

    with open_test_runtime(fake_backend.base_url, tmp_path / "data") as runtime:
        blocks = build_ui(runtime)
    config = blocks.get_config_file()
    dependencies = config["dependencies"]
    by_name = {dependency["api_name"]: dependency for dependency in dependencies
               if dependency.get("api_name")}
    answer_outputs = set(by_name["send"]["outputs"])
    page_outputs = set(by_name["new_chat"]["outputs"])
    assert answer_outputs < page_outputs and len(answer_outputs) <= len(page_outputs) // 2
    assert set(by_name["act"]["outputs"]) == answer_outputs
    view = by_name["send"]["inputs"][0]
    follows = [dependency for dependency in dependencies
               if [view, "change"] in [list(target) for target in dependency["targets"]]]
    assert len(follows) == 1
    assert blocks._queue.ANAYLTICS_CACHE_FREQUENCY >= ANALYTICS_EVERY  # Gradio's name for it
