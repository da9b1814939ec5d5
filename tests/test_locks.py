"""KeyedLocks: one lock per key while in use, none kept after."""

from __future__ import annotations

import threading
import time

from chatui.locks import KeyedLocks


def test_one_key_is_held_by_one_thread_at_a_time_and_the_table_empties() -> None:
    locks = KeyedLocks()
    inside = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}
    guard = threading.Lock()
    start = threading.Barrier(8)

    def work(key: str) -> None:
        start.wait()
        for _ in range(300):
            with locks.hold(key):
                with guard:
                    inside[key] += 1
                    most[key] = max(most[key], inside[key])
                time.sleep(0)  # let another thread run while this one is inside
                with guard:
                    inside[key] -= 1

    threads = [threading.Thread(target=work, args=("ab"[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0


def test_a_thread_can_hold_a_key_again_and_others_wait_until_it_lets_go() -> None:
    locks = KeyedLocks()
    got_it = threading.Event()

    def other() -> None:
        with locks.hold("k"):
            got_it.set()

    with locks.hold("k"), locks.hold("k"):
        assert len(locks) == 1
        thread = threading.Thread(target=other)
        thread.start()
        assert not got_it.wait(0.05)  # still ours (a negative: nothing to wait for)
    thread.join()
    assert got_it.is_set() and len(locks) == 0


def test_many_keys_asked_once_leave_nothing() -> None:
    locks = KeyedLocks()
    for number in range(20_000):
        with locks.hold(f"id-{number}"):
            pass
    assert len(locks) == 0
