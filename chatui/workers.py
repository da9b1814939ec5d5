"""Threads kept for the next job, so that starting one costs its starter nothing.

``threading.Thread.start`` returns only once the new thread runs: beside one busy
thread that is two hand-offs of the GIL, about 10 ms (0.08 ms on an idle
machine; measured on 2 cores, Python 3.11). An answer started two (its
runner and its question's write), both on the way to its first token, so 50
answers at once waited in line for the GIL before any asked the model.

``WORKERS.run(job, name)`` gives the job to an idle worker (a queue put), or
starts a worker with ``_thread.start_new_thread``, which does not wait for it.
A worker wears the job's name while it runs it (``chatui-answer``: what a
thread dump shows) and ``chatui-idle`` between jobs. Workers are daemons:
they never hold the process open. There are never more than the most jobs
ever run at once; idle ones wait on the queue, using no CPU, and a worker
idle for ``IDLE_SECONDS`` ends (after a burst of 50 answers, the 50 threads
go once the burst is a minute past).
"""

from __future__ import annotations

import _thread
import logging
import queue
import threading
from collections.abc import Callable

IDLE_NAME = "chatui-idle"
IDLE_SECONDS = 60.0  # a worker with no job for this long ends

log = logging.getLogger("chatui")


class Workers:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], str]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for a job, or about to

    def run(self, job: Callable[[], object], name: str) -> None:
        """Run ``job`` on a worker thread named ``name`` while it runs; returns at once.

        ``job`` handles its own errors: one that escapes is logged, and the worker lives on.
        """
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        self._jobs.put((job, name))
        if start:
            _thread.start_new_thread(self._work, ())

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                job, me.name = self._jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle == 0:  # a job is on its way to this idle worker: take it
                        continue
                    self._idle -= 1  # the others (or a new worker) take the jobs to come
                return
            try:
                job()
            except BaseException:
                log.exception("A background job failed")
            finally:
                me.name = IDLE_NAME
                with self._lock:
                    self._idle += 1


WORKERS = Workers()
