"""CachedStore: an LRU in front of any store that never returns an older version.

Every test runs with the cache in front of each store implementation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.cache import CachedStore
from chatui.errors import NotFound
from chatui.filestore import FileStore
from chatui.memstore import MemoryStore
from chatui.store import ConversationStore

STORES: dict[str, Callable[[Path], ConversationStore]] = {
    "file": FileStore,
    "memory": lambda folder: MemoryStore(),
}


@pytest.fixture(params=STORES)
def make_store(request: pytest.FixtureRequest) -> Callable[[Path], ConversationStore]:
    return STORES[request.param]


@pytest.fixture
def cached(
    make_store: Callable[[Path], ConversationStore], tmp_path: Path
) -> Iterator[CachedStore]:
    with CachedStore(make_store(tmp_path), capacity=2) as store:
        yield store


def test_a_saved_conversation_is_served_from_memory(cached: CachedStore) -> None:
    conversation = tree.new_conversation("One")
    cached.save(conversation)
    assert cached.load(conversation.id) is conversation
    stats = cached.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 0, 1)


def test_a_miss_reads_the_store_once(
    make_store: Callable[[Path], ConversationStore], tmp_path: Path
) -> None:
    conversation = tree.new_conversation("Stored before the cache")
    store = make_store(tmp_path)
    store.save(conversation)
    with CachedStore(store) as cached:
        assert cached.load(conversation.id) == conversation
        assert cached.load(conversation.id) == conversation
        assert (cached.stats().hits, cached.stats().misses) == (1, 1)


def test_the_stores_have_no_cache_stats_and_the_cache_has(cached: CachedStore) -> None:
    assert cached.store.stats() is None
    assert cached.stats().capacity == 2


def test_the_least_recently_used_is_evicted(cached: CachedStore) -> None:
    first, second, third = (tree.new_conversation(name) for name in "abc")
    for conversation in (first, second):
        cached.save(conversation)
    cached.load(first.id)  # first is now the most recent
    cached.save(third)  # evicts second
    assert cached.stats().size == 2
    cached.load(second.id)
    assert cached.stats().misses == 1
    assert cached.load(second.id) == second


def test_writes_replace_and_delete_drops(cached: CachedStore) -> None:
    conversation = tree.new_conversation("Old")
    cached.save(conversation)
    renamed = tree.rename(conversation, "New")
    cached.save(renamed)
    assert cached.load(conversation.id).title == "New"
    updated = cached.update(conversation.id, lambda c: tree.rename(c, "Newer"))
    assert cached.load(conversation.id) is updated
    cached.delete(conversation.id)
    with pytest.raises(NotFound):
        cached.load(conversation.id)
    assert cached.list() == []


def test_a_cached_conversation_is_still_only_its_owners(cached: CachedStore) -> None:
    alices = tree.new_conversation("Alice's", owner="alice")
    cached.save(alices)  # now in the cache
    assert cached.load(alices.id, owner="alice") is alices

    with pytest.raises(NotFound, match="no such conversation"):
        cached.load(alices.id, owner="bob")
    with pytest.raises(NotFound):
        cached.update(alices.id, lambda c: tree.rename(c, "Bob's now"), owner="bob")
    with pytest.raises(NotFound):
        cached.delete(alices.id, owner="bob")
    assert cached.load(alices.id, owner="alice").title == "Alice's"
    assert not cached.exists(alices.id, owner="bob") and cached.exists(alices.id, owner="alice")


def test_unknown_ids_are_not_found_and_not_kept(cached: CachedStore) -> None:
    for name in ("nope", "../etc/passwd"):
        with pytest.raises(NotFound):
            cached.load(name)
    assert cached.stats().size == 0


def test_lookups_of_unknown_ids_leave_no_lock_behind(cached: CachedStore) -> None:
    """20,000 REST reads of made-up ids used to leave 20,000 locks in the cache and store."""
    for number in range(20_000):
        with pytest.raises(NotFound):
            cached.load(f"made-up-{number}")
    with pytest.raises(NotFound):
        cached.delete("made-up")

    assert len(cached._locks) == 0
    assert len(getattr(cached.store, "_locks", ())) == 0
    assert cached.stats().size == 0


def test_a_reader_never_sees_a_version_older_than_the_last_finished_write(
    cached: CachedStore,
) -> None:
    conversation = tree.new_conversation("0")
    cached.save(conversation)
    written = [0]
    errors: list[str] = []
    done = threading.Event()

    def writer() -> None:
        current = conversation
        for number in range(1, 60):
            current = tree.rename(current, str(number))
            cached.save(current)
            written[0] = number
        done.set()

    def reader() -> None:
        while not done.is_set():
            floor = written[0]
            seen = int(cached.load(conversation.id).title)
            if seen < floor:
                errors.append(f"read {seen} after {floor} was written")

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert cached.load(conversation.id).title == "59"
    assert cached.store.load(conversation.id).title == "59"
    assert len(cached._locks) == 0
