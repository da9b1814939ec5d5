"""One event per page that never ends, so Gradio keeps the page's stream open.

Gradio's page receives every event's messages over one stream (``/queue/data``)
that the server closes as soon as the page has no event pending, and that the
page opens again when it sends the next event. When an event ends just as the
next one is sent (the gauge's refresh of the draft finishing as Enter is
pressed), the page can take the closing stream for open: the new event is then
neither run nor answered until some later queued event opens a stream. The
sidebar's and the status line's timers run outside the queue, so on an idle
page that is the user's next action. With two busy CPUs, 1 Send in 5 showed
its first words after 1.2-2.4 s this way (the stream reopened 0.5 s after the
Send, by the gauge's timer). Without this event, three questions opened 17
streams; with it, none after the first.

It yields nothing every ``TICK_SECONDS``: that is when Gradio notices that its
page went away (its heartbeat connection dropped) and stops it. Each held event
is one of the queue's running jobs for as long as its page is open, so
``server.py`` gives the queue room for ``RUNNING_JOBS`` of them (Gradio's
default is 40 for pages and events together).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import gradio as gr

TICK_SECONDS = 10.0
# Open pages and running events together; threads stay Gradio's own limit. Gradio scans
# the job list every 1 ms while events wait (its sleep_when_free), so not more: 1,000 slots
# cost it 0.03 ms a scan.
RUNNING_JOBS = 1_000


async def _held() -> AsyncIterator[None]:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        yield None


def hold_stream(blocks: gr.Blocks) -> None:
    """Start the held event when a page loads."""
    blocks.load(_held, None, None, concurrency_limit=None, show_progress="hidden",
                api_visibility="private")


def make_room(blocks: gr.Blocks) -> None:
    """Let the queue run ``RUNNING_JOBS`` events at once (after ``blocks.queue()``, before
    the app starts): Gradio sizes it from ``max_threads``, which also caps its threads."""
    blocks._queue.max_thread_count = RUNNING_JOBS
