"""An answer belongs to the server: readers come and go, only Stop (or a delete) ends it.

``Answer.follow`` gives a page that opens the chat again the answer so far and
then the rest; a page that leaves detaches its reader and the answer is stored
as it ends. ``ChatService.answering`` / ``follow`` / ``stop`` are scoped by owner.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import cast

import pytest

from chatui.client import BackendClient
from chatui.errors import NotFound
from chatui.filestore import FileStore
from chatui.service import ChatService
from chatui.ui import generation
from chatui.ui.screen import Screen, View
from tests.fakebackend import FakeBackend, Script
from tests.polling import PATIENCE, Hold, wait_until

WORDS = " ".join(f"w{number}" for number in range(1, 21))


@pytest.fixture
def service(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[ChatService]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=PATIENCE,
                           stall_timeout=PATIENCE)
    store = FileStore(tmp_path / "data")
    yield ChatService(store, client, default_model="fake-model")
    client.close()
    store.close()


@pytest.fixture
def hold(fake_backend: FakeBackend) -> Iterator[Hold]:
    """The next answer plays 3 words, then waits for ``release()``."""
    gate = Hold(after=3)
    fake_backend.enqueue(Script(chunks=gate(Script.text_answer(WORDS).chunks)))
    try:
        yield gate
    finally:
        gate.release()


def _shown(step_lists: list) -> str:
    return step_lists[-1].message.content if step_lists else ""


def test_a_follower_gets_the_answer_so_far_then_the_rest(service: ChatService, hold: Hold
                                                         ) -> None:
    answer = service.start_chat("Count", owner="alice")
    wait_until(lambda: answer._latest is not None and "w3" in answer._latest.message.content)
    follower = service.follow(answer.conversation_id, "alice")
    assert follower is not None and answer.readers == 2
    steps, ended = follower.take(PATIENCE)
    assert _shown(steps) == "w1 w2 w3 " and not ended  # replayed at once
    hold.release()
    text = ""
    while True:
        steps, ended = follower.take(PATIENCE)
        text = _shown(steps) or text
        if ended:
            break
    assert text.endswith("w20")
    follower.close()
    follower.close()  # idempotent
    assert answer.readers == 1  # the starter, which never took: nothing is lost for it
    assert [step.message.content for step in answer.events()][-1].endswith("w20")


def test_a_detached_starter_leaves_the_answer_running_and_stored(
        service: ChatService, hold: Hold, fake_backend: FakeBackend) -> None:
    answer = service.start_chat("Count", owner="alice")
    wait_until(lambda: answer._latest is not None)
    answer.detach()
    assert answer.readers == 0 and not answer.ended
    assert service.answering("alice") == {answer.conversation_id}
    hold.release()
    assert answer.wait(PATIENCE)
    assert answer._pending == []  # a starter that left keeps nothing piling up
    stored = service.conversation(answer.conversation_id, "alice")
    final = stored.message(stored.current_leaf_id or "")
    assert final.status == "complete" and final.content.endswith("w20")
    assert fake_backend.disconnects == 0
    assert service.answering("alice") == frozenset()


def test_answering_follow_and_stop_are_the_owners_alone(service: ChatService, hold: Hold
                                                        ) -> None:
    quiet = service.create("bob")
    answer = service.start_chat("Count", owner="alice")
    cid = answer.conversation_id
    assert service.answering("alice") == {cid}
    assert service.answering("bob") == frozenset()
    assert service.follow(quiet.id, "bob") is None  # nothing to follow in a quiet chat
    with pytest.raises(NotFound):
        service.follow(cid, "bob")
    with pytest.raises(NotFound):
        service.stop(cid, "bob")
    assert not answer.stopped and answer.readers == 1
    assert service.stop(cid, "alice")  # from any tab of alice's: a call with her name
    assert answer.wait(PATIENCE) and answer.stopped


def test_a_rename_claim_is_not_an_answer(service: ChatService) -> None:
    chat = service.create("alice")
    service.rename(chat.id, "Renamed", "alice")
    assert service.answering("alice") == frozenset()


def test_closing_the_pages_generator_detaches_and_the_answer_goes_on(
        service: ChatService, hold: Hold, fake_backend: FakeBackend) -> None:
    screens = cast(Generator[Screen, None, None],
                   generation.send(service, "alice", View(), "Count", _form(service)))
    for screen in screens:
        if screen.chat and "w3" in str(screen.chat[-1]):
            break
    (cid,) = service.answering("alice")
    answer = service._running[cid]
    assert answer.readers == 1
    screens.close()  # what Gradio does when the page goes away or another chat is opened
    assert answer.readers == 0 and not answer.ended and not answer.stopped
    follow = generation.follow(service, "alice", View(conversation_id=cid))
    first = next(follow)
    assert first.view.generating and "w3" in str(first.chat)  # re-attached: the text so far
    hold.release()
    last = list(follow)[-1]
    assert not last.view.generating and "w20" in str(last.chat)
    assert answer.readers == 0
    assert fake_backend.disconnects == 0


def test_the_model_list_does_not_wait_for_a_running_answer(
        service: ChatService, hold: Hold, fake_backend: FakeBackend) -> None:
    assert service.models() == ["fake-model"]
    asked = sum(1 for r in fake_backend.received if r.path.endswith("/models"))
    answer = service.start_chat("Count", owner="alice")
    wait_until(lambda: answer._latest is not None)
    assert service.models() == ["fake-model"]  # a one-slot server would answer it late
    assert sum(1 for r in fake_backend.received if r.path.endswith("/models")) == asked


def _form(service: ChatService) -> tuple:
    from chatui.ui.screen import settings_to_form

    return settings_to_form(service.defaults)
