"""The UI's handlers against a real store, a real BackendClient and the scripted FakeBackend.

Each test drives a handler the way a click would and checks what the page would
show (the chat rows, the footer, the notice) and what was stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui.client import BackendClient
from chatui.limits import Limits, UserLimits
from chatui.embedded import free_port
from chatui.service import ChatService
from chatui.filestore import FileStore
from chatui.tree import Settings, active_path
from chatui.ui import actions, generation, handlers, render
from chatui.ui.screen import Screen, View, settings_to_form
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, PATIENCE, Hold, wait_until

pytestmark = pytest.mark.timeout(300)  # a hang guard; every wait is PATIENCE at most

OWNER = "local"
STREAMS = Path(__file__).parent / "streams"
FORM = settings_to_form(Settings(model="fake-model"))  # the form's values, in its order
WORDS = " ".join(f"w{n}" for n in range(1, 41))

ServiceFactory = Callable[..., ChatService]


@pytest.fixture
def make_service(tmp_path: Path, fake_backend: FakeBackend) -> Iterator[ServiceFactory]:
    opened: list[tuple[BackendClient, FileStore]] = []

    def make(base_url: str | None = None, first_token_timeout: float = PATIENCE,
             stall_timeout: float = PATIENCE) -> ChatService:
        backend = BackendClient(base_url or fake_backend.base_url,
                                first_token_timeout=first_token_timeout,
                                stall_timeout=stall_timeout)
        store = FileStore(tmp_path / f"data{len(opened)}")
        opened.append((backend, store))
        return ChatService(store, backend, default_model="fake-model",
                           defaults=Settings(max_tokens=64))

    yield make
    for backend, store in opened:
        backend.close()
        store.close()


@pytest.fixture
def service(make_service: ServiceFactory) -> ChatService:
    return make_service()  # timeouts of PATIENCE: only what a test does ends a stalled answer


def texts(screen: Screen) -> list[str]:
    assert screen.chat is not None
    return [row["content"]["text"] for row in screen.chat]


def bars(screen: Screen) -> list[str]:
    """What the bar under each row says (``render.BAR``): facts, state, error, the branch
    position and the actions, as words; "" for a row without a bar."""
    assert screen.chat is not None
    shown = []
    for row in screen.chat:
        bar = row.get(render.BAR)
        if bar is None:
            shown.append("")
            continue
        words = [*bar["facts"], bar["state"], bar["error"], *bar["actions"]]
        if bar["branch"][1] > 1:
            words.append("{}/{}".format(*bar["branch"]))
        shown.append(" ".join(word for word in words if word))
    return shown


def last(screens: Iterator[Screen]) -> Screen:
    *_, final = screens
    return final


def send(service: ChatService, view: View, text: str, form: tuple[Any, ...] = FORM) -> Screen:
    return last(generation.send(service, OWNER, view, text, form))


def action(service: ChatService, view: View, name: str, message_id: str,
           model: str | None = None) -> Screen:
    value = f"{name} {message_id} 123" + (f" {model}" if model else "")
    return last(actions.run(service, OWNER, view, value))


def answer_ids(service: ChatService, view: View) -> list[str]:
    assert view.conversation_id
    path = active_path(service.conversation(view.conversation_id, OWNER))
    return [m.id for m in path if m.role == "assistant"]


class Background:
    """Run a generation in a thread, keeping every screen it yields."""

    def __init__(self, screens: Iterator[Screen]) -> None:
        self.screens: list[Screen] = []
        self._thread = threading.Thread(target=self._run, args=(screens,), daemon=True)
        self._thread.start()

    def _run(self, screens: Iterator[Screen]) -> None:
        for screen in screens:
            self.screens.append(screen)

    def wait_for(self, seen: Callable[[Screen], bool]) -> Screen:
        return wait_until(lambda: next((s for s in list(self.screens) if seen(s)), None),
                          message="the screen never showed what was expected")

    def finish(self) -> Screen:
        wait_until(lambda: not self._thread.is_alive(), message="the generation never ended")
        return self.screens[-1]


def shows(text: str) -> Callable[[Screen], bool]:
    return lambda screen: screen.chat is not None and any(text in t for t in texts(screen))


# ----- send and stream ---------------------------------------------------------------


def test_send_creates_a_chat_and_streams_the_answer(service: ChatService,
                                                    fake_backend: FakeBackend) -> None:
    midway = Hold(after=5)  # the answer pauses after "w5" until the screen has shown "w3"
    fake_backend.enqueue(Script(chunks=midway(Script.text_answer(WORDS).chunks)))
    run = Background(generation.send(service, OWNER, View(), "What are the words?", FORM))
    try:
        run.wait_for(shows("w3"))
    finally:
        midway.release()
    run.finish()
    screens = run.screens

    first, final = screens[0], screens[-1]
    assert first.view.generating and first.input_text == ""
    assert texts(first)[0] == "What are the words?"
    partial = [s for s in screens if s.view.generating]
    assert any("w3" in texts(s)[-1] and "w40" not in texts(s)[-1] for s in partial)
    assert not final.view.generating
    assert texts(final)[1].startswith(WORDS)
    assert final.title == "What are the words?"
    assert final.conversations is not None
    assert final.conversations.pairs() == (("What are the words?", final.view.conversation_id),)
    stored = service.conversation(final.view.conversation_id or "", OWNER)
    assert [m.content for m in active_path(stored)] == ["What are the words?", WORDS]


def test_a_slow_first_token_shows_the_question_and_a_waiting_answer_first(
        service: ChatService, fake_backend: FakeBackend) -> None:
    first_token = Hold(after=0)  # no token until the first screen is there
    fake_backend.enqueue(Script(chunks=first_token(Script.text_answer("Late.").chunks)))
    screens = generation.send(service, OWNER, View(), "Hello?", FORM)
    try:
        first = next(screens)
    finally:
        first_token.release()
    assert first.view.generating and first.input_text == ""
    assert texts(first)[0] == "Hello?"
    assert texts(first)[1] == "" and bars(first)[1] == "waiting"
    assert texts(last(screens))[1].startswith("Late.")


def test_answer_footer_shows_model_tokens_speed_and_ttft(service: ChatService,
                                                         fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("one two three four five", delay=0.01))
    screen = send(service, View(), "Count")
    footer = bars(screen)[-1]
    assert texts(screen)[-1] == "one two three four five"  # the footer is not in the text
    assert "fake-model" in footer
    assert "5 tokens" in footer
    assert "tok/s" in footer and "TTFT" in footer and " ms" in footer


def test_fast_streams_are_coalesced_and_end_with_the_whole_answer(
        service: ChatService, fake_backend: FakeBackend) -> None:
    many = " ".join(f"t{n}" for n in range(1000))
    fake_backend.enqueue(Script.text_answer(many))
    started = time.monotonic()
    screens = list(generation.send(service, OWNER, View(), "Go", FORM))
    elapsed = time.monotonic() - started
    frames = [s for s in screens if s.view.generating]
    # At most one frame per FRAME_INTERVAL (besides the first and the last words),
    # however slow the machine is: so not one per token. (A rate, not a speed limit.)
    assert 1 <= len(frames) <= 2 + elapsed / generation.FRAME_INTERVAL
    assert len(frames) < 1000
    assert texts(screens[-1])[1].startswith(many)


def test_a_long_conversation_renders_once_per_frame_not_per_message(
        service: ChatService, fake_backend: FakeBackend) -> None:
    view = View()
    for n in range(20):
        view = send(service, view, f"question {n}").view
    fake_backend.enqueue(Script.text_answer(WORDS, delay=0.01))
    final = send(service, view, "one more")
    assert len(final.view.message_ids) == 42
    assert texts(final)[-2] == "one more"


# ----- stop ---------------------------------------------------------------------------


def test_stop_mid_stream_keeps_the_partial_answer_marked_stopped(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    run = Background(generation.send(service, OWNER, View(), "Talk", FORM))
    streaming = run.wait_for(shows("w3"))
    assert generation.stop(service, OWNER, streaming.view)
    final = run.finish()
    wait_until(lambda: fake_backend.disconnects == 1)  # the upstream request ended

    answer = texts(final)[-1]
    assert "w3" in answer and "w4" not in answer
    assert "stopped" in bars(final)[-1]
    assert not final.view.generating
    stored = active_path(service.conversation(final.view.conversation_id or "", OWNER))[-1]
    assert stored.status == "stopped" and "w3" in stored.content
    fake_backend.enqueue(Script.text_answer("Again fine."))
    assert texts(send(service, final.view, "Next"))[-1].startswith("Again fine.")


def test_stop_before_the_first_token_leaves_no_answer(service: ChatService,
                                                      fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
    run = Background(generation.send(service, OWNER, View(), "Anyone there?", FORM))
    first = run.wait_for(lambda s: s.view.generating)
    wait_until(lambda: len(fake_backend.requests) == 1)  # asked, and waiting for a token
    assert generation.stop(service, OWNER, first.view)
    final = run.finish()  # only Stop can end it: the server is silent FOREVER

    assert not final.notice  # stopped, not timed out
    assert texts(final) == ["Anyone there?", ""]  # no ghost answer: an offer to retry
    assert bars(final)[1] == "unanswered answer"
    stored = service.conversation(final.view.conversation_id or "", OWNER)
    assert [m.role for m in stored.messages.values()] == ["user"]
    wait_until(lambda: fake_backend.disconnects == 1)  # the upstream request ended


def test_stop_right_after_send_waits_for_the_generation_to_start(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
    screens = generation.send(service, OWNER, View(), "Quick", FORM)
    first = next(screens)  # Stop is visible now; the answer was registered before this screen
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(
        generation.stop(service, OWNER, first.view)))
    stopper.start()
    final = last(screens)  # only Stop can end it: the server is silent FOREVER
    stopper.join()
    assert stopped == [True]
    assert texts(final) == ["Quick", ""] and not final.view.generating and not final.notice
    wait_until(lambda: fake_backend.disconnects == 1)


def test_stop_with_nothing_running_is_harmless(service: ChatService) -> None:
    assert generation.stop(service, OWNER, View()) is False
    assert generation.stop(service, OWNER, View(conversation_id="nope")) is False


# ----- regenerate, edit, continue, branches -------------------------------------------


def test_regenerate_adds_a_sibling_and_keeps_the_old_answer(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("First answer."), Script.text_answer("Second answer."))
    view = send(service, View(), "Question").view
    [first_id] = answer_ids(service, view)

    regenerated = action(service, view, "regen", first_id)
    assert texts(regenerated)[-1].startswith("Second answer.")
    assert "2/2" in bars(regenerated)[-1]

    back = action(service, regenerated.view, "prev", answer_ids(service, regenerated.view)[0])
    assert texts(back)[-1].startswith("First answer.")
    assert "1/2" in bars(back)[-1]
    forward = action(service, back.view, "next", first_id)
    assert texts(forward)[-1].startswith("Second answer.")


def test_regenerate_uses_the_model_picked(service: ChatService, fake_backend: FakeBackend) -> None:
    view = send(service, View(), "Question").view
    action(service, view, "regen", answer_ids(service, view)[0], model="other-model")
    assert fake_backend.requests[-1]["model"] == "other-model"


def test_edit_makes_a_new_version_and_the_original_stays(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("About cats."), Script.text_answer("About dogs."))
    view = send(service, View(), "Tell me about cats").view
    edited = last(generation.edit(service, OWNER, view, 0, "Tell me about dogs"))

    assert texts(edited)[0] == "Tell me about dogs"
    assert "2/2" in bars(edited)[0]
    assert texts(edited)[1].startswith("About dogs.")
    assert fake_backend.requests[-1]["messages"][-1]["content"] == "Tell me about dogs"
    user_id = edited.view.message_ids[0]
    original = action(service, edited.view, "prev", user_id)
    assert texts(original)[0].startswith("Tell me about cats")
    assert texts(original)[1].startswith("About cats.")


def test_edit_of_an_answer_row_is_refused(service: ChatService) -> None:
    view = send(service, View(), "Question").view
    screen = last(generation.edit(service, OWNER, view, 1, "changed"))
    assert screen.notice and "edited" in screen.notice


def test_continue_appends_to_the_answer(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("The start"), Script.text_answer(" and the rest."))
    view = send(service, View(), "Go on").view
    continued = action(service, view, "cont", answer_ids(service, view)[0])
    assert texts(continued)[-1].startswith("The start and the rest.")
    assert len(texts(continued)) == 2


def test_a_branch_step_shows_that_branch_down_to_its_newest_message(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("A1"), Script.text_answer("A2"),
                         Script.text_answer("A1 again"))
    view = send(service, View(), "Q1").view
    view = send(service, view, "Q2").view
    first_answer = answer_ids(service, view)[0]
    other = action(service, view, "regen", first_answer)
    assert [t.split("\n")[0] for t in texts(other)] == ["Q1", "A1 again"]

    back = action(service, other.view, "prev", answer_ids(service, other.view)[0])
    assert [t.split("\n")[0] for t in texts(back)] == ["Q1", "A1", "Q2", "A2"]


def test_bars_name_their_message(service: ChatService) -> None:
    view = send(service, View(), "Q").view
    [answer_id] = answer_ids(service, view)
    screen = handlers.refresh(service, OWNER, view)
    assert screen.chat is not None
    bar = screen.chat[-1][render.BAR]
    assert bar["id"] == answer_id and bar["actions"] == ["copy", "regen", "cont", "delete"]
    assert actions.parse(f"regen {answer_id} 1") == actions.Action("regen", answer_id)
    assert actions.parse(f"regen {answer_id} 1 other model") == actions.Action(
        "regen", answer_id, "other model")
    assert actions.parse("rm -rf") is None


# ----- reasoning and tool calls ---------------------------------------------------------


def test_reasoning_is_its_own_collapsible_block(service: ChatService,
                                                fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.replay((STREAMS / "reasoning_field.txt").read_text()))
    final = send(service, View(), "Hello")
    assert final.chat is not None
    thought = final.chat[1]
    assert thought["metadata"]["title"] == "Reasoning"
    assert thought["metadata"]["status"] == "done"
    assert thought["content"]["text"] == "The user greets me."
    assert texts(final)[2].startswith("Hi there!")
    assert final.view.message_ids[1] == final.view.message_ids[2]  # one message, two rows


def test_reasoning_streams_live_while_the_model_thinks(service: ChatService,
                                                       fake_backend: FakeBackend) -> None:
    events = [{"choices": [{"index": 0, "delta": {"reasoning_content": f"step {n}. "}}]}
              for n in range(5)]
    events += [{"choices": [{"index": 0, "delta": {"content": "Done."}}]}]
    fake_backend.enqueue(Script.sse(events, delay=0.08))
    screens = list(generation.send(service, OWNER, View(), "Think", FORM))
    thinking = [s.chat[1] for s in screens if s.streaming_frame and s.chat
                and s.chat[1].get("metadata", {}).get("status") == "pending"]
    assert thinking and "step 0." in thinking[0]["content"]["text"]


def test_tool_calls_are_their_own_blocks_with_name_and_arguments(
        service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.replay((STREAMS / "tool_calls.txt").read_text()))
    final = send(service, View(), "Weather and time in Paris?")
    assert final.chat is not None
    blocks = [row for row in final.chat if "Tool call" in row.get("metadata", {}).get("title", "")]
    assert [b["metadata"]["title"] for b in blocks] == ["Tool call: get_weather", "Tool call: get_time"]
    assert '"city": "Paris"' in blocks[0]["content"]["text"]
    assert "```json" in blocks[0]["content"]["text"]


# ----- errors ----------------------------------------------------------------------------


def test_http_500_is_told_and_the_empty_answer_is_not_kept(service: ChatService,
                                                           fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.error(500, {"error": {"message": "the model crashed"}}))
    final = send(service, View(), "Hello")
    assert final.notice and "HTTP 500" in final.notice and "the model crashed" in final.notice
    assert final.input_text == ""  # the question is stored, so the box is cleared
    assert texts(final) == ["Hello", ""] and bars(final)[1] == "unanswered answer"
    stored = service.conversation(final.view.conversation_id or "", OWNER)
    assert [m.role for m in stored.messages.values()] == ["user"]

    retried = action(service, final.view, "answer", final.view.message_ids[0])
    assert texts(retried)[-1].startswith("Hello from the fake backend.")
    assert "unanswered" not in " ".join(bars(retried))


def test_timeout_is_told_apart(make_service: ServiceFactory, fake_backend: FakeBackend) -> None:
    service = make_service(first_token_timeout=0.3)
    fake_backend.enqueue(Script.stall(after_chunks=0, seconds=FOREVER))
    final = send(service, View(), "Hello")
    assert final.notice and final.notice.startswith("The model server took too long")
    assert texts(final) == ["Hello", ""]


def test_unreachable_server_is_told_apart(make_service: ServiceFactory) -> None:
    service = make_service(base_url=f"http://127.0.0.1:{free_port()}/v1")
    final = send(service, View(), "Hello")
    assert final.notice and final.notice.startswith("The model server cannot be reached.")
    assert not final.view.generating
    assert texts(final) == ["Hello", ""]


def test_a_partial_answer_that_fails_is_kept_and_marked(make_service: ServiceFactory,
                                                        fake_backend: FakeBackend) -> None:
    service = make_service(stall_timeout=2)
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    final = send(service, View(), "Hello")
    answer = texts(final)[-1]
    assert answer.startswith("w1 w2 w3")
    assert "error" in bars(final)[-1] and "stopped sending" in bars(final)[-1]
    assert not final.notice  # told once: on the answer that broke off


def test_a_busy_chat_gives_the_text_back(service: ChatService, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=2, seconds=FOREVER, text=WORDS))
    run = Background(generation.send(service, OWNER, View(), "First", FORM))
    streaming = run.wait_for(shows("w2"))  # and it stays busy until stopped
    busy = send(service, streaming.view, "Second")
    assert busy.notice and "still being generated" in busy.notice
    assert busy.input_text == "Second"
    assert generation.stop(service, OWNER, streaming.view)
    assert "stopped" in bars(run.finish())[-1]


def test_deleting_the_chat_while_it_answers_stops_the_answer_then_deletes(
        service: ChatService, fake_backend: FakeBackend) -> None:
    kept = send(service, View(), "Keep me").view  # the chat that opens after the delete
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    run = Background(generation.send(service, OWNER, View(), "Talk", FORM))
    streaming = run.wait_for(shows("w3"))
    deleted = handlers.delete(service, OWNER, streaming.view)  # the Delete button, confirmed
    assert not deleted.notice
    assert deleted.view.conversation_id == kept.conversation_id
    assert deleted.conversations is not None
    assert [cid for _, cid in deleted.conversations.pairs()] == [kept.conversation_id]
    assert fake_backend.disconnects == 1  # the answer was stopped upstream first
    run.finish()  # the stream ended (stopped), and nothing brought the chat back
    assert [s.id for s in service.conversations(OWNER)] == [kept.conversation_id]
    assert len(service.store.list()) == 1


def test_a_refused_anonymous_send_stores_nothing(
        tmp_path: Path, fake_backend: FakeBackend) -> None:
    backend = BackendClient(fake_backend.base_url, first_token_timeout=PATIENCE,
                            stall_timeout=PATIENCE)
    store = FileStore(tmp_path / "limited")
    limits = Limits(UserLimits(concurrent_answers=0, answers_per_minute=1))
    service = ChatService(store, backend, default_model="fake-model", limits=limits)
    visitor = "anon:visitor"
    try:
        answered = last(generation.send(service, visitor, View(), "First", FORM, "198.51.100.7"))
        assert not answered.notice
        refused = last(generation.send(service, visitor, View(), "Second", FORM, "198.51.100.7"))
        assert refused.notice and "in the last minute" in refused.notice
        assert refused.input_text == "Second"  # given back
        assert refused.view.conversation_id is None  # no new chat opened...
        assert len(service.conversations(visitor)) == 1  # ...nor stored
        assert len(store.list()) == 1
    finally:
        backend.close()
        store.close()


# ----- conversations and settings -----------------------------------------------------------


def test_new_chat_rename_search_and_delete(service: ChatService) -> None:
    first = send(service, View(), "Apples are red").view
    second = send(service, handlers.new_chat(service, OWNER, first, None).view,
                  "Bananas are yellow").view
    listing = handlers.search(service, OWNER, second, "").conversations
    assert listing and [title for title, _ in listing.pairs()] == [
        "Bananas are yellow", "Apples are red"]

    renamed = handlers.rename(service, OWNER, second, "Fruit colours")
    assert renamed.title == "Fruit colours"
    assert renamed.conversations and renamed.conversations.items[0].title == "Fruit colours"
    found = handlers.search(service, OWNER, renamed.view, "fake backend")  # in an answer
    assert found.conversations and len(found.conversations.items) == 2
    apples = handlers.search(service, OWNER, renamed.view, "apples").conversations
    assert apples and apples.pairs() == (("Apples are red", first.conversation_id),)

    deleted = handlers.delete(service, OWNER, handlers.search(service, OWNER, renamed.view, "").view)
    assert deleted.conversations
    assert deleted.conversations.pairs() == (("Apples are red", first.conversation_id),)
    assert deleted.view.conversation_id == first.conversation_id  # the newest left opens
    assert texts(deleted)[0].startswith("Apples are red")


def test_new_chat_is_empty_and_keeps_the_picked_model(service: ChatService) -> None:
    view = send(service, View(), "Hi").view
    fresh = handlers.new_chat(service, OWNER, view, "other-model")
    assert fresh.chat == () and fresh.view.conversation_id is None
    assert fresh.settings is not None and fresh.settings.model == "other-model"
    assert fresh.settings.max_tokens == 64  # the configured defaults


def test_settings_are_saved_with_the_chat_and_sent(service: ChatService,
                                                   fake_backend: FakeBackend) -> None:
    form = settings_to_form(Settings(
        model="fake-model", system_prompt="Be brief.", temperature=0.2, top_p=0.9, max_tokens=32,
        top_k=40, min_p=0.05, repeat_penalty=1.1, presence_penalty=0.5, frequency_penalty=-0.5,
        seed=7))
    view = send(service, View(), "Hi", form).view
    body = fake_backend.requests[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.2, 0.9, 32, 7)
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (40, 0.05, 1.1)
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, -0.5)

    changed = settings_to_form(Settings(
        model="fake-model", system_prompt="Be long.", max_tokens=100, rag_enabled=True))
    handlers.save_settings(service, OWNER, view, changed)
    reopened = handlers.open_conversation(service, OWNER, View(), view.conversation_id or "")
    assert reopened.settings is not None
    assert settings_to_form(reopened.settings) == changed


def test_load_reopens_the_remembered_chat_else_the_newest(service: ChatService) -> None:
    older = send(service, View(), "Older").view.conversation_id
    newer = send(service, View(), "Newer").view.conversation_id
    assert handlers.load(service, OWNER, older).view.conversation_id == older
    assert handlers.load(service, OWNER, None).view.conversation_id == newer
    assert handlers.load(service, OWNER, "deleted-or-unknown").view.conversation_id == newer
    loaded = handlers.load(service, OWNER, older)
    assert loaded.models == ("fake-model",)
    assert texts(loaded)[0].startswith("Older")


def test_load_with_the_server_down_still_shows_the_chats(make_service: ServiceFactory) -> None:
    service = make_service(base_url=f"http://127.0.0.1:{free_port()}/v1")
    loaded = handlers.load(service, OWNER, None)
    assert loaded.models == ()
    assert loaded.notice and "cannot be reached" in loaded.notice


# ----- two sessions at once -------------------------------------------------------------------


def test_two_sessions_stream_at_the_same_time(service: ChatService,
                                              fake_backend: FakeBackend) -> None:
    held = Hold(after=5)  # both answers stop after "w5" until both have shown it
    fake_backend.enqueue(*[Script(chunks=held(Script.text_answer(WORDS).chunks))] * 2)
    try:
        one = Background(generation.send(service, OWNER, View(), "Session one", FORM))
        two = Background(generation.send(service, OWNER, View(), "Session two", FORM))
        one.wait_for(shows("w5"))
        two.wait_for(shows("w5"))  # one after the other would never get here
    finally:
        held.release()
    assert texts(one.finish())[-1].startswith(WORDS)
    assert texts(two.finish())[-1].startswith(WORDS)


# ----- render --------------------------------------------------------------------------------


def test_an_open_code_fence_of_a_stopped_answer_is_closed() -> None:
    assert render._close_open_fence("```python\nx = 1") == "```python\nx = 1\n```"
    assert render._close_open_fence("```\nx\n```") == "```\nx\n```"


def test_strip_footer_leaves_the_text() -> None:
    text = "Line one\n\n```\ncode\n```"
    assert render.strip_footer(text) == text


# ----- through the real app: Gradio's queue, with gradio_client ---------------------------------


class Session:
    """One browser session, played by a gradio_client Client against the running app."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.client = Client(url + "/", verbose=False)
        self.frames: list[str] = []  # the last chat row's text, one per update

    def send(self, text: str) -> threading.Thread:
        def run() -> None:
            job = self.client.submit(text, *FORM, api_name="/send")
            for outputs in job:
                chat = next((value for value in outputs if isinstance(value, list)
                             and value and isinstance(value[0], dict) and "role" in value[0]),
                            None)
                shown = next((value for value in outputs if isinstance(value, str)
                              and value.startswith('{"rows"')), None)
                state = (json.loads(shown)["rows"][-1] or {}).get("state", "") if shown else ""
                if chat:
                    self.frames.append(chat[-1]["content"][0]["text"] + " " + state)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def wait_shows(self, text: str) -> None:
        wait_until(lambda: any(text in shown for shown in self.frames),
                   message=f"the session never showed {text!r}")


