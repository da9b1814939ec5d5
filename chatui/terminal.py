"""``chatui chat``: a plain terminal chat over the chat service, reading stdin.

Each line is sent as a message and the answer streams to stdout. Commands:
``/new`` starts a new conversation, ``/regen`` regenerates the last answer,
``/quit`` (or end of input) leaves. Errors are printed, never a traceback.
Ctrl-C while an answer streams stops it (the partial answer is kept, marked
stopped). A thin reader of ``ChatService``'s ``Answer``; the user is "local".
"""

from __future__ import annotations

import sys
from typing import TextIO

from chatui import tree
from chatui.answer import Answer
from chatui.errors import ChatError
from chatui.service import ChatService

OWNER = "local"


def _print_stream(answer: Answer, out: TextIO) -> None:
    for step in answer.events():
        if step.content_delta:
            out.write(step.content_delta)
            out.flush()
        if step.done and step.message.timings and step.message.timings.tokens_per_second:
            timings = step.message.timings
            out.write(f"\n[{step.message.model} · {timings.generated_tokens} tokens · "
                      f"{timings.tokens_per_second:.1f} tok/s]")
    out.write("\n")


def run_terminal_chat(
    service: ChatService, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout
) -> int:
    conversation = service.create(OWNER)
    out.write(f"Chatting with {service.default_model or 'the server'}. /new, /regen, /quit.\n")
    for line in stdin:
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        try:
            if text == "/new":
                conversation = service.create(OWNER)
                out.write("New conversation.\n")
                continue
            if text == "/regen":
                current = service.conversation(conversation.id, OWNER)
                last = tree.active_path(current)[-1:] if current.current_leaf_id else []
                if not last or last[0].role != "assistant":
                    out.write("There is no answer to regenerate.\n")
                    continue
                _print_stream(service.start_regenerate(conversation.id, last[0].id,
                                                       owner=OWNER), out)
                continue
            _print_stream(service.start_send(conversation.id, text, owner=OWNER), out)
        except ChatError as error:
            out.write(f"\nError: {error}\n")
        except KeyboardInterrupt:  # leaving events() stopped the answer
            out.write("\n[stopped]\n")
    return 0
