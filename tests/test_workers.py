"""chatui.workers: jobs run on kept threads, started without waiting for them."""

from __future__ import annotations

import os
import threading

import pytest

from chatui import workers as workers_module
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


def os_threads() -> set[int]:
    """The process's threads as the kernel lists them (``threading`` keeps the workers,
    started by ``_thread``, as dummies that never die)."""
    return {int(name) for name in os.listdir("/proc/self/task")}


def test_a_worker_idle_for_long_ends_and_a_later_job_still_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers_module, "IDLE_SECONDS", 0.2)
    workers = Workers()
    release = threading.Event()
    idents: list[int] = []
    before = os_threads()

    def job() -> None:
        idents.append(threading.get_native_id())
        release.wait(PATIENCE)

    for number in range(5):
        workers.run(job, f"burst {number}")
    wait_until(lambda: len(idents) == 5, message="the burst did not start")
    assert set(idents) <= os_threads() and len(set(idents)) == 5
    release.set()

    wait_until(lambda: not set(idents) & os_threads(), message="idle workers did not end")
    assert workers._idle == 0 and os_threads() <= before
    done = threading.Event()
    workers.run(done.set, "after")
    assert done.wait(PATIENCE)


def test_jobs_sent_while_workers_time_out_all_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module, "IDLE_SECONDS", 0.001)  # idle workers end at once
    workers = Workers()
    ran: list[int] = []
    lock = threading.Lock()

    def job(number: int) -> None:
        with lock:
            ran.append(number)

    for number in range(300):
        workers.run(lambda n=number: job(n), "racing")  # type: ignore[misc]
        if number % 7 == 0:
            threading.Event().wait(0.002)  # let some workers go idle and time out
    wait_until(lambda: len(ran) == 300, message=f"{300 - len(ran)} jobs never ran")
    assert sorted(ran) == list(range(300))
