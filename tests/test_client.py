"""chatui.client against the scripted FakeBackend over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
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
from tests.polling import FOREVER, PATIENCE, run_to_end, wait_until

pytestmark = pytest.mark.timeout(120)  # a hang guard; waits are PATIENCE

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


@pytest.mark.parametrize("name", GOOD_STREAMS)
def test_recorded_streams_arrive_as_parsed(
    fake_backend: FakeBackend, client: BackendClient, name: str
) -> None:
    text = (STREAMS / name).read_text(encoding="utf-8")
    fake_backend.enqueue(Script.replay(text))
    with client.stream_chat(HELLO, None, {}) as stream:
        events = list(stream)
    assert events == list(parse_stream(text.splitlines()))


def test_a_line_separator_in_the_text_arrives_whole(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    # llama-server writes U+2028 in JSON as it is; a line split there broke the stream.
    chunk = {"choices": [{"index": 0, "delta": {"content": "Two\u2028lines, one answer."}}]}
    body = f"data: {json.dumps(chunk, ensure_ascii=False)}\n\ndata: [DONE]\n\n"
    fake_backend.enqueue(Script(chunks=[(0.0, body)]))
    assert fold(client.stream_chat(HELLO, None, {})).content == "Two\u2028lines, one answer."


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


def test_a_body_left_open_after_done_still_completes(fake_backend: FakeBackend) -> None:
    chunks = [*Script.text_answer().chunks, (FOREVER, "")]  # [DONE], then the body stays open
    fake_backend.enqueue(Script(chunks=chunks))
    with BackendClient(fake_backend.base_url, first_token_timeout=FOREVER,
                       stall_timeout=FOREVER) as patient:  # only the wait after [DONE] ends it
        answer = run_to_end(lambda: fold(patient.stream_chat(HELLO, None, {})))
    assert answer.done and answer.content == "Hello from the fake backend."
    wait_until(lambda: fake_backend.disconnects == 1)  # the client let go, not the server


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
    Script.stall(after_chunks=0, seconds=FOREVER),  # headers on time, then silence
    Script(header_delay=FOREVER, chunks=Script.text_answer().chunks),  # not even headers
    Script(chunks=[(0.2, ": keep-alive\n\n")] * int(FOREVER / 0.2)
           + list(Script.text_answer().chunks)),
], ids=["silent-body", "no-headers", "keep-alives-only"])
def test_no_first_token_in_time(fake_backend: FakeBackend, script: Script) -> None:
    fake_backend.enqueue(script)  # the server would answer only after FOREVER
    with BackendClient(fake_backend.base_url, first_token_timeout=0.5,
                       stall_timeout=FOREVER) as slow:
        with pytest.raises(BackendTimeout, match="did not start answering within 0.5 s"):
            run_to_end(lambda: fold(slow.stream_chat(HELLO, None, {})))
    wait_until(lambda: fake_backend.disconnects == 1)  # the timeout ended it, not the server


def test_stall_after_the_answer_began(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER))
    seen: list[StreamEvent] = []
    # The first-token limit is also httpx's read timeout: FOREVER leaves the stall limit alone.
    with BackendClient(fake_backend.base_url, first_token_timeout=FOREVER,
                       stall_timeout=2) as slow:
        with pytest.raises(BackendTimeout, match="stopped sending for 2 s"):
            run_to_end(lambda: seen.extend(slow.stream_chat(HELLO, None, {})))
    assert [e.text for e in seen if isinstance(e, ContentDelta)] == ["Hello ", "from ", "the "]
    wait_until(lambda: fake_backend.disconnects == 1)  # the stall limit ended it, not the server


def test_a_slow_steady_stream_is_not_a_stall(fake_backend: FakeBackend) -> None:
    words = "one two three four five six seven eight"  # 3.2 s in all, 0.4 s apart
    fake_backend.enqueue(Script.text_answer(words, delay=0.4))
    with BackendClient(fake_backend.base_url, first_token_timeout=2, stall_timeout=2) as slow:
        answer = fold(slow.stream_chat(HELLO, None, {}))
    assert answer.content == words


def test_close_from_another_thread_ends_quietly_and_disconnects(
    fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER))
    # Only close() can end this stream: no timeout (httpx's read timeout included) comes.
    patient = BackendClient(fake_backend.base_url, first_token_timeout=FOREVER,
                            stall_timeout=FOREVER)
    stream = patient.stream_chat(HELLO, None, {})
    seen = [next(stream), next(stream)]  # model name, "Hello "

    def close_while_reading() -> None:
        wait_until(lambda: stream._reader is not None)  # the reader below is in a read
        stream.close()

    threading.Thread(target=close_while_reading, daemon=True).start()
    seen += run_to_end(lambda: list(stream))  # blocks reading until the other thread closes
    assert Done() not in seen
    wait_until(lambda: fake_backend.disconnects == 1)
    stream.close()  # again: harmless
    assert list(stream) == []
    patient.close()


def test_a_stall_while_nobody_reads_is_raised_at_the_next_read(fake_backend: FakeBackend) -> None:
    """The reader was busy elsewhere when the stall limit passed: its next read says so (the
    answer broke off), rather than ending as if the answer were whole or stopped."""
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER))
    with BackendClient(fake_backend.base_url, first_token_timeout=PATIENCE,
                       stall_timeout=0.5) as hasty:
        stream = hasty.stream_chat(HELLO, None, {})
        seen = [next(stream), next(stream)]  # model name, "Hello "
        assert ContentDelta("Hello ") in seen
        time.sleep(1.5)  # not reading: the limit passes between two reads
        with pytest.raises(BackendTimeout, match="stopped sending"):
            next(stream)
    wait_until(lambda: fake_backend.disconnects == 1)


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
    silent = Script.stall(after_chunks=0, seconds=FOREVER).chunks  # headers, then nothing
    fake_backend.enqueue(Script(header_delay=1.0, chunks=silent))
    stream = client.stream_chat(HELLO, None, {})

    def close_once_asked() -> None:
        wait_until(lambda: fake_backend.requests)
        stream.close()

    threading.Thread(target=close_once_asked, daemon=True).start()
    assert list(stream) == []  # ignoring the close, it would end in BackendTimeout
    wait_until(lambda: fake_backend.disconnects == 1)


def test_close_while_the_headers_are_long_in_coming_ends_at_once(
    fake_backend: FakeBackend
) -> None:
    """A Stop while the server reads a long prompt (no status line yet) is not kept waiting
    for the headers: the read is cancelled and the connection closed, so the server sees it."""
    fake_backend.enqueue(Script(header_delay=FOREVER, chunks=[]))
    patient = BackendClient(fake_backend.base_url, first_token_timeout=FOREVER,
                            stall_timeout=FOREVER)
    stream = patient.stream_chat(HELLO, None, {})

    def close_once_asked() -> None:
        wait_until(lambda: fake_backend.requests)
        stream.close()

    threading.Thread(target=close_once_asked, daemon=True).start()
    assert run_to_end(lambda: list(stream)) == []  # within PATIENCE, not FOREVER
    wait_until(lambda: fake_backend.disconnects == 1)
    patient.close()


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
    with BackendClient(fake_backend.base_url, connect_timeout=PATIENCE) as shared:
        streams = [shared.stream_chat(HELLO, None, {}) for _ in range(50)]
        for stream in streams:  # every stream holds its connection open at the same time
            next(stream)
        answers = [fold(stream) for stream in streams]
    assert all(a.content == "Hello from the fake backend." for a in answers)


class _BreaksMidway(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'
        raise httpx.ReadError("connection reset by peer")


@pytest.mark.parametrize(("response", "error", "words"), [
    (httpx.Response(200, stream=_BreaksMidway()), BackendError, "broke"),
    (httpx.Response(200, json={"choices": [{"message": {"content": "Hi"}}]}),
     StreamProtocolError, "did not send an event stream"),
])
def test_injected_transport(response: httpx.Response, error: type, words: str) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))
    with BackendClient("http://model.test/v1", stream_http=http) as mocked:
        with pytest.raises(error, match=words):
            fold(mocked.stream_chat(HELLO, None, {}))
    assert not http.is_closed  # the caller's client stays the caller's


# ----- how a stream ends (a cut-off answer is not a complete one) ----------------------


def test_a_body_that_ends_without_done_is_complete_only_after_a_finish_reason(
    fake_backend: FakeBackend, client: BackendClient
) -> None:
    fake_backend.enqueue(Script.sse([
        {"model": "m", "choices": [{"index": 0, "delta": {"content": "All of it."}}]},
        {"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ], done=False))  # some servers never send [DONE]: the finish reason says it is whole
    answer = fold(client.stream_chat(HELLO, None, {}))
    assert answer.done and answer.finish_reason == "stop" and answer.content == "All of it."

    fake_backend.enqueue(Script.sse([
        {"model": "m", "choices": [{"index": 0, "delta": {"content": "The first half"}}]},
        {"model": "m", "choices": [{"index": 0, "delta": {"content": " of an ans"}}]},
    ], done=False))  # the server (or a proxy) closes the body cleanly mid-answer
    received: list[StreamEvent] = []
    with (pytest.raises(StreamProtocolError, match="ended the answer early"),
          client.stream_chat(HELLO, None, {}) as stream):
        for event in stream:
            received.append(event)  # noqa: PERF402 - keep what came before the error
    assert [e.text for e in received if isinstance(e, ContentDelta)] == [
        "The first half", " of an ans"]
    assert Done() not in received


_SSE_BODY = (b'data: {"model": "m", "choices": [{"index": 0, "delta": {"content": "Hello"}}]}\n\n'
             b"data: [DONE]\n\n")
_SSE_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(_SSE_BODY), _SSE_BODY))


def _read_request(conn: socket.socket) -> bytes:
    """One whole HTTP request (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += conn.recv(65536)
    return head


def test_a_kept_alive_connection_that_dies_under_the_request_is_tried_again() -> None:
    """The server closes the kept-alive connection as the next request arrives (or the
    pool closed it under the request): nothing of the answer came, so the request goes
    again on a new connection, once, and the answer arrives."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    connections: list[int] = []

    def serve() -> None:
        with listener:
            first, _ = listener.accept()
            with first:
                connections.append(1)
                _read_request(first)
                first.sendall(_SSE_RESPONSE)  # kept alive
                _read_request(first)  # the second request: closed without an answer
            second, _ = listener.accept()
            with second:
                connections.append(2)
                _read_request(second)
                second.sendall(_SSE_RESPONSE)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    with BackendClient(f"http://127.0.0.1:{port}/v1", first_token_timeout=PATIENCE) as backend:
        assert fold(backend.stream_chat(HELLO, None, {})).content == "Hello"
        assert fold(backend.stream_chat(HELLO, None, {})).content == "Hello"
    server.join(PATIENCE)
    assert connections == [1, 2]
