"""Continue as a true prefix fill (issue 13, item 2).

Against the scripted server: what each kind of server is asked (llama-server's and
vLLM's ``continue_final_message``, the fallback that resends), and that the text is
appended to the same answer. Against the real embedded SmolLM2: the model's own
chat template from its GGUF, rendered up to the answer so far and completed on
``/v1/completions``, goes on with the same list instead of starting again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui.client import BackendClient
from chatui.config import parse_config
from chatui.embedded import MODEL_ALIAS, EmbeddedServer
from chatui.errors import ConfigError, InvalidRequest
from chatui.memstore import MemoryStore
from chatui.runtime import server_features
from chatui.serverinfo import ContinueMode, ServerFeatures
from chatui.service import ChatService
from chatui.template import ChatTemplate, chat_template_of, read_gguf_metadata, render_prefix
from chatui.tree import Settings
from tests.fakebackend import FakeBackend, Script
from tests.apiharness import running_api

pytestmark = pytest.mark.timeout(120)
OWNER = "local"
LLAMA_PROPS = {"default_generation_settings": {"n_ctx": 8192}, "build_info": "b6000-abc123",
               "chat_template": "..."}


def _service(backend: FakeBackend, mode: ContinueMode = "auto",
             template: ChatTemplate | None = None) -> tuple[ChatService, BackendClient]:
    client = BackendClient(backend.base_url, first_token_timeout=30, stall_timeout=30)
    features = ServerFeatures(client, mode, template)
    return ChatService(MemoryStore(), client, default_model="fake-model",
                       features=features), client


def _answered(service: ChatService, first: str) -> tuple[str, str]:
    """A chat whose answer is ``first`` (as the fake server sends it); (chat id, answer id)."""
    chat = service.create(OWNER)
    result = service.start_send(chat.id, "Count from 1 to 50", owner=OWNER).result
    assert result is not None and result.message.content == first
    return chat.id, result.message.id


def test_llama_server_is_asked_to_continue_the_final_message() -> None:
    with FakeBackend(props=LLAMA_PROPS) as backend:
        backend.enqueue(Script.text_answer("Sure! 1, 2, 3,"), Script.text_answer(" 4, 5, 6."))
        service, client = _service(backend)
        with client:
            chat_id, answer_id = _answered(service, "Sure! 1, 2, 3,")
            result = service.start_continue(chat_id, answer_id, owner=OWNER).result
        assert result is not None
        body = backend.requests[-1]
        assert body["continue_final_message"] is True
        assert body["add_generation_prompt"] is False
        assert body["return_progress"] is True  # llama-server reports prompt progress
        assert body["messages"][-1] == {"role": "assistant", "content": "Sure! 1, 2, 3,"}
        stored = service.conversation(chat_id, OWNER)
        assert len(stored.messages) == 2  # the same answer, not a new one
        answer = stored.message(answer_id)
        assert answer.content == "Sure! 1, 2, 3, 4, 5, 6."
        assert answer.made is not None and answer.made.continue_mode == "final-message"
        assert answer.made.context_tokens == 8192  # /props n_ctx


def test_vllm_is_recognised_by_its_version_route() -> None:
    with FakeBackend(version={"version": "0.9.1"}) as backend:
        backend.enqueue(Script.text_answer("One, two,"), Script.text_answer(" three."))
        service, client = _service(backend)
        with client:
            chat_id, answer_id = _answered(service, "One, two,")
            service.start_continue(chat_id, answer_id, owner=OWNER).wait(60)
        body = backend.requests[-1]
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        assert "return_progress" not in body
        assert service.conversation(chat_id, OWNER).message(answer_id).content == \
            "One, two, three."


def test_an_unknown_server_gets_the_history_again_unless_told() -> None:
    with FakeBackend() as backend:
        backend.enqueue(*(Script.text_answer(t) for t in ("A,", " B.", "C,", " D.")))
        service, client = _service(backend)
        with client:
            chat_id, answer_id = _answered(service, "A,")
            service.start_continue(chat_id, answer_id, owner=OWNER).wait(60)
            assert "continue_final_message" not in backend.requests[-1]
            assert backend.requests[-1]["messages"][-1]["content"] == "A,"
        forced, client = _service(backend, "final-message")
        with client:
            chat_id, answer_id = _answered(forced, "C,")
            forced.start_continue(chat_id, answer_id, owner=OWNER).wait(60)
        assert backend.requests[-1]["continue_final_message"] is True
        assert forced.conversation(chat_id, OWNER).message(answer_id).content == "C, D."


def test_completions_mode_sends_the_rendered_prefix() -> None:
    template = ChatTemplate(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    completion = Script.sse([{"id": "cmpl", "object": "text_completion", "model": "fake-model",
                              "choices": [{"index": 0, "text": " 3, 4.",
                                           "finish_reason": "stop"}]}])
    with FakeBackend() as backend:
        backend.enqueue(Script.text_answer("1, 2,"), completion)
        service, client = _service(backend, "completions", template)
        with client:
            chat_id, answer_id = _answered(service, "1, 2,")
            service.start_continue(chat_id, answer_id, owner=OWNER).wait(60)
        assert backend.completion_requests[-1]["prompt"] == (
            "<user>Count from 1 to 50</user><assistant>1, 2,")
        assert service.conversation(chat_id, OWNER).message(answer_id).content == "1, 2, 3, 4."


def test_render_prefix_with_the_models_own_template() -> None:
    template = chat_template_of(EmbeddedServer(context=512).model_path)
    assert template is not None and template.eos_token == "<|im_end|>"
    prompt = render_prefix(template, [{"role": "user", "content": "Count"},
                                      {"role": "assistant", "content": "Sure! 1, 2,"}])
    assert prompt.endswith("<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\nSure! 1, 2,")
    with pytest.raises(InvalidRequest):
        render_prefix(template, [{"role": "user", "content": "Count"}])


def test_a_hostile_template_cannot_reach_python() -> None:
    hostile = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}"
                           "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(InvalidRequest, match="chat template"):
        render_prefix(hostile, [{"role": "assistant", "content": "x"}])


def test_gguf_header_reader_skips_the_vocabulary() -> None:
    path = EmbeddedServer(context=512).model_path
    meta = read_gguf_metadata(path, keys=("general.architecture",))
    assert meta == {"general.architecture": "llama"}


def test_continue_mode_completions_needs_the_embedded_model() -> None:
    with pytest.raises(ConfigError, match="continue-mode completions"):
        parse_config(["--api-base", "http://127.0.0.1:9/v1", "--continue-mode", "completions"],
                     environ={})
    assert parse_config(["--continue-mode", "resend"], environ={}).continue_mode == "resend"
    with pytest.raises(SystemExit):
        parse_config(["--continue-mode", "guess"], environ={})


def test_continue_over_rest(tmp_path: Path) -> None:
    with FakeBackend(props=LLAMA_PROPS) as backend:
        backend.enqueue(Script.text_answer("Red, green,"), Script.text_answer(" blue."))
        with running_api(backend.base_url, tmp_path) as api:
            chat = api.new_chat(title="Colours")
            first = api.http.post(f"/chats/{chat['id']}/message",
                                  json={"content": "Three colours?"}).json()
            refused = api.http.post(f"/chats/{chat['id']}/message",
                                    json={"continue_id": first["id"], "content": "x"})
            assert refused.status_code == 422
            more = api.http.post(f"/chats/{chat['id']}/message",
                                 json={"continue_id": first["id"]}).json()
            assert more["id"] == first["id"] and more["content"] == "Red, green, blue."
            assert more["made"]["continue_mode"] == "final-message"
            user = api.http.post(f"/chats/{chat['id']}/message",
                                 json={"continue_id": first["parent_id"]})
            assert user.status_code == 422


# ----- the real embedded model ----------------------------------------------------------


@pytest.fixture
def embedded_service(embedded_server: EmbeddedServer) -> Iterator[ChatService]:
    with BackendClient(embedded_server.base_url) as client:
        features = server_features(parse_config([], environ={}), client, embedded_server)
        assert features.template is not None
        yield ChatService(MemoryStore(), client, default_model=MODEL_ALIAS, features=features,
                          context_tokens=2048,
                          defaults=Settings(temperature=0.0, seed=1, max_tokens=300))


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_continue_extends_the_same_list_on_the_real_model(embedded_service: ChatService) -> None:
    service = embedded_service
    chat = service.create(OWNER)
    answer = service.start_send(chat.id, "List the numbers 1 to 50 separated by commas.",
                                owner=OWNER)
    for step in answer.events():
        if "10," in step.message.content:
            answer.stop()
    stopped = answer.result
    assert stopped is not None and stopped.message.status == "stopped"
    cut = stopped.message.content
    assert _numbers(cut)[-1] == 10
    result = service.start_continue(chat.id, stopped.message.id, owner=OWNER).result
    assert result is not None
    stored = service.conversation(chat.id, OWNER).message(stopped.message.id)
    assert stored.content.startswith(cut) and len(stored.content) > len(cut)
    numbers = _numbers(stored.content)
    # One list, in order, going on past the cut: no second "1, 2, 3" from a fresh reply.
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 12
    assert stored.made is not None and stored.made.continue_mode == "completions"
