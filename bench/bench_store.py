"""How long the store takes to open, list, search and save as it grows: catalog vs before.

    .venv/bin/python bench/bench_store.py                        # 10, 1,000, 10,000
    .venv/bin/python bench/bench_store.py --sizes 10000 100000   # a few minutes
    .venv/bin/python bench/bench_store.py --sizes 100000 --no-before

One folder is filled up to each size in turn with conversations of 10
messages: in bulk (each file as TinyDB writes it, the catalog's rows in one
transaction; ``--by-save`` fills through ``FileStore.save``, at 1-5 ms each), with
fsync switched off while filling: only the timed saves flush. At each size it
times, beside the same operation done as chatui did before the catalog
(``before``: read every file at open, keep the summaries in a dict, sort them to
list, read the files to search; the very loops of the old ``FileStore``, run
here on the same files):

- open: ``FileStore(folder)`` after a clean close (the catalog is trusted), after
  a crash (the catalog is checked against every file's stat), and, before,
  reading every file (the files were just written, so they are in the page
  cache: a cold disk is slower);
- list: the newest 50 (a ``page``), and the page after it by cursor;
- search: no match, a word in one conversation, a word in all (first page of
  50), and a 2-character text (no trigram: a scan of the titles) with no match;
- save: appending one message to a random conversation, with fsync, p50/p95;
  before = the file write alone, the catalog's share is the difference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatui.catalog import FILE_NAME, Stamp, time_step_ns
from chatui.codec import conversation_header, message_to_dict
from chatui.filestore import FileStore
from chatui.storage import SCHEMA_VERSION, read_conversation, write_conversation
from chatui.store import ConversationSummary, mentions, newest_first
from chatui.tree import Conversation, add_message, make_message, new_conversation

MESSAGES_PER_CONVERSATION = 10
TEXT = "A sentence of a plausible length for a chat message, give or take. " * 4


def sample_conversation(number: int) -> Conversation:
    conversation = new_conversation(f"Conversation {number}")
    for turn in range(MESSAGES_PER_CONVERSATION):
        role = "user" if turn % 2 == 0 else "assistant"
        text = f"{TEXT} (conversation {number}, turn {turn}, word{number:06x}q)"
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


def median(action: Callable[[], object], samples: int) -> float:
    return statistics.median(timed(action) for _ in range(samples))


def percentiles(times_ms: list[float]) -> str:
    cuts = statistics.quantiles(times_ms, n=100)
    return f"p50 {cuts[49]:8.2f}  p95 {cuts[94]:8.2f}"


# ----- what the store did before the catalog (the old FileStore's loops) ------------


def before_open(folder: Path) -> dict[str, ConversationSummary]:
    index = {}
    for path in sorted((folder / "conversations").glob("*.json")):
        conversation = read_conversation(path)
        index[conversation.id] = ConversationSummary.of(conversation)
    return index


def before_search(folder: Path, index: dict[str, ConversationSummary], text: str) -> list[str]:
    needle = text.casefold()
    return [
        s.id for s in newest_first(index.values(), "local")
        if needle in s.title.casefold() or mentions(
            read_conversation(folder / "conversations" / f"{s.id}.json"), needle)
    ]


# ----- the catalog -----------------------------------------------------------------


def close_cleanly(store: FileStore, folder: Path) -> None:
    mtime = (folder / "conversations").stat().st_mtime_ns
    while time.time_ns() - mtime <= 2 * time_step_ns(mtime):
        time.sleep(0.01)
    store.close()


def pretend_crash(folder: Path) -> None:
    """Leave the catalog as a killed process would: state "open"."""
    with contextlib.closing(sqlite3.connect(folder / FILE_NAME)) as db, db:
        db.execute("UPDATE meta SET value = 'open' WHERE key = 'state'")


def time_saves(
    save: Callable[[Conversation], None], stored: list[Conversation], samples: int
) -> list[float]:
    rng = random.Random(1)
    times = []
    for _ in range(samples):
        conversation = rng.choice(stored)  # always the 10-message version
        appended = add_message(
            conversation, make_message("user", TEXT, conversation.current_leaf_id)
        )
        times.append(timed(lambda: save(appended)))  # noqa: B023 - called at once
    return times


def fill(folder: Path, stored: list[Conversation], size: int, bulk: bool) -> float:
    """Add conversations up to ``size``: through ``save``, or (``bulk``) each file written
    as TinyDB would write it and the catalog filled in one transaction (the same rows)."""
    start = time.perf_counter()
    with fsync_switched_off(), FileStore(folder) as store:
        catalog = store._catalog
        with catalog.transaction() if bulk else contextlib.nullcontext():
            while len(stored) < size:
                conversation = sample_conversation(len(stored))
                if bulk:
                    path = folder / "conversations" / f"{conversation.id}.json"
                    path.write_text(json.dumps(tables_of(conversation), separators=(",", ":")))
                    catalog.put(conversation, Stamp.of(path.stat()))
                else:
                    store.save(conversation)
                stored.append(conversation)
        store._own_mtime = (folder / "conversations").stat().st_mtime_ns
        close_cleanly(store, folder)
    return time.perf_counter() - start


def tables_of(conversation: Conversation) -> dict[str, Any]:
    """The file ``storage.write_conversation`` writes, without TinyDB's per-table writes."""
    return {
        "meta": {"1": {"schema_version": SCHEMA_VERSION}},
        "conversation": {"1": conversation_header(conversation)},
        "messages": {
            str(n): message_to_dict(m) for n, m in enumerate(conversation.messages.values(), 1)
        },
    }


