"""Paging the conversation list: ``page`` on every store, its cursor, its preview.

The cursor comes back from a client, so the tests forge it the way a client can.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatui.cache import CachedStore
from chatui.errors import InvalidRequest
from chatui.filestore import FileStore
from chatui.memstore import MemoryStore
from chatui.store import (
    MAX_PAGE_SIZE,
    ConversationPage,
    ConversationStore,
    ConversationSummary,
)
from chatui.tree import Conversation, add_message, make_message, new_conversation

STORES: dict[str, Callable[[Path], ConversationStore]] = {
    "file": FileStore,
    "memory": lambda folder: MemoryStore(),
    "cached-file": lambda folder: CachedStore(FileStore(folder), capacity=2),
}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    with STORES[request.param](tmp_path) as opened:
        yield opened


def chat(title: str, now: float, owner: str = "local", texts: tuple[str, ...] = ()) -> Conversation:
    conversation = new_conversation(title, owner=owner, now=now)
    for number, text in enumerate(texts):
        role = "user" if number % 2 == 0 else "assistant"
        message = make_message(role, text, conversation.current_leaf_id, now=now + number + 1)
        conversation = add_message(conversation, message)
    return conversation


def every_page(
    store: ConversationStore, owner: str | None, limit: int, search: str = ""
) -> list[ConversationPage]:
    pages = [store.page(owner, limit, search=search)]
    while pages[-1].next_cursor is not None:
        pages.append(store.page(owner, limit, pages[-1].next_cursor, search))
    return pages


def titles(pages: list[ConversationPage]) -> list[str]:
    return [summary.title for page in pages for summary in page.items]


def test_pages_walk_the_list_newest_first_once_each(store: ConversationStore) -> None:
    for number in range(23):
        store.save(chat(f"c{number:02}", now=1000.0 + number))
    store.save(chat("tie-a", now=500.0))  # same times: the id orders them
    store.save(chat("tie-b", now=500.0))

    pages = every_page(store, "local", 5)

    assert [len(page.items) for page in pages] == [5, 5, 5, 5, 5]
    assert pages[-1].next_cursor is None
    assert titles(pages) == [s.title for s in store.list("local")]
    assert len(set(titles(pages))) == 25


def test_a_page_that_ends_the_list_exactly_says_there_is_no_more(
    store: ConversationStore,
) -> None:
    for number in range(4):
        store.save(chat(f"c{number}", now=1000.0 + number))

    first = store.page("local", 4)

    assert [s.title for s in first.items] == ["c3", "c2", "c1", "c0"]
    assert first.next_cursor is None
    assert store.page("local", 10) == first
    assert store.page("nobody", 10) == ConversationPage((), None)


def test_writes_between_pages_neither_repeat_nor_skip_the_older_ones(
    store: ConversationStore,
) -> None:
    older = [chat(f"c{number}", now=1000.0 + number) for number in range(6)]
    for conversation in older:
        store.save(conversation)
    first = store.page("local", 3)
    assert [s.title for s in first.items] == ["c5", "c4", "c3"]

    store.save(chat("newer", now=2000.0))  # lands before the cursor: on no later page
    store.delete(older[1].id)

    rest = store.page("local", 3, first.next_cursor)
    assert [s.title for s in rest.items] == ["c2", "c0"]
    assert rest.next_cursor is None


def test_pages_are_scoped_to_the_owner(store: ConversationStore) -> None:
    for number in range(5):
        store.save(chat(f"alice{number}", now=1000.0 + 2 * number, owner="alice"))
        store.save(chat(f"bob{number}", now=1001.0 + 2 * number, owner="bob"))

    alices = titles(every_page(store, "alice", 2))

    assert alices == [f"alice{n}" for n in reversed(range(5))]
    bobs_cursor = store.page("bob", 2).next_cursor
    assert bobs_cursor is not None
    assert {s.owner for s in store.page("alice", 50, bobs_cursor).items} == {"alice"}


def test_a_search_pages_like_the_list(store: ConversationStore) -> None:
    for number in range(7):
        texts = ("Tell me about Zebras", "Stripes.") if number % 2 else ("hello", "hi")
        store.save(chat(f"c{number}", now=1000.0 + number, texts=texts))
    store.save(chat("ZEBRA crossing", now=900.0))
    store.save(chat("Zebras of bob", now=950.0, owner="bob", texts=("zebra",)))

    found = every_page(store, "local", 2, search="zebra")

    assert titles(found) == ["c5", "c3", "c1", "ZEBRA crossing"]
    assert store.page("local", 50, search="   ") == store.page("local", 50)


def test_the_preview_is_the_first_words_of_the_active_leaf(store: ConversationStore) -> None:
    long_answer = "word " * 200
    conversation = chat("Long", now=1000.0, texts=("question\n\n  here", long_answer))
    question = next(m for m in conversation.messages.values() if m.role == "user")
    store.save(conversation)
    store.save(chat("Empty", now=999.0))

    [long, empty] = store.page("local", 10).items

    assert long.preview.startswith("word word") and long.preview.endswith("…")
    assert len(long.preview) <= 101 and "  " not in long.preview
    assert empty.preview == ""
    other_branch = make_message("assistant", "Another\tanswer", question.id, now=1003.0)
    store.save(add_message(conversation, other_branch))
    assert store.page("local", 1).items[0].preview == "Another answer"
    assert store.list("local")[0].preview == "Another answer"


def forged(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


FORGED_CURSORS = [
    "", "x", "!!!!", "%00", "a" * 10_000, "8J+Ygg", base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    forged({"updated": 1}), forged([1, 2]), forged([1, 2, "../etc/passwd"]),
    forged(["1", 2, "abc"]), forged([True, 2, "abc"]), forged([1e400, 2, "abc"]),
    forged([1, 2, "a" * 5000]), forged([1, 2, None]), forged([[1], 2, "abc"]),
    forged("NaN"), "bnVsbA",  # null
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_refused_in_words(store: ConversationStore, cursor: str) -> None:
    store.save(chat("Kept", now=1000.0))

    with pytest.raises(InvalidRequest, match="cursor"):
        store.page("local", 10, cursor)


def test_a_cursor_made_by_hand_is_only_a_position(store: ConversationStore) -> None:
    """A well-formed key that was never handed out still only picks "older than this"."""
    for number in range(3):
        store.save(chat(f"c{number}", now=1000.0 + number))

    page = store.page("local", 10, forged([1001.5, 0, "zz"]))

    assert [s.title for s in page.items] == ["c1", "c0"]


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, 10**9])
def test_a_page_size_out_of_bounds_is_refused(store: ConversationStore, limit: int) -> None:
    with pytest.raises(InvalidRequest, match="page holds"):
        store.page("local", limit)


def test_summaries_keep_their_order_key() -> None:
    summary = ConversationSummary("abc", "t", "local", 1.0, 2.0, 0)
    assert summary.order == (2.0, 1.0, "abc") and summary.preview == ""
