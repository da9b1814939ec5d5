"""Prompt progress (issue 13, item 3): llama-server's ``prompt_progress`` before the text.

Only the scripted server is used here: the embedded llama-cpp-python server sends
no progress (the UI shows the elapsed time then). The chunks are shaped as
llama-server sends them with ``return_progress: true``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatui.client import BackendClient
from chatui.events import ContentDelta, PromptProgress
from chatui.memstore import MemoryStore
from chatui.serverinfo import ServerFeatures
from chatui.service import ChatService
from chatui.sse import parse_stream
from tests.apiharness import parse_sse, running_api
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(60)
OWNER = "local"
PROPS = {"default_generation_settings": {"n_ctx": 4096}}


def _progress_chunk(processed: int, cache: int, total: int, time_ms: float) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
            "prompt_progress": {"processed": processed, "cache": cache, "total": total,
                                "time_ms": time_ms}}


def _text_chunk(text: str, finish: str | None = None) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "model": "fake-model",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


SCRIPT = Script.sse([_progress_chunk(100, 100, 1100, 0.0), _progress_chunk(600, 100, 1100, 250.0),
                     _progress_chunk(1100, 100, 1100, 500.0), _text_chunk("Done"),
                     _text_chunk(".", "stop")])


def test_the_parser_reads_progress_and_its_share_of_the_work() -> None:
    lines = [f"data: {json.dumps(_progress_chunk(600, 100, 1100, 250.0))}", "",
             'data: {"prompt_progress": {"processed": "x", "cache": 0, "total": 5}}', "",
             f"data: {json.dumps(_text_chunk('Hi', 'stop'))}", "", "data: [DONE]", ""]
    events = list(parse_stream(lines))
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert progress == [PromptProgress(600, 100, 1100, 250.0)]  # the malformed one is dropped
    assert progress[0].fraction == pytest.approx(0.5)  # (600 - 100) / (1100 - 100)
    assert progress[0].tokens_per_second == pytest.approx(2000.0)
    assert ContentDelta("Hi") in events


def test_the_answer_shows_progress_before_the_first_token() -> None:
    with FakeBackend(props=PROPS) as backend, BackendClient(backend.base_url) as client:
        backend.enqueue(SCRIPT)
        service = ChatService(MemoryStore(), client, features=ServerFeatures(client))
        chat = service.create(OWNER)
        steps = list(service.start_send(chat.id, "Read this long text", owner=OWNER).events())
        assert backend.requests[-1]["return_progress"] is True
        shown = [s.prompt.fraction for s in steps if s.prompt is not None]
        assert shown == [0.0, 0.5, 1.0]
        first_text = next(i for i, s in enumerate(steps) if s.content_delta)
        assert all(s.prompt is None for s in steps[first_text:])
        assert steps[-1].message.content == "Done."


def test_a_server_without_props_is_not_asked_for_progress() -> None:
    with FakeBackend() as backend, BackendClient(backend.base_url) as client:
        service = ChatService(MemoryStore(), client, features=ServerFeatures(client))
        chat = service.create(OWNER)
        service.start_send(chat.id, "Hello", owner=OWNER).wait(30)
        assert "return_progress" not in backend.requests[-1]


def test_the_rest_stream_sends_progress_events(tmp_path: Path) -> None:
    with FakeBackend(props=PROPS) as backend:
        backend.enqueue(SCRIPT)
        with running_api(backend.base_url, tmp_path) as api:
            chat = api.new_chat()
            response = api.http.post(f"/chats/{chat['id']}/stream", json={"content": "Read"})
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    progress = [data for name, data in events if name == "progress"]
    assert [p["fraction"] for p in progress] == [0.0, 0.5, 1.0]
    assert progress[1] == {"processed": 600, "cache": 100, "total": 1100, "fraction": 0.5,
                           "tokens_per_second": 2000.0}
    assert names.index("delta") > max(i for i, n in enumerate(names) if n == "progress")
    assert names[-1] == "message"


def test_progress_keeps_a_long_prompt_from_timing_out() -> None:
    """Reading the prompt takes longer than the first-token limit, but says how far it is."""
    steps = [_progress_chunk(n, 0, 400, n * 10.0) for n in (100, 200, 300, 400)]
    slow = Script(chunks=[*((0.8, f"data: {json.dumps(c)}\n\n") for c in steps),
                          *Script.sse([_text_chunk("Read.", "stop")]).chunks])
    with FakeBackend(props=PROPS) as backend, \
            BackendClient(backend.base_url, first_token_timeout=2.0) as client:
        backend.enqueue(slow)  # 3.2 s before the first token, never 2 s without news
        service = ChatService(MemoryStore(), client, features=ServerFeatures(client))
        chat = service.create(OWNER)
        result = service.start_send(chat.id, "A long text", owner=OWNER).result
        assert result is not None and result.message.content == "Read."
