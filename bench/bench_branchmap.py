"""The branch map's cost on big trees, beside the cost the page already pays for the chat.

For trees of B branches of L messages each (every branch leaves the first
question), this times laying out the map and drawing its HTML (what opening the
"Branch map" fold, or a change while it is open, costs on the server) and, as
the baseline from the same run, ``render_conversation`` of the same chat (what
every opening of a chat costs already). Also the HTML's size and how many rows
it shows unfolded. Medians of N runs; the machine may be shared with other work.

    .venv/bin/python bench/bench_branchmap.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from chatui import branchmap, tree
from chatui.branchmap import Run
from chatui.tree import Conversation, Role
from chatui.ui.branchmap import map_html
from chatui.ui.render import render_conversation

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 8


def build(branches: int, length: int) -> Conversation:
    conversation = tree.new_conversation("bench", now=0.0)
    root = tree.make_message("user", "The first question " + WORDS, None, now=1.0)
    conversation = tree.add_message(conversation, root)
    stamp = 2.0
    for _ in range(branches):
        parent = root.id
        for step in range(length):
            role: Role = "assistant" if step % 2 == 0 else "user"
            message = tree.make_message(role, f"{role} {step} {WORDS}", parent, now=stamp,
                                        model="bench-model" if role == "assistant" else None)
            conversation = tree.add_message(conversation, message)
            parent, stamp = message.id, stamp + 1.0
    return conversation


def draw(conversation: Conversation) -> str:
    return map_html(branchmap.branch_map(conversation))


def median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    print(f"{'tree':>22} {'map+HTML ms':>12} {'chat render ms':>15} {'HTML KiB':>9} "
          f"{'rows shown':>11}")
    for branches, length in ((2, 10), (20, 10), (20, 50), (100, 20)):
        conversation = build(branches, length)
        mapped = branchmap.branch_map(conversation)
        drawn = map_html(mapped)
        shown = sum(1 for row in branchmap.rows(mapped) if not isinstance(row, Run))
        ours = median_ms(partial(draw, conversation), runs)
        baseline = median_ms(partial(render_conversation, conversation), runs)
        label = f"{len(conversation.messages)} msgs/{branches} branches"
        print(f"{label:>22} {ours:12.2f} {baseline:15.2f} {len(drawn) / 1024:9.1f} "
              f"{shown:>11}")


if __name__ == "__main__":
    main()
