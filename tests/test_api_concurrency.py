"""Twenty streams at once on twenty chats: all finish, and each chat stores its own answer.

How fast they are together is measured by ``bench/bench_api.py`` (``--concurrent``).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from tests.apiharness import parse_sse, running_api
from tests.fakebackend import FakeBackend, Script
from tests.polling import Hold, wait_until

STREAMS = 20


@pytest.mark.timeout(300)
def test_twenty_concurrent_streams_all_complete_and_are_stored(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    answer = " ".join(f"token{number}" for number in range(30))
    held = Hold(after=3)  # every answer stops after three tokens until all twenty have begun
    fake_backend.enqueue(*[Script(chunks=held(Script.text_answer(answer).chunks))] * STREAMS)
    with running_api(fake_backend.base_url, tmp_path) as api:
        chat_ids = [api.new_chat(title=f"Chat {number}")["id"] for number in range(STREAMS)]

        async def stream(client: httpx.AsyncClient, number: int) -> list[tuple[str, object]]:
            response = await client.post(
                f"/chats/{chat_ids[number]}/stream", json={"content": f"Question {number}"}
            )
            assert response.status_code == 200
            return parse_sse(response.text)

        async def all_streams() -> list[list[tuple[str, object]]]:
            limits = httpx.Limits(max_connections=STREAMS)
            async with httpx.AsyncClient(base_url=api.url, timeout=60, limits=limits) as client:
                return await asyncio.gather(*(stream(client, n) for n in range(STREAMS)))

        results: list[list[tuple[str, object]]] = []
        client = threading.Thread(target=lambda: results.extend(asyncio.run(all_streams())))
        client.start()
        try:  # one at a time, the second would never reach the model server
            wait_until(lambda: len(fake_backend.requests) == STREAMS,
                       message="not every stream reached the model server at once")
            assert all(api.service.is_generating(chat_id, "local") for chat_id in chat_ids)
        finally:
            held.release()
        client.join()

        assert len(results) == STREAMS
        assert len(fake_backend.requests) == STREAMS
        for number, events in enumerate(results):
            name, final = events[-1]
            assert name == "message", events[-1]
            assert isinstance(final, dict)
            assert final["status"] == "complete"
            assert final["content"] == answer
            streamed = "".join(data["content"] for kind, data in events  # type: ignore[index]
                               if kind == "delta")
            assert streamed == answer
            stored = api.service.conversation(chat_ids[number], "local")
            messages = sorted(stored.messages.values(), key=lambda m: m.created_at)
            assert [m.role for m in messages] == ["user", "assistant"]
            assert messages[0].content == f"Question {number}"
            assert messages[1].id == final["id"] == stored.current_leaf_id
            assert messages[1].content == answer
        assert not any(api.service.is_generating(chat_id, "local") for chat_id in chat_ids)
