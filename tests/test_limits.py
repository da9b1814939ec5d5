"""Per-user limits: the counts themselves, and the chat service admitting every answer through them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.config import Config
from chatui.errors import LimitExceeded
from chatui.limits import Limits, UserLimits
from chatui.runtime import limits_for
from chatui.service import ChatService
from chatui.filestore import FileStore
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_at_once_are_counted_per_user() -> None:
    limits = Limits(UserLimits(concurrent_answers=2, answers_per_minute=0))
    first, second = limits.admit("alice"), limits.admit("alice")
    with pytest.raises(LimitExceeded, match="already have 2 answers being generated"):
        limits.admit("alice")
    with limits.admit("bob"):  # someone else is not affected
        assert limits.running("bob") == 1
    first.release()
    first.release()  # twice is once
    assert limits.running("alice") == 1
    limits.admit("alice").release()
    second.release()
    assert limits.running("alice") == 0


def test_answers_per_minute_slide_and_say_when_to_retry() -> None:
    clock = FakeClock()
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=3), clock=clock)
    for second in range(3):
        clock.now = 1000.0 + second
        limits.admit("alice").release()
    clock.now = 1010.0
    with pytest.raises(LimitExceeded, match="started 3 answers in the last minute") as refused:
        limits.admit("alice")
    assert refused.value.retry_after == 50  # the first one leaves the window at 1060
    limits.admit("bob").release()
    with pytest.raises(LimitExceeded):  # a refused attempt does not push the window out
        limits.admit("alice")
    clock.now = 1060.0
    limits.admit("alice").release()
    with pytest.raises(LimitExceeded):
        limits.admit("alice")


def test_documents_limit_says_how_many_more_fit() -> None:
    limits = Limits(UserLimits(max_documents=5))
    limits.check_documents("alice", stored=3, adding=2)
    with pytest.raises(LimitExceeded, match="only 2 more can be added"):
        limits.check_documents("alice", stored=3, adding=3)
    with pytest.raises(LimitExceeded, match="no more can be added"):
        limits.check_documents("alice", stored=5, adding=1)


def test_zero_means_no_limit_and_the_local_user_has_none() -> None:
    limits = Limits(UserLimits.none())
    held = [limits.admit("local") for _ in range(100)]
    limits.check_documents("local", stored=10_000, adding=10_000)
    assert limits.running("local") == 100
    for admission in held:
        admission.release()
    assert limits_for(Config()).settings == UserLimits.none()
    shared = limits_for(Config(auth=(("a", "b"),), user_concurrency=3,
                               user_requests_per_minute=7, user_max_documents=9))
    assert shared.settings == UserLimits(3, 7, 9)
    assert limits_for(Config(anonymous_users=True)).settings == UserLimits()


# ----- anonymous visitors: also per network address ---------------------------------------


def test_anonymous_visitors_also_count_against_their_address() -> None:
    clock = FakeClock()
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=3), clock=clock)
    for visitor in ("anon:a", "anon:b", "anon:c"):  # three fresh cookies, one machine
        limits.admit(visitor, "192.0.2.1").release()
    with pytest.raises(LimitExceeded, match="Your network address has started 3 answers") as no:
        limits.admit("anon:d", "192.0.2.1")
    assert no.value.retry_after == 60
    limits.admit("anon:d", "192.0.2.2").release()  # another address is someone else
    limits.admit("alice", "192.0.2.1").release()  # a login is counted as herself only
    limits.admit("local", "192.0.2.1").release()
    with pytest.raises(LimitExceeded):  # the refusal counted nowhere: still full
        limits.admit("anon:a", "192.0.2.1")
    clock.now += 60
    limits.admit("anon:e", "192.0.2.1").release()


def test_an_ipv6_host_is_its_64_and_spellings_do_not_matter() -> None:
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=2), clock=FakeClock())
    limits.admit("anon:a", "2001:db8:0:1::1").release()
    limits.admit("anon:b", "2001:db8:0:1:ffff:ffff:ffff:ffff").release()
    with pytest.raises(LimitExceeded, match="network address"):
        limits.admit("anon:c", "2001:0db8:0000:0001::abcd")
    limits.admit("anon:c", "2001:db8:0:2::1").release()  # the next /64 is another host
    limits.admit("anon:d", "192.0.2.9").release()
    limits.admit("anon:e", "::ffff:192.0.2.9").release()  # the same IPv4, mapped
    with pytest.raises(LimitExceeded):
        limits.admit("anon:f", "192.0.2.9")


def test_answers_at_once_per_address_are_given_back_on_release() -> None:
    limits = Limits(UserLimits(concurrent_answers=2, answers_per_minute=0))
    first, second = limits.admit("anon:a", "192.0.2.1"), limits.admit("anon:b", "192.0.2.1")
    with pytest.raises(LimitExceeded, match="Your network address already has 2 answers"):
        limits.admit("anon:c", "192.0.2.1")
    assert limits.running("anon:a") == 1  # the refused attempt counted nowhere
    first.release()
    first.release()
    with limits.admit("anon:c", "192.0.2.1"):
        assert limits.running("anon:c") == 1
    second.release()
    held = [limits.admit(f"anon:{n}", "192.0.2.1") for n in range(2)]
    assert len(held) == 2  # everything was given back


def test_anonymous_answers_without_an_address_share_one_bucket() -> None:
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=2), clock=FakeClock())
    limits.admit("anon:a").release()
    limits.admit("anon:b", None).release()
    with pytest.raises(LimitExceeded, match="network address"):
        limits.admit("anon:c", "")
    limits.admit("anon:c", "192.0.2.1").release()


def test_one_off_visitors_are_forgotten_but_recent_answers_still_count() -> None:
    clock = FakeClock()
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=1), clock=clock)
    for number in range(500):  # a stream of visitors that each come once, from many places
        limits.admit(f"anon:{number}", f"10.0.{number // 250}.{number % 250}").release()
    clock.now = 1065.0
    limits.admit("bob").release()
    clock.now = 1070.0  # a minute after the visitors: their windows are empty now
    limits.admit("carol").release()
    assert set(limits._started) == {"bob", "carol"}  # the memory they held is given back
    with pytest.raises(LimitExceeded):
        limits.admit("bob")  # bob's answer five seconds ago still counts


def test_the_local_user_stays_unlimited_wherever_it_comes_from() -> None:
    limits = limits_for(Config())
    held = [limits.admit("local", "127.0.0.1") for _ in range(50)]
    assert limits.running("local") == 50
    for admission in held:
        admission.release()


# ----- through the chat service ------------------------------------------------------


@pytest.fixture
def service(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[ChatService]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=5, stall_timeout=5)
    store = FileStore(tmp_path / "data")
    limits = Limits(UserLimits(concurrent_answers=1, answers_per_minute=0))
    yield ChatService(store, client, default_model="fake-model", limits=limits)
    client.close()
    store.close()


def test_a_user_at_the_limit_is_refused_before_anything_is_stored(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=1, seconds=20, text="one two three"))
    first, second = service.create("alice"), service.create("alice")
    theirs = service.create("bob")
    running = service.start_send(first.id, "a long answer, please", owner="alice").events()
    next(running)  # the first token has arrived: alice has one answer streaming
    with pytest.raises(LimitExceeded, match="already have 1 answer being generated"):
        next(service.start_send(second.id, "and another", owner="alice").events())
    assert service.conversation(second.id, "alice").messages == {}  # nothing stored, title unchanged
    assert service.conversation(second.id, "alice").title == "New chat"
    assert not service.is_generating(second.id, "alice")

    bobs = list(service.start_send(theirs.id, "hello", owner="bob").events())  # bob is served meanwhile
    assert bobs[-1].done and bobs[-1].message.content == "Hello from the fake backend."

    running.close()  # Stop: the slot is free again
    assert service.limits.running("alice") == 0
    answered = list(service.start_send(second.id, "and another", owner="alice").events())
    assert answered[-1].message.status == "complete"


def test_every_kind_of_answer_counts(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("first answer"),
                         Script.stall(after_chunks=1, seconds=20, text="held answer here"))
    chat, other = service.create("alice"), service.create("alice")
    list(service.start_send(chat.id, "question", owner="alice").events())
    answer = tree.active_path(service.conversation(chat.id, "alice"))[-1]
    held = service.start_send(other.id, "hold this", owner="alice").events()
    next(held)
    attempts = {
        "regenerate": lambda: service.start_regenerate(chat.id, answer.id, owner="alice").events(),
        "continue": lambda: service.start_continue(chat.id, answer.id, owner="alice").events(),
        "answer": lambda: service.start_retry(chat.id, answer.parent_id or "", owner="alice").events(),
        "edit": lambda: service.start_edit(chat.id, answer.parent_id or "", "new", owner="alice").events(),
    }
    for name, attempt in attempts.items():
        with pytest.raises(LimitExceeded):
            next(attempt())
        assert len(service.conversation(chat.id, "alice").messages) == 2, name
    held.close()


def test_two_threads_racing_for_the_last_slot_get_it_once(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(*[Script.stall(after_chunks=1, seconds=20) for _ in range(8)])
    chats = [service.create("alice") for _ in range(8)]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    generations = []
    lock = threading.Lock()

    def race(chat_id: str) -> None:
        barrier.wait()
        try:  # starting is eager: admitted, or refused, before it returns
            steps = service.start_send(chat_id, "go", owner="alice").events()
            next(steps)
            result = "streaming"
        except LimitExceeded:
            result = "refused"
        with lock:
            outcomes.append(result)
            if result == "streaming":
                generations.append(steps)

    threads = [threading.Thread(target=race, args=(chat.id,)) for chat in chats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["streaming"]
    for steps in generations:
        steps.close()
    assert service.limits.running("alice") == 0


def test_the_service_counts_an_anonymous_visitors_address(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    client = BackendClient(fake_backend.base_url, first_token_timeout=5, stall_timeout=5)
    store = FileStore(tmp_path / "data")
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=2), clock=FakeClock())
    service = ChatService(store, client, default_model="fake-model", limits=limits)
    try:
        for visitor in ("anon:one", "anon:two"):
            chat = service.create(visitor)
            assert list(service.start_send(chat.id, "hi", owner=visitor,
                                     address="198.51.100.4").events())[-1].done
        third = service.create("anon:three")
        with pytest.raises(LimitExceeded, match="network address"):
            next(service.start_send(third.id, "hi", owner="anon:three", address="198.51.100.4").events())
        assert service.conversation(third.id, "anon:three").messages == {}  # nothing stored
        assert list(service.start_send(third.id, "hi", owner="anon:three",
                                 address="198.51.100.5").events())[-1].done
        assert len(fake_backend.requests) == 3
    finally:
        client.close()
        store.close()
