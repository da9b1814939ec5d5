"""CachedStore: an LRU in front of the store that never returns an older version."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.cache import CachedStore
from chatui.errors import NotFound
from chatui.store import ConversationStore


@pytest.fixture
def cached(tmp_path: Path) -> Iterator[CachedStore]:
    with CachedStore(ConversationStore(tmp_path), capacity=2) as store:
        yield store


def test_a_saved_conversation_is_served_from_memory(cached: CachedStore) -> None:
    conversation = tree.new_conversation("One")
    cached.save(conversation)
    assert cached.load(conversation.id) is conversation
    stats = cached.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 0, 1)


def test_a_miss_reads_the_store_once(tmp_path: Path) -> None:
    conversation = tree.new_conversation("On disk")
    with ConversationStore(tmp_path) as store:
        store.save(conversation)
    with CachedStore(ConversationStore(tmp_path)) as cached:
        assert cached.load(conversation.id) == conversation
        assert cached.load(conversation.id) == conversation
        assert (cached.stats().hits, cached.stats().misses) == (1, 1)


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


def test_unknown_ids_are_not_found_and_not_kept(cached: CachedStore) -> None:
    for name in ("nope", "../etc/passwd"):
        with pytest.raises(NotFound):
            cached.load(name)
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
    assert ConversationStore.load(cached.store, conversation.id).title == "59"
