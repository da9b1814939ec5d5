"""ChatService against a scripted model server on 127.0.0.1 and a real store on disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.errors import BackendHTTPError, BackendTimeout, BackendUnavailable, ConversationBusy, NotFound
from chatui.service import ChatService
from chatui.store import ConversationStore
from chatui.tree import Settings, Source
from tests.fakebackend import FakeBackend, Script
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def service(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[ChatService]:
    client = BackendClient(fake_backend.base_url, first_token_timeout=2, stall_timeout=1)
    store = ConversationStore(tmp_path / "data")
    yield ChatService(store, client, default_model="fake-model")
    client.close()
    store.close()


def _drain(progress) -> list:
    return list(progress)


def test_send_streams_then_stores_user_and_answer(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Paris is the capital."))
    chat = service.create()
    steps = _drain(service.send(chat.id, "Capital of France?\nPlease."))
    assert "".join(s.content_delta for s in steps) == "Paris is the capital."
    assert steps[-1].done and steps[-1].message.status == "complete"
    stored = service.conversation(chat.id)
    path = tree.active_path(stored)
    assert [m.role for m in path] == ["user", "assistant"]
    assert path[1].content == "Paris is the capital."
    assert path[1].model == "fake-model"
    assert path[1].timings is not None and path[1].timings.generated_tokens > 0
    assert stored.title == "Capital of France?"
    body = fake_backend.requests[-1]
    assert body["messages"][-1] == {"role": "user", "content": "Capital of France?\nPlease."}


def test_settings_reach_the_request(service: ChatService, fake_backend: FakeBackend) -> None:
    chat = service.create(settings=Settings(system_prompt="Be terse.", temperature=0.3, max_tokens=7))
    _drain(service.send(chat.id, "hi"))
    body = fake_backend.requests[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 7
    assert body["stream"] is True and body["model"] == "fake-model"


def test_regenerate_adds_a_sibling_and_keeps_the_original(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("First."), Script.text_answer("Second."))
    chat = service.create()
    first = _drain(service.send(chat.id, "Say something"))[-1].message
    second = _drain(service.regenerate(chat.id, first.id, model="other-model"))[-1].message
    stored = service.conversation(chat.id)
    assert stored.message(first.id).content == "First."
    assert second.parent_id == first.parent_id and second.content == "Second."
    assert tree.sibling_position(stored, second.id) == (2, 2)
    assert fake_backend.requests[-1]["model"] == "other-model"
    back = service.step_sibling(chat.id, second.id, -1)
    assert tree.active_path(back)[-1].id == first.id


def test_edit_branches_and_leaves_the_original_thread(service: ChatService, fake_backend: FakeBackend) -> None:
    chat = service.create()
    original = _drain(service.send(chat.id, "Tell me about cats"))[-1].message
    user_id = original.parent_id
    assert user_id is not None
    edited = _drain(service.edit(chat.id, user_id, "Tell me about dogs"))[-1].message
    stored = service.conversation(chat.id)
    new_user = stored.message(edited.parent_id)  # type: ignore[arg-type]
    assert new_user.content == "Tell me about dogs" and new_user.parent_id is None
    assert stored.message(user_id).content == "Tell me about cats"
    assert stored.message(original.id).parent_id == user_id
    assert tree.sibling_position(stored, new_user.id) == (2, 2)


def test_continue_appends_to_the_same_message(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Once upon"), Script.text_answer(" a time."))
    chat = service.create()
    answer = _drain(service.send(chat.id, "Story"))[-1].message
    continued = _drain(service.continue_answer(chat.id, answer.id))[-1].message
    assert continued.id == answer.id and continued.content == "Once upon a time."
    sent = fake_backend.requests[-1]["messages"]
    assert sent[-1] == {"role": "assistant", "content": "Once upon"}
    assert len(service.conversation(chat.id).messages) == 2


def test_stop_mid_stream_keeps_the_partial_answer_marked_stopped(
    service: ChatService, fake_backend: FakeBackend
) -> None:
    fake_backend.enqueue(Script.text_answer("one two three four five six seven eight", delay=0.3))
    chat = service.create()
    seen = []
    for step in service.send(chat.id, "Count"):
        seen.append(step)
        if len(seen) == 2:
            assert service.stop(chat.id)
    final = seen[-1]
    assert final.done and final.message.status == "stopped"
    stored = tree.active_path(service.conversation(chat.id))[-1]
    assert stored.status == "stopped" and stored.content.startswith("one")
    assert "eight" not in stored.content
    wait_until(lambda: fake_backend.disconnects >= 1)
    assert not service.is_generating(chat.id)
    fake_backend.enqueue(Script.text_answer("Again."))
    assert _drain(service.send(chat.id, "more"))[-1].message.content == "Again."


def test_stop_before_the_first_token_leaves_no_ghost(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script(chunks=[(1.5, "data: [DONE]\n\n")]))
    chat = service.create()
    threading.Timer(0.3, lambda: service.stop(chat.id)).start()
    assert _drain(service.send(chat.id, "hello")) == []
    stored = service.conversation(chat.id)
    assert [m.role for m in stored.messages.values()] == ["user"]


def test_closing_the_generator_is_a_stop(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("alpha beta gamma delta", delay=0.2))
    chat = service.create()
    progress = service.send(chat.id, "go")
    next(progress)
    next(progress)
    progress.close()
    answer = tree.active_path(service.conversation(chat.id))[-1]
    assert answer.role == "assistant" and answer.status == "stopped" and answer.content
    assert not service.is_generating(chat.id)


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
    chat = service.create()
    with pytest.raises(error):
        _drain(service.send(chat.id, "hi"))
    stored = service.conversation(chat.id)
    assert [m.role for m in stored.messages.values()] == ["user"]
    assert not service.is_generating(chat.id)


def test_partial_answer_before_a_stall_is_kept_and_marked(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=3, text="one two three four"))
    chat = service.create()
    with pytest.raises(BackendTimeout) as failure:
        _drain(service.send(chat.id, "hi"))
    answer = tree.active_path(service.conversation(chat.id))[-1]
    assert answer.role == "assistant" and answer.status == "error"
    assert answer.content == "one two " and answer.error == str(failure.value)


def test_unreachable_server(tmp_path: Path) -> None:
    client = BackendClient("http://127.0.0.1:9/v1", connect_timeout=1)
    service = ChatService(ConversationStore(tmp_path), client)
    chat = service.create()
    with pytest.raises(BackendUnavailable):
        _drain(service.send(chat.id, "hi"))
    assert len(service.conversation(chat.id).messages) == 1


def test_one_generation_per_conversation(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("slow answer here", delay=0.2))
    chat = service.create()
    running = service.send(chat.id, "first")
    next(running)
    with pytest.raises(ConversationBusy):
        _drain(service.send(chat.id, "second"))
    other = service.create()
    assert _drain(service.send(other.id, "elsewhere"))[-1].done
    _drain(running)


def test_owner_scoping_hides_other_peoples_chats(service: ChatService) -> None:
    mine = service.create(owner="alice")
    with pytest.raises(NotFound):
        service.conversation(mine.id, owner="bob")
    with pytest.raises(NotFound):
        _drain(service.send(mine.id, "hi", owner="bob"))
    assert [c.id for c in service.conversations(owner="bob")] == []


def test_failed_answer_can_be_deleted(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=1, seconds=3))
    chat = service.create()
    with pytest.raises(BackendTimeout):
        _drain(service.send(chat.id, "hi"))
    failed = tree.active_path(service.conversation(chat.id))[-1]
    after = service.delete_message(chat.id, failed.id)
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
    answer = _drain(service.send(chat.id, "What is the launch code?", owner="alice"))[-1].message
    assert retriever.queries == [("What is the launch code?", "alice", chat.id)]
    system = fake_backend.requests[-1]["messages"][0]["content"]
    assert "[1] (notes.md)\nThe launch code is 4242." in system
    assert [s.number for s in answer.sources] == [1]
    reloaded = tree.active_path(service.conversation(chat.id))[-1]
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
    chat = service.create(settings=Settings(rag_enabled=True))
    with pytest.raises(ChatError, match="Searching your documents failed"):
        _drain(service.send(chat.id, "What is in my files?"))
    assert fake_backend.requests == []
    assert [m.role for m in service.conversation(chat.id).messages.values()] == ["user"]
