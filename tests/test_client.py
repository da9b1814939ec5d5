"""chatui.client against the scripted FakeBackend over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatui.accumulate import Accumulator
from chatui.client import BackendClient, ChatStream
from chatui.errors import (
    BackendError,
    BackendHTTPError,
    BackendStreamError,
    BackendTimeout,
    BackendUnavailable,
    StreamProtocolError,
)
from chatui.events import ContentDelta, Done, StreamEvent
from chatui.sse import parse_stream
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(10)

STREAMS = Path(__file__).parent / "streams"
HELLO = [{"role": "user", "content": "Hello?"}]
GOOD_STREAMS = sorted(
    p.name for p in STREAMS.glob("*.txt") if "error" not in p.name and "malformed" not in p.name
)


@pytest.fixture
def client(fake_backend: FakeBackend) -> Iterator[BackendClient]:
    backend = BackendClient(fake_backend.base_url, first_token_timeout=5, stall_timeout=5)
    yield backend
    backend.close()


def fold(stream: ChatStream) -> Accumulator:
    answer = Accumulator()
    with stream:
        for event in stream:
            answer.add(event)
    return answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("name", GOOD_STREAMS)
def test_recorded_streams_arrive_as_parsed(
    fake_backend: FakeBackend, client: BackendClient, name: str
) -> None:
    text = (STREAMS / name).read_text(encoding="utf-8")
    fake_backend.enqueue(Script.replay(text))
    with client.stream_chat(HELLO, None, {}) as stream:
        events = list(stream)
    assert events == list(parse_stream(text.splitlines()))


@pytest.mark.parametrize(("name", "error", "words"), [
    ("error_in_stream.txt", BackendStreamError, "Input prompt is too big"),
    ("error_line.txt", BackendStreamError, "Loading model"),
    ("malformed_json.txt", StreamProtocolError, "not valid JSON"),
])
def test_recorded_errors_raise(
    fake_backend: FakeBackend, client: BackendClient, name: str, error: type, words: str
) -> None:
    fake_backend.enqueue(Script.replay((STREAMS / name).read_text(encoding="utf-8")))
    with pytest.raises(error, match=words):
        fold(client.stream_chat(HELLO, None, {}))


def test_request_carries_messages_model_params_and_stream_options(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    params = {"temperature": 0.2, "top_k": 40, "max_tokens": 64, "seed": 7}
    answer = fold(client.stream_chat(HELLO, "qwen", params))
    assert answer.content == "Hello from the fake backend."
    assert fake_backend.requests == [{
        **params, "messages": HELLO, "model": "qwen", "stream": True,
        "stream_options": {"include_usage": True},
    }]
    assert params == {"temperature": 0.2, "top_k": 40, "max_tokens": 64, "seed": 7}


def test_finished_answers_reuse_the_connection(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    fold(client.stream_chat(HELLO, None, {}))
    fold(client.stream_chat(HELLO, None, {}))
    first, second = fake_backend.received
    assert first.client_port == second.client_port


def test_a_body_left_open_after_done_still_completes(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    chunks = [*Script.text_answer().chunks, (3.0, "")]  # [DONE], then 3 s before the body ends
    fake_backend.enqueue(Script(chunks=chunks))
    started = time.monotonic()
    answer = fold(client.stream_chat(HELLO, None, {}))
    assert answer.done and answer.content == "Hello from the fake backend."
    assert time.monotonic() - started < 2.5


def test_api_key_is_sent_as_bearer_token(fake_backend: FakeBackend) -> None:
    with BackendClient(fake_backend.base_url, api_key="sk-test") as keyed:
        fold(keyed.stream_chat(HELLO, None, {}))
        keyed.list_models()
    with BackendClient(fake_backend.base_url) as anonymous:
        fold(anonymous.stream_chat(HELLO, None, {}))
    headers = [r.headers for r in fake_backend.received]
    assert [h.get("Authorization") for h in headers] == ["Bearer sk-test", "Bearer sk-test", None]


def test_list_models(fake_backend: FakeBackend, client: BackendClient) -> None:
    fake_backend.models = ["qwen3-0.6b", "smollm2"]
    assert client.list_models() == ["qwen3-0.6b", "smollm2"]


def test_closed_port_is_unavailable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with BackendClient(url) as nobody:
        with pytest.raises(BackendUnavailable, match="127.0.0.1"):
            nobody.list_models()
        with pytest.raises(BackendUnavailable, match="127.0.0.1"):
            fold(nobody.stream_chat(HELLO, None, {}))


def test_unknown_host_is_unavailable() -> None:
    with BackendClient("http://no-such-host.invalid/v1") as nowhere:
        with pytest.raises(BackendUnavailable, match="no-such-host.invalid"):
            fold(nowhere.stream_chat(HELLO, None, {}))


@pytest.mark.parametrize(("status", "body", "words"), [
    (500, {"error": {"code": 500, "message": "CUDA out of memory", "type": "server_error"}},
     "CUDA out of memory"),
    (400, {"error": "messages must not be empty"}, "messages must not be empty"),
    (400, {"object": "error", "message": "max_tokens is too large", "code": 400},
     "max_tokens is too large"),
    (422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, "field required"),
    (404, "Not Found", "Not Found"),
    (502, "<html>" + "x" * 5000 + "</html>", "<html>x+…$"),
])
def test_http_errors_carry_the_servers_message(
    fake_backend: FakeBackend, client: BackendClient, status: int, body: object, words: str
) -> None:
    fake_backend.enqueue(Script.error(status, body))  # type: ignore[arg-type]
    with pytest.raises(BackendHTTPError, match=words) as caught:
        fold(client.stream_chat(HELLO, None, {}))
    assert caught.value.status_code == status
    assert len(caught.value.server_message) <= 300


def test_models_http_error(fake_backend: FakeBackend) -> None:
    with BackendClient(fake_backend.base_url + "/nope") as lost:
        with pytest.raises(BackendHTTPError, match="404"):
            lost.list_models()


@pytest.mark.parametrize("script", [
    Script.stall(after_chunks=0, seconds=6),  # headers on time, then silence
    Script(header_delay=6, chunks=Script.text_answer().chunks),  # not even headers
    Script(chunks=[(0.2, ": keep-alive\n\n")] * 25 + list(Script.text_answer().chunks)),
], ids=["silent-body", "no-headers", "keep-alives-only"])
def test_no_first_token_in_time(fake_backend: FakeBackend, script: Script) -> None:
    fake_backend.enqueue(script)
    started = time.monotonic()
    with BackendClient(fake_backend.base_url, first_token_timeout=0.5, stall_timeout=5) as slow:
        with pytest.raises(BackendTimeout, match="did not start answering within 0.5 s"):
            fold(slow.stream_chat(HELLO, None, {}))
    assert time.monotonic() - started < 4  # the timeout ended it, not the server


def test_stall_after_the_answer_began(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=6))
    seen: list[StreamEvent] = []
    started = time.monotonic()
    with BackendClient(fake_backend.base_url, first_token_timeout=5, stall_timeout=0.5) as slow:
        with pytest.raises(BackendTimeout, match="stopped sending for 0.5 s"):
            for event in slow.stream_chat(HELLO, None, {}):
                seen.append(event)
    assert time.monotonic() - started < 4
    assert [e.text for e in seen if isinstance(e, ContentDelta)] == ["Hello ", "from ", "the "]


def test_a_slow_steady_stream_is_not_a_stall(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("one two three four five six", delay=0.25))
    with BackendClient(fake_backend.base_url, first_token_timeout=1, stall_timeout=0.5) as slow:
        answer = fold(slow.stream_chat(HELLO, None, {}))
    assert answer.content == "one two three four five six"


def test_close_from_another_thread_ends_quietly_and_disconnects(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=8))
    stream = client.stream_chat(HELLO, None, {})
    seen = [next(stream), next(stream)]  # model name, "Hello "
    stopper = threading.Timer(0.3, stream.close)
    stopper.start()
    started = time.monotonic()
    seen += list(stream)  # blocks reading until the other thread closes
    assert time.monotonic() - started < 4
    assert Done() not in seen
    assert wait_for(lambda: fake_backend.disconnects == 1)
    stream.close()  # again: harmless
    assert list(stream) == []


def test_close_before_reading_sends_nothing(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    stream = client.stream_chat(HELLO, None, {})
    stream.close()
    assert list(stream) == []
    assert fake_backend.requests == []


def test_close_while_waiting_for_headers_ends_quietly(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    fake_backend.enqueue(Script(header_delay=0.8, chunks=Script.text_answer().chunks))
    stream = client.stream_chat(HELLO, None, {})
    threading.Timer(0.2, stream.close).start()
    assert list(stream) == []


def test_client_timings_when_the_server_sends_none(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    fake_backend.enqueue(Script.text_answer("one two three four five", delay=0.05, usage=False))
    timings = fold(client.stream_chat(HELLO, None, {})).timings()
    assert timings.source == "client"
    assert timings.generated_tokens == 5
    assert timings.ttft_ms is not None and timings.ttft_ms > 0
    assert timings.tokens_per_second is not None and timings.tokens_per_second > 0


def test_server_timings_are_preferred(fake_backend: FakeBackend, client: BackendClient) -> None:
    server = {"prompt_n": 12, "prompt_ms": 30.0, "predicted_n": 5, "predicted_ms": 62.5,
              "predicted_per_second": 80.0}
    fake_backend.enqueue(Script.text_answer(timings=server))
    timings = fold(client.stream_chat(HELLO, None, {})).timings()
    assert timings.source == "server"
    assert (timings.tokens_per_second, timings.generated_tokens) == (80.0, 5)


def test_fifty_streams_at_once(fake_backend: FakeBackend) -> None:
    with BackendClient(fake_backend.base_url, connect_timeout=2) as shared:
        streams = [shared.stream_chat(HELLO, None, {}) for _ in range(50)]
        for stream in streams:  # every stream holds its connection open at the same time
            next(stream)
        answers = [fold(stream) for stream in streams]
    assert all(a.content == "Hello from the fake backend." for a in answers)


class _BreaksMidway(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'
        raise httpx.ReadError("connection reset by peer")


@pytest.mark.parametrize(("response", "error", "words"), [
    (httpx.Response(200, stream=_BreaksMidway()), BackendError, "broke"),
    (httpx.Response(200, json={"choices": [{"message": {"content": "Hi"}}]}),
     StreamProtocolError, "did not send an event stream"),
])
def test_injected_transport(response: httpx.Response, error: type, words: str) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    with BackendClient("http://model.test/v1", http=http) as mocked:
        with pytest.raises(error, match=words):
            fold(mocked.stream_chat(HELLO, None, {}))
    assert not http.is_closed  # the caller's client stays the caller's
