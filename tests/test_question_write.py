"""The question's store write runs beside the model request (issue 14 item 1).

A real store on disk and the scripted model server on 127.0.0.1: the store's
write of the question is held until the model server has received the request,
which only happens if the request starts while the question is being written.
The question is still stored before any step is published and before the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.errors import NotFound
from chatui.filestore import FileStore
from chatui.service import ChatService, Progress
from chatui.tree import Conversation
from tests.fakebackend import FakeBackend, Script
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(30)
OWNER = "local"
HOLD = 5.0  # s the question's write waits for the request (it never needs that long)


class HeldStore(FileStore):
    """Holds the write of a conversation whose newest message is a question until the
    model server has a request; records what it saw."""

    def __init__(self, root: Path, backend: FakeBackend) -> None:
        super().__init__(root)
        self.backend = backend
        self.request_seen_during_write: bool | None = None
        self.fail_question = False
        self.saved_roles: list[list[str]] = []

    def save(self, conversation: Conversation) -> None:
        roles: list[str] = [m.role for m in tree.active_path(conversation)]
        if roles and roles[-1] == "user":
            try:
                wait_until(lambda: len(self.backend.requests) > 0, timeout=HOLD)
                self.request_seen_during_write = True
            except AssertionError:
                self.request_seen_during_write = False
            if self.fail_question:
                raise OSError("No space left on device")
        self.saved_roles.append(roles)
        super().save(conversation)


@pytest.fixture
def held(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[tuple[ChatService, HeldStore]]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=5, stall_timeout=5)
    store = HeldStore(tmp_path / "data", fake_backend)
    yield ChatService(store, client, default_model="fake-model"), store
    client.close()
    store.close()


def test_new_chat_request_starts_while_the_question_is_written(
    held: tuple[ChatService, HeldStore], fake_backend: FakeBackend,
) -> None:
    service, store = held
    fake_backend.enqueue(Script.text_answer("Four."))
    answer = service.start_chat("Two and two?", owner=OWNER)
    seen_at_first_step: list[list[str]] = []
    steps: list[Progress] = []
    for step in answer.events():
        if not steps:  # the first step shown: the question is on disk already
            stored = service.conversation(answer.conversation_id, OWNER)
            seen_at_first_step.append([m.role for m in tree.active_path(stored)])
        steps.append(step)
    assert store.request_seen_during_write is True
    # read after the first step (the answer may be stored by then): the question is there
    assert [path[:1] for path in seen_at_first_step] == [["user"]]
    assert store.saved_roles == [["user"], ["user", "assistant"]]  # the question first
    path = tree.active_path(service.conversation(answer.conversation_id, OWNER))
    assert [(m.role, m.content) for m in path] == [("user", "Two and two?"),
                                                    ("assistant", "Four.")]


def test_send_request_starts_while_the_question_is_written(
    held: tuple[ChatService, HeldStore], fake_backend: FakeBackend,
) -> None:
    service, store = held
    chat = service.create(OWNER)
    fake_backend.enqueue(Script.text_answer("Blue."))
    list(service.start_send(chat.id, "Sky colour?", owner=OWNER).events())
    assert store.request_seen_during_write is True
    assert store.saved_roles[-2:] == [["user"], ["user", "assistant"]]


def test_a_failed_question_write_fails_the_answer_and_stores_nothing(
    held: tuple[ChatService, HeldStore], fake_backend: FakeBackend,
) -> None:
    service, store = held
    store.fail_question = True
    fake_backend.enqueue(Script.text_answer("Never shown."))
    answer = service.start_chat("Lost?", owner=OWNER)
    steps: list[Progress] = []
    with pytest.raises(OSError, match="No space left"):
        for step in answer.events():
            steps.append(step)
    assert steps == []  # nothing was shown of an answer whose question is not stored
    with pytest.raises(NotFound):
        service.conversation(answer.conversation_id, OWNER)
    assert answer.conversation_id not in service.answering(OWNER)


def test_stop_before_the_first_token_still_stores_the_question(
    held: tuple[ChatService, HeldStore], fake_backend: FakeBackend,
) -> None:
    service, store = held
    fake_backend.enqueue(Script(chunks=[(3.0, "data: [DONE]\n\n")]))
    answer = service.start_chat("Slow one?", owner=OWNER)
    wait_until(lambda: store.request_seen_during_write is not None)
    answer.stop()
    assert list(answer.events()) == []
    assert store.request_seen_during_write is True  # stopped while the question was written
    path = tree.active_path(service.conversation(answer.conversation_id, OWNER))
    assert [m.role for m in path] == ["user"]
