"""Chats keep streaming when the page leaves them: the Gradio side of re-attaching.

A generation belongs to the server (``chatui.answer``): the streaming events
of a page (``generation``) only read it. This module wires the two things the
page needs around that:

- leaving a chat (opening another one, New chat) cancels this page's streaming
  events: Gradio closes their generators, which only detaches their readers,
  so the answer goes on and is stored as it ends;
- opening a chat (a pick in the list, loading or reloading the page) follows
  its answer if one is being generated: the answer so far at once, then live
  (``generation.follow``), with Stop shown; nothing happens for a quiet chat.

``wire_live`` is called by ``wiring.wire`` with the events that open a chat
(after which to follow) and those that leave it (which cancel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr

from chatui.service import ChatService
from chatui.ui import generation
from chatui.ui.screen import Screen, View


def wire_live(
    service: ChatService,
    view: gr.State,
    outputs: list[Any],
    shown: Callable[[Iterator[Screen], View], Iterator[tuple[Any, ...]]],
    owner_of: Callable[[gr.Request | None], str],
    *,
    opened: Sequence[Any],
    leaving: Sequence[Any],
    streams: Sequence[Any],
) -> Any:
    """Follow the open chat's answer after each of ``opened`` (dependencies); cancel
    ``streams`` and the follows on each of ``leaving`` (event triggers). Returns the
    follow events' dependency list."""

    def on_follow(request: gr.Request, current: View) -> Iterator[tuple[Any, ...]]:
        yield from shown(generation.follow(service, owner_of(request), current), current)

    options: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden",
                               "api_visibility": "private"}
    follows = [event.then(on_follow, [view], outputs, **options) for event in opened]
    gr.on(list(leaving), None, None, None, cancels=[*streams, *follows], queue=False,
          show_progress="hidden", api_visibility="private")
    return follows