def measure(folder: Path, stored: list[Conversation], samples: int, before: bool) -> None:
    size = len(stored)
    rng = random.Random(size)
    row = "  {:<34}{:>12}{:>14}"
    print(row.format("", "catalog", "before"))
    opened: list[FileStore] = []
    trusted_ms = timed(lambda: opened.append(FileStore(folder)))
    store = opened.pop()
    legacy: dict[str, ConversationSummary] = {}
    before_ms = timed(lambda: legacy.update(before_open(folder))) if before else None
    print(row.format("open (clean close)", f"{trusted_ms:.1f}", _ms(before_ms)))

    first = store.page("local", 50)
    assert len(first.items) == min(50, size) and not store.problems
    page_ms = median(lambda: store.page("local", 50), samples)
    cursor = first.next_cursor
    next_ms = median(lambda: store.page("local", 50, cursor), samples) if cursor else 0.0
    sort_ms = median(lambda: newest_first(legacy.values(), "local")[:50], 5) if before else None
    print(row.format("list newest 50", f"{page_ms:.2f}", _ms(sort_ms, 2)))
    print(row.format("  and the page after (cursor)", f"{next_ms:.2f}", ""))

    unique = f"word{rng.randrange(size):06x}q"
    for label, needle, by_page in [
        ("search, no match", "no such words anywhere", False),
        ("search, one match", unique, False),
        (f"search, all match (first 50 of {size:,})", "plausible", True),
        ("search, 2 characters (titles), none", "zq", False),
    ]:
        if by_page:
            ms = median(lambda: store.page("local", 50, search=needle), samples)  # noqa: B023
        else:
            ms = median(lambda: store.search(needle), samples)  # noqa: B023
        old = None
        if before and label == "search, no match":  # any rare text costs the old code this
            old = timed(lambda: before_search(folder, legacy, needle))  # noqa: B023
        print(row.format(label, f"{ms:.2f}", _ms(old)))

    durable = time_saves(store.save, stored, samples)
    files_only = time_saves(
        lambda c: write_conversation(folder / "conversations" / f"{c.id}.json", c),
        stored, samples,
    )
    print(f"  {'save, fsync (ms)':<34}{percentiles(durable)}   file alone: "
          f"{percentiles(files_only)}")
    close_cleanly(store, folder)

    pretend_crash(folder)
    crashed_ms = timed(lambda: FileStore(folder).close())
    print(row.format("open after a crash (stat all)", f"{crashed_ms:.1f}", ""))
    catalog_mb = sum(
        p.stat().st_size for p in folder.glob(f"{FILE_NAME}*")) / 1e6
    files_mb = sum(p.stat().st_size for p in (folder / "conversations").iterdir()) / 1e6
    print(f"  on disk: files {files_mb:.1f} MB, catalog {catalog_mb:.1f} MB; "
          f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run(folder: Path, sizes: list[int], samples: int, before: bool, bulk: bool) -> None:
    stored: list[Conversation] = []
    print(f"{MESSAGES_PER_CONVERSATION} messages per conversation, medians of {samples} "
          f"(saves: {samples} each), times in ms, folder {folder}; load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine: other work runs beside)")
    for size in sorted(sizes):
        fill_seconds = fill(folder, stored, size, bulk)
        print(f"\n{size:>7,} conversations ({'bulk-' if bulk else ''}filled in "
              f"{fill_seconds:.1f} s)")
        measure(folder, stored, samples, before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--no-before", dest="before", action="store_false",
                        help="skip the old code's figures (at 100,000: about a minute)")
    parser.add_argument("--by-save", dest="bulk", action="store_false",
                        help="fill through FileStore.save (slower) instead of in bulk")
    parser.add_argument("--dir", type=Path, help="folder to fill (default: a temporary one)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        run(folder, args.sizes, args.samples, args.before, args.bulk)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
