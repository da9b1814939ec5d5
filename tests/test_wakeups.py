"""chatui.wakeups: readers on the server's loop woken once per turn of the stream loop."""

from __future__ import annotations

import asyncio
import threading

from chatui import streamloop
from chatui.answer import Answer, Progress
from chatui.tree import make_message, new_conversation
from tests.polling import PATIENCE

READERS = 20


def step(text: str) -> Progress:
    return Progress(new_conversation(), make_message("assistant", text, None),
                    content_delta=text)


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the hand-offs other threads make to it."""

    def __init__(self) -> None:
        super().__init__()
        self.handed_over = 0

    def call_soon_threadsafe(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.handed_over += 1
        return super().call_soon_threadsafe(*args, **kwargs)


def read_all(answers: list[Answer], publish: threading.Thread) -> tuple[list[str], int]:
    """Every answer's first take, each awaited on one loop while ``publish`` runs;
    and how many times that loop was woken from outside."""
    loop = CountingLoop()

    async def readers() -> list[str]:
        takes = [asyncio.ensure_future(answer.atake(PATIENCE)) for answer in answers]
        await asyncio.sleep(0.05)  # every reader waits
        loop.handed_over = 0
        publish.start()
        got = await asyncio.gather(*takes)
        return [steps[0].content_delta for steps, _ in got]

    try:
        return loop.run_until_complete(readers()), loop.handed_over
    finally:
        loop.close()


def test_steps_published_in_one_turn_of_the_stream_loop_wake_the_reader_loop_once() -> None:
    answers = [Answer(f"chat{number}") for number in range(READERS)]

    async def one_turn() -> None:  # as the stream loop reads 20 streams' tokens at once
        for number, answer in enumerate(answers):
            answer.publish(step(f"token {number}"))

    publish = threading.Thread(target=streamloop.run, args=(one_turn(),))
    texts, handed_over = read_all(answers, publish)

    assert texts == [f"token {number}" for number in range(READERS)]
    assert handed_over == 1  # one per reader (20) before the wake-ups were gathered


def test_steps_published_from_a_plain_thread_wake_their_readers_at_once() -> None:
    answers = [Answer(f"chat{number}") for number in range(READERS)]
    published = threading.Event()

    def from_a_thread() -> None:  # a runner's thread: no loop turn to wait for
        for number, answer in enumerate(answers):
            answer.publish(step(f"token {number}"))
        published.set()

    texts, handed_over = read_all(answers, threading.Thread(target=from_a_thread))

    assert published.is_set()
    assert texts == [f"token {number}" for number in range(READERS)]
    assert handed_over == READERS
