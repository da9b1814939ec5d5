"""ChatService against a scripted model server on 127.0.0.1 and a real store on disk."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.errors import (
    BackendHTTPError,
    BackendTimeout,
    BackendUnavailable,
    ConversationBusy,
    InvalidRequest,
    NotFound,
)
from chatui.service import ChatService, Progress
from chatui.filestore import FileStore
from chatui.tree import Settings, Source
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, wait_until

pytestmark = pytest.mark.timeout(30)
OWNER = "local"


@pytest.fixture
def service(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[ChatService]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=2, stall_timeout=1)
    store = FileStore(tmp_path / "data")
    yield ChatService(store, client, default_model="fake-model")
    client.close()
    store.close()


def _drain(progress) -> list:
    return list(progress)


def test_send_streams_then_stores_user_and_answer(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Paris is the capital."))
    chat = service.create(OWNER)
    steps = _drain(service.start_send(chat.id, "Capital of France?\nPlease.", owner=OWNER).events())
    assert "".join(s.content_delta for s in steps) == "Paris is the capital."
    assert steps[-1].done and steps[-1].message.status == "complete"
    stored = service.conversation(chat.id, OWNER)
    path = tree.active_path(stored)
    assert [m.role for m in path] == ["user", "assistant"]
    assert path[1].content == "Paris is the capital."
    assert path[1].model == "fake-model"
    assert path[1].timings is not None and path[1].timings.generated_tokens > 0
    assert stored.title == "Capital of France?"
    body = fake_backend.requests[-1]
    assert body["messages"][-1] == {"role": "user", "content": "Capital of France?\nPlease."}


def test_settings_reach_the_request(service: ChatService, fake_backend: FakeBackend) -> None:
    chat = service.create(OWNER, settings=Settings(system_prompt="Be terse.", temperature=0.3, max_tokens=7))
    _drain(service.start_send(chat.id, "hi", owner=OWNER).events())
    body = fake_backend.requests[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 7
    assert body["stream"] is True and body["model"] == "fake-model"


def test_regenerate_adds_a_sibling_and_keeps_the_original(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("First."), Script.text_answer("Second."))
    chat = service.create(OWNER)
    first = _drain(service.start_send(chat.id, "Say something", owner=OWNER).events())[-1].message
    second = _drain(service.start_regenerate(chat.id, first.id, model="other-model", owner=OWNER).events())[-1].message
    stored = service.conversation(chat.id, OWNER)
    assert stored.message(first.id).content == "First."
    assert second.parent_id == first.parent_id and second.content == "Second."
    assert tree.sibling_position(stored, second.id) == (2, 2)
    assert fake_backend.requests[-1]["model"] == "other-model"
    back = service.step_sibling(chat.id, second.id, -1, OWNER)
    assert tree.active_path(back)[-1].id == first.id


def test_edit_branches_and_leaves_the_original_thread(service: ChatService, fake_backend: FakeBackend) -> None:
    chat = service.create(OWNER)
    original = _drain(service.start_send(chat.id, "Tell me about cats", owner=OWNER).events())[-1].message
    user_id = original.parent_id
    assert user_id is not None
    edited = _drain(service.start_edit(chat.id, user_id, "Tell me about dogs", owner=OWNER).events())[-1].message
    stored = service.conversation(chat.id, OWNER)
    new_user = stored.message(edited.parent_id)  # type: ignore[arg-type]
    assert new_user.content == "Tell me about dogs" and new_user.parent_id is None
    assert stored.message(user_id).content == "Tell me about cats"
    assert stored.message(original.id).parent_id == user_id
    assert tree.sibling_position(stored, new_user.id) == (2, 2)


def test_continue_appends_to_the_same_message(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Once upon"), Script.text_answer(" a time."))
    chat = service.create(OWNER)
    answer = _drain(service.start_send(chat.id, "Story", owner=OWNER).events())[-1].message
    continued = _drain(service.start_continue(chat.id, answer.id, owner=OWNER).events())[-1].message
    assert continued.id == answer.id and continued.content == "Once upon a time."
    sent = fake_backend.requests[-1]["messages"]
    assert sent[-1] == {"role": "assistant", "content": "Once upon"}
    assert len(service.conversation(chat.id, OWNER).messages) == 2


def test_stop_mid_stream_keeps_the_partial_answer_marked_stopped(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.text_answer("one two three four five six seven eight", delay=0.3))
    chat = service.create(OWNER)
    seen = []
    for step in service.start_send(chat.id, "Count", owner=OWNER).events():
        seen.append(step)
        if len(seen) == 2:
            assert service.stop(chat.id, OWNER)
    final = seen[-1]
    assert final.done and final.message.status == "stopped"
    stored = tree.active_path(service.conversation(chat.id, OWNER))[-1]
    assert stored.status == "stopped" and stored.content.startswith("one")
    assert "eight" not in stored.content
    wait_until(lambda: fake_backend.disconnects >= 1)
    assert not service.is_generating(chat.id, OWNER)
    fake_backend.enqueue(Script.text_answer("Again."))
    assert _drain(service.start_send(chat.id, "more", owner=OWNER).events())[-1].message.content == "Again."


def test_stop_before_the_first_token_leaves_no_ghost(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script(chunks=[(1.5, "data: [DONE]\n\n")]))
    chat = service.create(OWNER)
    threading.Timer(0.3, lambda: service.stop(chat.id, OWNER)).start()
    assert _drain(service.start_send(chat.id, "hello", owner=OWNER).events()) == []
    stored = service.conversation(chat.id, OWNER)
    assert [m.role for m in stored.messages.values()] == ["user"]


def test_closing_the_generator_is_a_stop(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("alpha beta gamma delta", delay=0.2))
    chat = service.create(OWNER)
    progress = service.start_send(chat.id, "go", owner=OWNER).events()
    next(progress)
    next(progress)
    progress.close()
    answer = tree.active_path(service.conversation(chat.id, OWNER))[-1]
    assert answer.role == "assistant" and answer.status == "stopped" and answer.content
    assert not service.is_generating(chat.id, OWNER)


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (Script.error(500, {"error": {"message": "model exploded"}}), BackendHTTPError),
        (Script(chunks=[(3.0, "data: [DONE]\n\n")]), BackendTimeout),
    ],
)
def test_failed_answer_without_content_is_not_stored(
    service: ChatService, fake_backend: FakeBackend, script: Script, error: type
) -> None:
    fake_backend.enqueue(script)
    chat = service.create(OWNER)
    with pytest.raises(error):
        _drain(service.start_send(chat.id, "hi", owner=OWNER).events())
    stored = service.conversation(chat.id, OWNER)
    assert [m.role for m in stored.messages.values()] == ["user"]
    assert not service.is_generating(chat.id, OWNER)


def test_partial_answer_before_a_stall_is_kept_and_marked(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=3, text="one two three four"))
    chat = service.create(OWNER)
    with pytest.raises(BackendTimeout) as failure:
        _drain(service.start_send(chat.id, "hi", owner=OWNER).events())
    answer = tree.active_path(service.conversation(chat.id, OWNER))[-1]
    assert answer.role == "assistant" and answer.status == "error"
    assert answer.content == "one two " and answer.error == str(failure.value)


def test_unreachable_server(tmp_path: Path) -> None:
    client = BackendClient("http://127.0.0.1:9/v1", connect_timeout=1)
    service = ChatService(FileStore(tmp_path), client)
    chat = service.create(OWNER)
    with pytest.raises(BackendUnavailable):
        _drain(service.start_send(chat.id, "hi", owner=OWNER).events())
    assert len(service.conversation(chat.id, OWNER).messages) == 1


def test_one_generation_per_conversation(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("slow answer here", delay=0.2))
    chat = service.create(OWNER)
    running = service.start_send(chat.id, "first", owner=OWNER).events()
    next(running)
    with pytest.raises(ConversationBusy):
        _drain(service.start_send(chat.id, "second", owner=OWNER).events())
    other = service.create(OWNER)
    assert _drain(service.start_send(other.id, "elsewhere", owner=OWNER).events())[-1].done
    _drain(running)


def test_owner_scoping_hides_other_peoples_chats(service: ChatService) -> None:
    mine = service.create(owner="alice")
    with pytest.raises(NotFound):
        service.conversation(mine.id, owner="bob")
    with pytest.raises(NotFound):
        _drain(service.start_send(mine.id, "hi", owner="bob").events())
    assert [c.id for c in service.conversations(owner="bob")] == []


def test_failed_answer_can_be_deleted(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=1, seconds=3))
    chat = service.create(OWNER)
    with pytest.raises(BackendTimeout):
        _drain(service.start_send(chat.id, "hi", owner=OWNER).events())
    failed = tree.active_path(service.conversation(chat.id, OWNER))[-1]
    after = service.delete_message(chat.id, failed.id, OWNER)
    assert failed.id not in after.messages
    assert tree.active_path(after)[-1].role == "user"


class _StaticRetriever:
    def __init__(self) -> None:
        self.queries: list[tuple[str, str, str]] = []

    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]:
        self.queries.append((query, owner, conversation_id))
        return [Source(1, "notes.md", None, "The launch code is 4242.", 0.9)]

    def forget(self, owner: str, conversation_id: str) -> int:
        return 0


def test_rag_sources_go_into_the_prompt_and_onto_the_answer(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    retriever = _StaticRetriever()
    service.retriever = retriever
    chat = service.create(owner="alice", settings=Settings(rag_enabled=True))
    answer = _drain(service.start_send(chat.id, "What is the launch code?", owner="alice").events())[-1].message
    assert retriever.queries == [("What is the launch code?", "alice", chat.id)]
    system = fake_backend.requests[-1]["messages"][0]["content"]
    assert "[1] (notes.md)\nThe launch code is 4242." in system
    assert [s.number for s in answer.sources] == [1]
    reloaded = tree.active_path(service.conversation(chat.id, "alice"))[-1]
    assert reloaded.sources[0].document == "notes.md"


def test_a_broken_document_index_is_reported_in_words(
    service: ChatService, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    from rag_index import Library, ModelUnavailable

    from chatui.errors import ChatError
    from chatui.retrieval import LibraryRetriever

    class _NoModel:
        dimension = 384
        max_tokens = 256

        def encode_query(self, text: str):  # noqa: ANN202 - the embedder's duck type
            raise ModelUnavailable("The embedding model could not be loaded.")

        encode = token_spans = encode_query

    service.retriever = LibraryRetriever(Library(tmp_path / "docs", _NoModel()))  # type: ignore[arg-type]
    chat = service.create(OWNER, settings=Settings(rag_enabled=True))
    with pytest.raises(ChatError, match="Searching your documents failed"):
        _drain(service.start_send(chat.id, "What is in my files?", owner=OWNER).events())
    assert fake_backend.requests == []
    assert [m.role for m in service.conversation(chat.id, OWNER).messages.values()] == ["user"]


# ----- the answer handle: eager start, one runner, any reader ---------------------------


def test_starting_refuses_at_once_and_a_started_answer_can_be_stopped_at_once(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script(chunks=[(FOREVER, "data: [DONE]\n\n")]))
    chat = service.create(OWNER)
    answer = service.start_send(chat.id, "hello", owner=OWNER)  # nothing read yet
    assert service.is_generating(chat.id, OWNER)  # claimed before it returned
    with pytest.raises(ConversationBusy):
        service.start_send(chat.id, "again", owner=OWNER)  # raises here, not on a read
    with pytest.raises(NotFound):
        service.start_send(chat.id, "mine?", owner="bob")
    with pytest.raises(InvalidRequest):
        service.start_send(chat.id, "   ", owner=OWNER)
    wait_until(lambda: len(fake_backend.requests) == 1)  # the runner asked without a reader
    assert service.stop(chat.id, OWNER)  # from elsewhere than the reader
    assert answer.result is None  # stopped before any token: no ghost
    wait_until(lambda: fake_backend.disconnects == 1)
    assert [m.role for m in service.conversation(chat.id, OWNER).messages.values()] == ["user"]
    assert not service.is_generating(chat.id, OWNER)


def test_the_answer_can_be_read_on_an_event_loop(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.text_answer("one two three"))
    chat = service.create(OWNER)

    async def read() -> list[Progress]:
        answer = service.start_send(chat.id, "count", owner=OWNER)
        return [step async for step in answer.aevents()]

    steps = asyncio.run(read())
    assert "".join(step.content_delta for step in steps) == "one two three"
    assert steps[-1].done and steps[-1].message.status == "complete"


def test_deleting_a_chat_that_is_answering_stops_the_answer_then_deletes(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER, text="one two three"))
    chat = service.create(OWNER)
    steps = service.start_send(chat.id, "count", owner=OWNER).events()
    next(steps)  # streaming
    service.delete(chat.id, OWNER)
    assert fake_backend.disconnects == 1  # stopped upstream before the delete returned
    assert list(steps)[-1].message.status == "stopped"  # the reader sees a stop, not an error
    with pytest.raises(NotFound):
        service.conversation(chat.id, OWNER)  # and the stopped answer did not bring it back
    assert service.conversations(OWNER) == []


def test_owner_is_required_by_every_method_that_takes_one() -> None:
    for name, method in inspect.getmembers(ChatService, inspect.isfunction):
        parameter = inspect.signature(method).parameters.get("owner")
        if parameter is not None:
            assert parameter.default is inspect.Parameter.empty, name


def test_each_answer_costs_one_thread(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(*[Script.stall(after_chunks=1, seconds=FOREVER, text="a b c")
                           for _ in range(5)])
    chats = [service.create(OWNER) for _ in range(5)]
    answers = [service.start_send(chat.id, "go", owner=OWNER) for chat in chats]
    wait_until(lambda: len(fake_backend.requests) == 5)  # every one is streaming
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("chatui-answer") == 5  # one runner each, nothing else per answer
    assert names.count("chatui-streams") == 1  # one loop reads every stream
    for chat, answer in zip(chats, answers, strict=True):
        assert service.stop(chat.id, OWNER)
        assert answer.result is not None and answer.result.message.status == "stopped"
