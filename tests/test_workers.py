"""chatui.workers: jobs run on kept threads, started without waiting for them."""

from __future__ import annotations

import threading

import pytest

from chatui.workers import IDLE_NAME, Workers
from tests.polling import PATIENCE, wait_until


def test_a_finished_jobs_thread_runs_the_next_and_a_busy_one_does_not() -> None:
    workers = Workers()
    release = threading.Event()
    seen: list[tuple[str, int]] = []

    def job() -> None:
        seen.append((threading.current_thread().name, threading.get_ident()))
        release.wait(PATIENCE)

    workers.run(job, "first")
    workers.run(job, "second")  # the first is still busy: another thread
    wait_until(lambda: len(seen) == 2, message="the jobs did not start")
    assert {name for name, _ in seen} == {"first", "second"}
    assert seen[0][1] != seen[1][1]
    release.set()
    wait_until(lambda: workers._idle == 2, message="the workers did not go idle")
    names = [t.name for t in threading.enumerate() if t.ident in {i for _, i in seen}]
    assert names == [IDLE_NAME, IDLE_NAME]

    workers.run(job, "third")
    wait_until(lambda: len(seen) == 3, message="the third job did not start")
    assert seen[2][1] in {seen[0][1], seen[1][1]}  # kept, not started anew


def test_run_returns_before_the_job_has_run() -> None:
    workers = Workers()
    gate, ran = threading.Event(), threading.Event()

    def job() -> None:
        gate.wait(PATIENCE)
        ran.set()

    workers.run(job, "waiting")
    assert not ran.is_set()
    gate.set()
    assert ran.wait(PATIENCE)


def test_a_job_that_raises_is_logged_and_its_worker_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = Workers()
    idents: list[int] = []

    def fails() -> None:
        idents.append(threading.get_ident())
        raise RuntimeError("boom")

    workers.run(fails, "failing")
    wait_until(lambda: workers._idle == 1, message="the worker did not go idle")
    workers.run(fails, "failing again")
    wait_until(lambda: len(idents) == 2 and workers._idle == 1, message="no second run")
    assert idents[0] == idents[1]
    assert caplog.text.count("RuntimeError: boom") == 2
