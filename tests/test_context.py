"""The context gauge (issue 13, item 4): tokens used of the context, and the overflow warning.

The numbers come from the server's ``timings`` (llama.cpp: ``prompt_n`` plus
``cache_n``, which ``prompt_n`` leaves out, plus ``predicted_n``); the scripted
server sends them as llama-server does. The context size is the server's
``/props`` ``n_ctx`` when it gives one, else ``--context``.
"""

from __future__ import annotations

import pytest

from chatui import tree
from chatui.client import BackendClient
from chatui.context import context_use
from chatui.memstore import MemoryStore
from chatui.serverinfo import ServerFeatures
from chatui.service import ChatService
from chatui.tree import Settings, Source, Timings
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(60)
OWNER = "local"
TIMINGS = {"prompt_n": 300, "cache_n": 1200, "prompt_ms": 50.0, "predicted_n": 100,
           "predicted_ms": 500.0, "predicted_per_second": 200.0}


def test_the_gauge_counts_cached_prompt_tokens_and_uses_the_servers_n_ctx() -> None:
    with FakeBackend(props={"default_generation_settings": {"n_ctx": 4000}}) as backend, \
            BackendClient(backend.base_url) as client:
        backend.enqueue(Script.text_answer("Fine.", timings=TIMINGS))
        service = ChatService(MemoryStore(), client, context_tokens=4096,
                              features=ServerFeatures(client),
                              defaults=Settings(max_tokens=100))
        chat = service.create(OWNER)
        before = service.context_use(chat.id, OWNER)
        assert before.used < 10 and before.size == 4000 and not before.overflows
        service.start_send(chat.id, "Hello", owner=OWNER).wait(30)
        use = service.context_use(chat.id, OWNER)
        answer = tree.active_path(service.conversation(chat.id, OWNER))[-1]
        assert answer.timings is not None and answer.timings.cached_tokens == 1200
        assert (use.used, use.size, use.measured) == (1600, 4000, True)
        assert use.level == "ok" and "1,600 of 4,000 tokens" in use.words()
        long_draft = "word " * 2000  # about 3,300 tokens by chatui's estimate
        full = service.context_use(chat.id, OWNER, long_draft)
        assert full.overflows and full.level == "full"
        assert "will not fit" in full.words()


def test_without_server_numbers_the_branch_is_estimated() -> None:
    chat = tree.new_conversation(settings=Settings(max_tokens=10))
    question = tree.make_message("user", "x" * 300, None)
    chat = tree.add_message(chat, question)
    use = context_use(chat, 4096)
    assert not use.measured and 100 <= use.used <= 110
    answer = tree.make_message("assistant", "ok", question.id, timings=Timings(
        prompt_tokens=80, generated_tokens=20, source="client", cached_tokens=None))
    chat = tree.add_message(chat, answer)
    measured = context_use(chat, 110)
    assert measured.measured and measured.used == 100 and measured.level == "high"
    assert measured.next_needs == 110 and not measured.overflows  # exactly fits


class _ManySources:
    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]:
        return [Source(n, f"doc{n}.txt", None, "passage " * 400, 1.0 / n) for n in range(1, 6)]

    def forget(self, owner: str, conversation_id: str) -> int:
        return 0


def test_sources_trimmed_to_fit_are_named_on_the_answer() -> None:
    with FakeBackend() as backend, BackendClient(backend.base_url) as client:
        service = ChatService(MemoryStore(), client, context_tokens=2000,
                              retriever=_ManySources(), features=ServerFeatures(client),
                              defaults=Settings(rag_enabled=True, max_tokens=200))
        chat = service.create(OWNER)
        result = service.start_send(chat.id, "What do the documents say?", owner=OWNER).result
        assert result is not None
        made = result.message.made
        assert made is not None and made.trimmed is not None
        kept = len(result.message.sources)
        assert 0 < kept < 5
        assert made.trimmed.startswith(f"{5 - kept} of 5 sources left out")
        stored = tree.active_path(service.conversation(chat.id, OWNER))[-1]
        assert stored.made == made


def test_the_oldest_history_is_left_out_to_fit_and_the_answer_says_so() -> None:
    with FakeBackend() as backend, BackendClient(backend.base_url) as client:
        service = ChatService(MemoryStore(), client, context_tokens=1000,
                              features=ServerFeatures(client), defaults=Settings(max_tokens=200))
        chat = service.create(OWNER)
        for number in range(6):  # six questions of about 200 tokens, each answered
            service.start_send(chat.id, f"Question {number}: " + "blah " * 120,
                               owner=OWNER).wait(30)
        sent = backend.requests[-1]["messages"]
        assert sent[0]["role"] == "user" and sent[-1]["content"].startswith("Question 5:")
        assert not any(m["content"].startswith("Question 0:") for m in sent)
        dropped = 12 - 1 - len(sent)  # the branch held 11 messages before the answer
        assert dropped > 0
        answer = tree.active_path(service.conversation(chat.id, OWNER))[-1]
        assert answer.made is not None
        assert answer.made.trimmed == f"the {dropped} oldest messages of the chat left out " \
            "to fit the context."
        first = tree.active_path(service.conversation(chat.id, OWNER))[1]
        assert first.made is not None and first.made.trimmed is None