def wait_ended(thread: threading.Thread) -> None:
    wait_until(lambda: not thread.is_alive(), message="the session's request never ended")


def test_two_sessions_stream_at_once_through_the_queue(
        running_app: Callable[..., Any], fake_backend: FakeBackend) -> None:
    held = Hold(after=5)  # both answers stop after "w5" until both have shown it
    fake_backend.enqueue(*[Script(chunks=held(Script.text_answer(WORDS).chunks))] * 2)
    with running_app(fake_backend.base_url, concurrency_limit=4) as url:
        one, two = Session(url), Session(url)
        try:
            threads = [one.send("Session one"), two.send("Session two")]
            one.wait_shows("w5")
            two.wait_shows("w5")  # a queue taking one at a time would never get here
        finally:
            held.release()
        for thread in threads:
            wait_ended(thread)
        assert "w40" in one.frames[-1] and "w40" in two.frames[-1]


def test_stop_through_the_queue_ends_the_stream_at_once(
        running_app: Callable[..., Any], fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER, text=WORDS))
    with running_app(fake_backend.base_url) as url:
        session = Session(url)
        thread = session.send("Talk")
        session.wait_shows("w3")
        session.client.predict(api_name="/stop")
        wait_ended(thread)  # only Stop can end it: the server is silent FOREVER after "w3"
        final = session.frames[-1]
        assert "stopped" in final and "w3" in final and "w4" not in final
        wait_until(lambda: fake_backend.disconnects == 1)
