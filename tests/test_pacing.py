"""The page always shows the newest state: a slow reader skips stale steps.

When Gradio takes longer than a frame to send a screen, the steps that arrived
meanwhile must collapse into the newest one. Before, the reader took the oldest
queued step each frame, so a 1,000-token answer advanced one token per frame.
(``ui.pacing.frames`` reading an ``Answer``; it replaced ``ui.pump.Pump``.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from chatui.answer import Answer, Progress
from chatui.tree import Message, new_conversation
from chatui.ui.pacing import frames

TOKENS = 400


def _answer(text: str) -> Message:
    return Message(id="a", parent_id=None, role="assistant", content=text, created_at=0.0)


def _started(job: Iterator[Progress]) -> Answer:
    answer = Answer("chat")
    ended = threading.Event()
    answer.run(job, on_end=ended.set)
    return answer


def _steps(first_shown: threading.Event, burst_done: threading.Event,
           second_shown: threading.Event) -> Iterator[Progress]:
    """One token, then (while the page sends it) all the others, then the end."""
    conversation = new_conversation()
    text = ""
    for number in range(TOKENS):
        if number == 1:
            assert first_shown.wait(timeout=60)
        text += f"t{number} "
        yield Progress(conversation, _answer(text), content_delta=f"t{number} ")
    burst_done.set()
    second_shown.wait(timeout=60)


def test_a_slow_reader_gets_the_newest_step_not_the_oldest() -> None:
    first_shown, burst_done, second_shown = threading.Event(), threading.Event(), threading.Event()
    answer = _started(_steps(first_shown, burst_done, second_shown))
    shown: list[str] = []
    for step in frames(answer, interval=0.0, quiet_after=60.0):
        assert step is not None
        shown.append(step.message.content)
        if len(shown) == 1:
            first_shown.set()
            assert burst_done.wait(timeout=60)  # the page was slow: every token came meanwhile
        else:
            second_shown.set()
    assert len(shown) == 2, f"{len(shown)} frames: stale steps were shown one per frame"
    assert shown[0] == "t0 "
    assert shown[1].endswith(f"t{TOKENS - 1} ")


def test_frames_only_grow() -> None:
    first_shown, burst_done, second_shown = threading.Event(), threading.Event(), threading.Event()
    first_shown.set()
    second_shown.set()
    answer = _started(_steps(first_shown, burst_done, second_shown))
    sizes = [len(step.message.content) for step in frames(answer, 0.0, 60.0) if step is not None]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert burst_done.is_set()


def test_an_error_of_the_answer_is_raised_after_the_steps() -> None:
    partial_shown = threading.Event()

    def failing() -> Iterator[Progress]:
        yield Progress(new_conversation(), _answer("partial"), content_delta="partial")
        assert partial_shown.wait(timeout=60)
        raise RuntimeError("upstream broke")

    shown: list[str] = []
    try:
        for step in frames(_started(failing()), 0.0, 60.0):
            assert step is not None
            shown.append(step.message.content)
            partial_shown.set()
    except RuntimeError as error:
        assert "upstream broke" in str(error)
    else:
        raise AssertionError("the answer's error was swallowed")
    assert shown == ["partial"]


def test_a_quiet_answer_is_announced_once() -> None:
    release, late_shown = threading.Event(), threading.Event()

    def slow() -> Iterator[Progress]:
        assert release.wait(timeout=60)
        yield Progress(new_conversation(), _answer("late"), content_delta="late")
        assert late_shown.wait(timeout=60)

    shown: list[str | None] = []
    for step in frames(_started(slow()), interval=0.0, quiet_after=0.01):
        shown.append(None if step is None else step.message.content)
        release.set()
        if step is not None:
            late_shown.set()
    assert shown == [None, "late"]


def test_a_quiet_answer_beats_with_a_heartbeat_so_a_closed_page_can_let_go() -> None:
    release, late_shown = threading.Event(), threading.Event()

    def paused() -> Iterator[Progress]:
        yield Progress(new_conversation(), _answer("early"), content_delta="early")
        assert release.wait(timeout=60)  # the model pauses until the reader has beaten twice
        yield Progress(new_conversation(), _answer("early late"), content_delta=" late")
        assert late_shown.wait(timeout=60)

    shown: list[str | None] = []
    for step in frames(_started(paused()), interval=0.0, quiet_after=60.0, heartbeat=0.01):
        shown.append(None if step is None else step.message.content)
        if shown.count(None) == 2:
            release.set()
        if step is not None and step.message.content == "early late":
            late_shown.set()
    assert shown[0] == "early" and shown[-1] == "early late"
    assert shown.count(None) >= 2  # a frame (Gradio's chance to close) while nothing came


def test_a_follower_is_paced_like_the_starter() -> None:
    first_shown, burst_done, second_shown = threading.Event(), threading.Event(), threading.Event()
    answer = _started(_steps(first_shown, burst_done, second_shown))
    follower = answer.follow()
    shown: list[str] = []
    for step in frames(follower, interval=0.0, quiet_after=60.0):
        assert step is not None
        shown.append(step.message.content)
        if len(shown) == 1:
            first_shown.set()
            assert burst_done.wait(timeout=60)
        else:
            second_shown.set()
    assert len(shown) == 2 and shown[1].endswith(f"t{TOKENS - 1} ")
    follower.close()
    assert answer.readers == 1  # the starter, still attached


def test_the_last_words_are_a_frame_of_their_own_when_the_answer_ends() -> None:
    """Words that came within a frame's interval of the end are yielded as a step: the
    page shows them without waiting for the screen of the whole stored chat."""
    def quick() -> Iterator[Progress]:
        conversation = new_conversation()
        yield Progress(conversation, _answer("t0 "), content_delta="t0 ")
        yield Progress(conversation, _answer("t0 t1 "), content_delta="t1 ")

    answer = _started(quick())
    shown = [step.message.content for step in frames(answer, interval=60.0, quiet_after=60.0)
             if step is not None]
    assert shown[-1] == "t0 t1 ", shown


def test_a_long_chat_gets_fewer_frames_but_never_fewer_than_four_a_second() -> None:
    from chatui.ui.generation import frame_interval

    intervals = [frame_interval(rows) for rows in (0, 20, 200, 2_000, 20_000)]
    assert intervals == sorted(intervals) and intervals[0] < intervals[2]
    assert intervals[-1] <= 0.25
