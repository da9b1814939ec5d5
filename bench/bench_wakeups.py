"""What handing a token from the stream loop to its reader on the server's loop costs.

``--streams`` answers publish one step each per turn of the stream loop
(``chatui.streamloop``, as it reads that many model-server streams at once),
``--turns`` times, 1 ms apart; on another loop (in the main thread, as uvicorn's
is) one ``Answer.atake`` reader per answer takes them. Reported: the process's
CPU time per step, with the wake-ups gathered per turn of the stream loop
(``chatui.wakeups``, what chatui does) and, as the baseline of the same run,
handed over one by one (one ``call_soon_threadsafe`` per step, as before).
Alternated, ``--runs`` of each; the machine may be shared with other work.

    .venv/bin/python bench/bench_wakeups.py [--streams 50] [--turns 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatui import streamloop, wakeups
from chatui.answer import Answer, Progress
from chatui.tree import make_message, new_conversation


async def _read(answer: Answer) -> int:
    steps_taken = 0
    while True:
        steps, ended = await answer.atake(30)
        steps_taken += len(steps)
        if ended:
            return steps_taken


def measure(streams: int, turns: int) -> float:
    """Microseconds of CPU per step, both loops together."""
    answers = [Answer(f"chat{number}") for number in range(streams)]
    step = Progress(new_conversation(), make_message("assistant", "x", None), content_delta="x")

    async def publish() -> None:
        for _ in range(turns):
            for answer in answers:
                answer.publish(step)
            await asyncio.sleep(0.001)
        for answer in answers:
            answer.end()

    async def main() -> tuple[float, int]:
        readers = [asyncio.ensure_future(_read(answer)) for answer in answers]
        await asyncio.sleep(0.01)  # every reader waits
        start = time.process_time()
        published = asyncio.run_coroutine_threadsafe(publish(), streamloop.stream_loop())
        taken = sum(await asyncio.gather(*readers))
        published.result()
        return time.process_time() - start, taken

    cpu, taken = asyncio.run(main())
    assert taken == streams * turns, taken
    return cpu / taken * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    gathered, one_by_one = [], []
    for _ in range(args.runs):
        gathered.append(measure(args.streams, args.turns))
        with mock.patch.object(wakeups.streamloop, "on_stream_loop", lambda: False):
            one_by_one.append(measure(args.streams, args.turns))
    print(f"{args.streams} streams x {args.turns} steps, CPU per step (both loops), "
          f"median of {args.runs} (range):")
    for label, values in [("gathered per turn (chatui)", gathered),
                          ("one hand-off per step (before)", one_by_one)]:
        print(f"  {label:<32}{statistics.median(values):6.1f} us   "
              f"({min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
