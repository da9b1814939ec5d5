"""How long one message takes to save, and the store to open, as the store grows.

    .venv/bin/python bench/bench_store.py                    # 10, 1,000, 10,000
    .venv/bin/python bench/bench_store.py --sizes 10 100000 --samples 500

One folder is filled up to each size in turn with conversations of 10 messages
(written by the store itself). At each size it times:

- open: ``FileStore(folder)``, which reads every file (the files were
  just written, so they are in the page cache: a cold disk is slower);
- save: appending one message to a random conversation, i.e. ``save`` of an
  11-message conversation, p50/p95, with fsync and with fsync switched off (not
  durable; it shows how much of a save is the disk flush);
- load and search, for scale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatui.filestore import FileStore  # noqa: E402
from chatui.tree import Conversation, add_message, make_message, new_conversation  # noqa: E402

MESSAGES_PER_CONVERSATION = 10
TEXT = "A sentence of a plausible length for a chat message, give or take. " * 4


def sample_conversation(number: int) -> Conversation:
    conversation = new_conversation(f"Conversation {number}")
    for turn in range(MESSAGES_PER_CONVERSATION):
        role = "user" if turn % 2 == 0 else "assistant"
        text = f"{TEXT} (conversation {number}, turn {turn})"
        conversation = add_message(
            conversation, make_message(role, text, conversation.current_leaf_id)
        )
    return conversation


@contextlib.contextmanager
def fsync_switched_off() -> Iterator[None]:
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def percentiles(times_ms: list[float]) -> str:
    cuts = statistics.quantiles(times_ms, n=100)
    return f"p50 {cuts[49]:7.2f}  p95 {cuts[94]:7.2f}"


def time_saves(store: FileStore, stored: list[Conversation], samples: int) -> list[float]:
    rng = random.Random(1)
    times = []
    for _ in range(samples):
        conversation = rng.choice(stored)  # always the 10-message version
        appended = add_message(
            conversation, make_message("user", TEXT, conversation.current_leaf_id)
        )
        times.append(timed(lambda: store.save(appended)))  # noqa: B023 - called at once
    return times


def run(folder: Path, sizes: list[int], samples: int) -> None:
    stored: list[Conversation] = []
    print(f"{MESSAGES_PER_CONVERSATION} messages per conversation, {samples} saves per size, "
          f"times in ms, folder {folder}")
    for size in sorted(sizes):
        with FileStore(folder) as store:
            fill_start = time.perf_counter()
            while len(stored) < size:
                conversation = sample_conversation(len(stored))
                store.save(conversation)
                stored.append(conversation)
            fill_seconds = time.perf_counter() - fill_start
        opened: list[FileStore] = []
        open_ms = timed(lambda: opened.append(FileStore(folder)))
        with opened[0] as store:
            assert len(store.list()) == size and not store.problems
            durable = time_saves(store, stored, samples)
            with fsync_switched_off():
                no_fsync = time_saves(store, stored, samples)
            loads = [timed(lambda: store.load(random.choice(stored).id)) for _ in range(samples)]
            search_ms = timed(lambda: store.search("no such words anywhere"))
        files = (folder / "conversations").iterdir()
        kilobytes = sum(path.stat().st_size for path in files) / size / 1024
        print(f"\n{size:>7,} conversations ({kilobytes:.1f} KB each, "
              f"filled in {fill_seconds:.1f} s)")
        print(f"  open store        {open_ms:9.1f}")
        print(f"  save, fsync       {percentiles(durable)}")
        print(f"  save, no fsync    {percentiles(no_fsync)}")
        print(f"  load              {percentiles(loads)}")
        print(f"  search (no match) {search_ms:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--dir", type=Path, help="folder to fill (default: a temporary one)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        run(folder, args.sizes, args.samples)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
