"""chatui.sse over recorded streams and edge cases; chatui.accumulate folding them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatui.accumulate import Accumulator
from chatui.errors import BackendStreamError, StreamProtocolError
from chatui.events import (
    ContentDelta,
    ContentWasReasoning,
    Done,
    FinishReason,
    ModelName,
    ReasoningDelta,
    ServerTimings,
    StreamEvent,
    ToolCallDelta,
    Usage,
)
from chatui.sse import lines_of, parse_stream
from chatui.tree import ToolCall

STREAMS = Path(__file__).parent / "streams"


def recorded(name: str) -> list[str]:
    return (STREAMS / name).read_text(encoding="utf-8").splitlines()


def fold(events: list[StreamEvent]) -> Accumulator:
    answer = Accumulator()
    for event in events:
        answer.add(event)
    return answer


def content_lines(*pieces: str) -> list[str]:
    """A minimal stream carrying ``pieces`` as content deltas."""
    lines = []
    for piece in pieces:
        chunk = {"model": "m", "choices": [{"index": 0, "delta": {"content": piece}}]}
        lines += [f"data: {json.dumps(chunk)}", ""]
    return [*lines, "data: [DONE]", ""]


LLAMA_TIMINGS = ServerTimings(23, 41.874, 8, 95.312, 83.934)

# name: (content, reasoning, model, finish reason, usage, server timings)
EXPECTED = {
    "llamacpp_timings.txt": ("The capital of France is Paris.", "",
                             "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", "stop", Usage(23, 8),
                             LLAMA_TIMINGS),
    "openai_usage.txt": ("Hello! How can I help you today?", "", "gpt-4o-mini-2024-07-18",
                         "stop", Usage(19, 10), None),
    "vllm_reasoning_content.txt": ("2 + 2 = **4**.", "Okay, the user wants 2 + 2. That is 4.",
                                   "Qwen/Qwen3-8B", "stop", Usage(17, 23), None),
    "reasoning_field.txt": ("Hi there!", "The user greets me.", "deepseek/deepseek-r1", "stop",
                            Usage(6, 12), None),
    "think_tags.txt": ("2 + 2 = **4**.", "\nOkay, 2+2 is 4. Simple. \n", "Qwen3-0.6B-Q8_0.gguf",
                       "stop", None, ServerTimings(14, 22.5, 21, 180.0, 116.667)),
    "think_missing_opener.txt": ("Hello! How can I help?",
                                 "Okay, the user just said hi. I'll greet back.\n",
                                 "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf", "stop", None, None),
    "tool_calls.txt": ("", "", "gpt-4o-2024-08-06", "tool_calls", None, None),
    "keepalive_comments.txt": ("Still here.", "", "Qwen3-0.6B-Q8_0.gguf", "stop", None, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_stream_assembles_the_answer(name: str) -> None:
    content, reasoning, model, finish, usage, timings = EXPECTED[name]
    events = list(parse_stream(recorded(name)))
    answer = fold(events)
    assert answer.content == content
    assert answer.reasoning == reasoning
    assert answer.model == model
    assert answer.finish_reason == finish
    assert answer.usage == usage
    assert answer.server_timings == timings
    assert events[-1] == Done() and events.count(Done()) == 1
    assert sum(isinstance(e, ModelName) for e in events) == 1
    assert all(e.text for e in events if isinstance(e, ContentDelta | ReasoningDelta))


def test_recorded_tool_calls_are_joined_from_fragments() -> None:
    answer = fold(list(parse_stream(recorded("tool_calls.txt"))))
    assert answer.tool_calls == (
        ToolCall("call_Wx3Ab7Kq", "get_weather", '{"city":"Paris","unit":"celsius"}'),
        ToolCall("call_Ty8Pm2Zr", "get_time", '{"tz": "Europe/Paris"}'),
    )
    assert all(json.loads(call.arguments) for call in answer.tool_calls)


def test_missing_opener_says_content_was_reasoning_once() -> None:
    events = list(parse_stream(recorded("think_missing_opener.txt")))
    assert events.count(ContentWasReasoning()) == 1


@pytest.mark.parametrize(("name", "error", "words"), [
    ("error_in_stream.txt", BackendStreamError, "Input prompt is too big compared to KV size"),
    ("error_line.txt", BackendStreamError, "Loading model"),
    ("malformed_json.txt", StreamProtocolError, "lo wor"),
])
def test_recorded_errors_raise_with_the_servers_words(name: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        list(parse_stream(recorded(name)))


def test_events_before_an_error_still_arrive() -> None:
    seen: list[StreamEvent] = []
    with pytest.raises(BackendStreamError):
        for event in parse_stream(recorded("error_in_stream.txt")):
            seen.append(event)
    assert fold(seen).content == "Let me"


@pytest.mark.parametrize(("lines", "words"), [
    (['event: error', 'data: {"message": "quota exceeded"}', ''], "quota exceeded"),
    (['data: {"error": "model crashed"}', ''], "model crashed"),
    (['error: out of memory', ''], "out of memory"),
])
def test_error_shapes(lines: list[str], words: str) -> None:
    with pytest.raises(BackendStreamError, match=words):
        list(parse_stream(lines))


@pytest.mark.parametrize("lines", [
    [],
    [": keep-alive", ""],
    ['{"choices": [{"message": {"content": "not streamed"}}]}'],
    ["<html><body>502 Bad Gateway</body></html>"],
    ["data: 42", ""],
])
def test_not_a_stream_is_a_protocol_error(lines: list[str]) -> None:
    with pytest.raises(StreamProtocolError):
        list(parse_stream(lines))


def test_stream_without_done_marker_but_with_a_finish_reason_ends_with_done() -> None:
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    lines = [*content_lines("Hi", " there")[:-2], f"data: {json.dumps(finish)}", ""]
    events = list(parse_stream(lines))
    assert fold(events).content == "Hi there"
    assert events[-2:] == [FinishReason("stop"), Done()]


def test_stream_cut_off_without_done_or_finish_reason_raises_after_what_arrived() -> None:
    events: list[StreamEvent] = []
    with pytest.raises(StreamProtocolError, match="ended the answer early"):
        for event in parse_stream(content_lines("<think>hm", " <", "/thi")[:-2]):
            events.append(event)  # noqa: PERF402 - keep what came before the error
    answer = fold(events)
    assert (answer.reasoning, answer.content) == ("hm </thi", "")  # held-back text released
    assert Done() not in events


def test_nothing_after_done_is_read() -> None:
    lines = [*content_lines("Hi"), "data: not json at all", ""]
    assert fold(list(parse_stream(lines))).content == "Hi"


def test_crlf_lines_and_missing_blank_lines_are_tolerated() -> None:
    lines = [line + "\r\n" for line in content_lines("a", "b") if line]
    assert fold(list(parse_stream(lines))).content == "ab"


def test_a_held_back_partial_tag_is_released_at_the_end() -> None:
    assert fold(list(parse_stream(content_lines("x <", "/thi")))).content == "x </thi"


def reference_split(text: str) -> tuple[str, str]:
    """The documented <think> rules, applied to the whole text at once."""
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        reasoning, tag, content = stripped[len("<think>"):].partition("</think>")
        return content.lstrip(), reasoning
    reasoning, tag, content = text.partition("</think>")
    return (content.lstrip(), reasoning) if tag else (text, "")


tag_soup = st.lists(st.sampled_from(
    ["<think>", "</think>", "<", "</", "<th", "think", ">", "a", "b c", " ", "\n"]
)).map("".join)


@given(text=tag_soup, cuts=st.lists(st.integers(min_value=0, max_value=60)))
def test_think_split_does_not_depend_on_chunk_boundaries(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:]) if text[a:b]]
    answer = fold(list(parse_stream(content_lines(*pieces))))
    assert (answer.content, answer.reasoning) == reference_split(text)


# Folding: the parts of chatui.accumulate the recorded streams above do not reach.


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tool_fragments_without_index_join_by_id_then_onto_the_last_call() -> None:
    answer = Accumulator()
    for event in [
        ToolCallDelta(None, "call_1", "search", '{"q": '),
        ToolCallDelta(None, "call_2", "open", '{"url": "x"}'),
        ToolCallDelta(None, "call_1", None, '"cats"}'),
        ToolCallDelta(None, None, None, ""),
    ]:
        answer.add(event)
    assert answer.tool_calls == (
        ToolCall("call_1", "search", '{"q": "cats"}'), ToolCall("call_2", "open", '{"url": "x"}'),
    )


def test_client_timings_from_the_clock() -> None:
    clock = FakeClock()
    answer = Accumulator(clock=clock)
    for at, event in [(0.4, ModelName("m")), (1.0, ContentDelta("a")), (1.5, ContentDelta("b")),
                      (2.0, ContentDelta("c")), (2.5, FinishReason("stop")), (2.5, Done())]:
        clock.now = at
        answer.add(event)
    clock.now = 99.0  # reading later changes nothing
    timings = answer.timings()
    assert (timings.source, timings.generated_tokens) == ("client", 3)
    assert timings.ttft_ms == pytest.approx(1000.0)
    assert timings.tokens_per_second == pytest.approx(2.0)
    assert timings.total_ms == pytest.approx(2500.0)


def test_client_timings_count_the_servers_usage_when_sent() -> None:
    clock = FakeClock()
    answer = Accumulator(clock=clock)
    for at, event in [(1.0, ContentDelta("ab")), (2.0, ContentDelta("cd")), (2.0, Usage(7, 5))]:
        clock.now = at
        answer.add(event)
    timings = answer.timings()
    assert (timings.prompt_tokens, timings.generated_tokens) == (7, 5)
    assert timings.tokens_per_second == pytest.approx(4.0)


def test_server_timings_are_preferred() -> None:
    clock = FakeClock()
    answer = Accumulator(clock=clock)
    clock.now = 0.3
    answer.add(ContentDelta("a"))
    answer.add(LLAMA_TIMINGS)
    timings = answer.timings()
    assert timings.source == "server"
    assert (timings.prompt_tokens, timings.generated_tokens) == (23, 8)
    assert timings.tokens_per_second == pytest.approx(83.934)
    assert timings.ttft_ms == pytest.approx(300.0)


def test_no_tokens_means_no_speed() -> None:
    timings = Accumulator(clock=FakeClock()).timings()
    assert (timings.ttft_ms, timings.tokens_per_second, timings.generated_tokens) == (None, None, 0)


# ----- lines_of: the body's text, cut anywhere, into lines ----------------------------


def _cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@given(st.lists(st.text(alphabet="ab \u2028{}\"", max_size=8), max_size=6),
       st.sampled_from(["\n", "\r\n", "\r"]), st.lists(st.integers(0, 80), max_size=8))
def test_lines_are_the_same_wherever_the_body_was_cut(lines: list[str], end: str,
                                                     cuts: list[int]) -> None:
    text = "".join(line + end for line in lines)
    assert list(lines_of(_cut(text, cuts))) == lines


def test_a_line_separator_inside_json_is_text_and_the_answer_keeps_it() -> None:
    # llama-server writes U+2028 as it is; str.splitlines (httpx's iter_lines) cut there.
    chunk = {"model": "m", "choices": [{"index": 0, "delta": {"content": "a\u2028b"}}]}
    body = f"data: {json.dumps(chunk, ensure_ascii=False)}\n\ndata: [DONE]\n\n"
    assert "\u2028" in body
    assert fold(list(parse_stream(lines_of([body])))).content == "a\u2028b"
