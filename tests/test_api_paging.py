"""GET /api/v1/chats pages: limit, cursor (X-Next-Cursor / Link), q; a forged cursor is a 422."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.tree import add_message, make_message, new_conversation
from tests.apiharness import Api, assert_error, running_api
from tests.fakebackend import FakeBackend


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path) as running:
        yield running


def store_chats(api: Api, count: int, owner: str = "local", text: str = "hello") -> None:
    """Many chats at once, through the store (the HTTP path is tested one chat at a time)."""
    for number in range(count):
        conversation = new_conversation(f"{owner} {number:03}", owner=owner, now=1000.0 + number)
        question = make_message("user", f"{text} {number}", None, now=1000.5 + number)
        api.store.save(add_message(conversation, question))


def walk(api: Api, **params: Any) -> list[httpx.Response]:
    responses = [api.http.get("/chats", params=params)]
    while "x-next-cursor" in responses[-1].headers:
        cursor = responses[-1].headers["x-next-cursor"]
        responses.append(api.http.get("/chats", params={**params, "cursor": cursor}))
    return responses


def test_the_list_comes_in_pages_of_50_by_default_and_the_cursor_walks_it(api: Api) -> None:
    store_chats(api, 120)
    store_chats(api, 30, owner="bob")

    pages = walk(api)

    assert [r.status_code for r in pages] == [200, 200, 200]
    assert [len(r.json()) for r in pages] == [50, 50, 20]
    titles = [chat["title"] for r in pages for chat in r.json()]
    assert titles == [f"local {n:03}" for n in reversed(range(120))]
    assert pages[0].json()[0]["preview"] == "hello 119"
    assert 'rel="next"' in pages[0].headers["link"] and "link" not in pages[-1].headers


def test_limit_and_q_page_together(api: Api) -> None:
    store_chats(api, 30, text="plain")
    store_chats(api, 7, owner="local2", text="zebra")  # another owner's matches stay hidden
    chat_id = api.new_chat(title="Zebra facts")["id"]

    pages = walk(api, limit=3, q="ZEBRA")
    assert [chat["id"] for r in pages for chat in r.json()] == [chat_id]

    pages = walk(api, limit=200)
    assert [len(r.json()) for r in pages] == [31]
    by_sevens = walk(api, limit=7, q="plain 2")  # "plain 2", "plain 20".."plain 29"
    assert [len(r.json()) for r in by_sevens] == [7, 4]


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 201}, {"limit": "all"}, {"limit": -5},
    {"cursor": "a" * 401}, {"q": "x" * 1001},
])
def test_out_of_bounds_parameters_are_refused(api: Api, params: dict[str, Any]) -> None:
    assert_error(api.http.get("/chats", params=params), 422, "invalid_request")


@pytest.mark.parametrize("cursor", [
    "garbage", "WzEsMiwiLi4vZXRjL3Bhc3N3ZCJd",  # [1,2,"../etc/passwd"]
    "WzFlNDAwLDIsImFiYyJd",  # [1e400,2,"abc"]
    "%FF%FE", "bnVsbA", "W10",  # null, []
])
def test_a_forged_cursor_is_a_422_in_words_never_a_500(api: Api, cursor: str) -> None:
    store_chats(api, 3)
    raw = httpx.get(f"{api.url}/chats?cursor={cursor}")
    message = assert_error(raw, 422, "invalid_request")
    assert "cursor" in message
