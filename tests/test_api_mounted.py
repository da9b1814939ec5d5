"""The API as users get it: mounted by ``chatui.server.build_app`` beside the Gradio UI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.apiharness import Api, parse_sse, running_api
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, wait_until

TOKEN = "mounted-token"


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with running_api(fake_backend.base_url, tmp_path, headers=headers, full_app=True,
                     api_token=TOKEN, first_token_timeout=FOREVER,
                     stall_timeout=FOREVER) as running:  # only the test ends a stalled answer
        yield running


def test_docs_ui_and_api_share_one_port(api: Api) -> None:
    root = api.url.removesuffix("/api/v1")
    assert httpx.get(f"{root}/docs").status_code == 200
    spec = httpx.get(f"{root}/openapi.json").json()
    assert "/api/v1/chats/{chat_id}/stream" in spec["paths"]
    assert httpx.get(f"{root}/").status_code == 200  # the Gradio page
    assert httpx.get(f"{api.url}/chats").status_code == 401
    chat_id = api.new_chat()["id"]
    events = parse_sse(api.http.post(f"/chats/{chat_id}/stream", json={"content": "hi"}).text)
    assert events[-1][0] == "message"


def test_disconnect_stops_the_generation_through_the_mounted_app(
    api: Api, fake_backend: FakeBackend
) -> None:
    words = " ".join(f"w{number}" for number in range(40))
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=words))
    chat_id = api.new_chat()["id"]
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json={"content": "Count"}) as response:
        for line in response.iter_lines():
            if line == "event: delta":
                break
    wait_until(lambda: fake_backend.disconnects == 1)
    wait_until(lambda: not api.service.is_generating(chat_id, "local"))
    answer = list(api.service.conversation(chat_id, "local").messages.values())[-1]
    assert answer.status == "stopped"
