"""The runner's job: what one answer's thread does, from the question to the stored answer.

``produce`` is run by ``Answer``'s runner thread (``ChatService.start_*``
launch it after checking, admitting and claiming): it searches the documents
(RAG), builds the prompt, asks the model, and stores the end once. In between,
the model's stream is read on the stream loop (``chatui.streamloop``), where
``_relay`` publishes a ``Progress`` per event that changes what is shown; the
runner thread waits for the stream's end. The end is one of:

- complete: the answer, stored as "complete";
- stopped (``Answer.stop`` closed the upstream stream): what came, stored as
  "stopped"; nothing at all if no token came (no ghost message);
- failed: what came, stored as "error" with the error in words (as the
  supervisor's ``watch`` explains a crash of the embedded model), then raised
  for the reader; nothing is stored if no token came.

The store is written once per answer, never per token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from chatui import codec, streamloop, tree
from chatui.accumulate import Accumulator
from chatui.answer import Answer, Progress
from chatui.errors import BackendError
from chatui.events import (
    ContentDelta,
    ContentWasReasoning,
    ModelName,
    PromptProgress,
    ReasoningDelta,
    ServerBuild,
    StreamEvent,
    ToolCallDelta,
)
from chatui.prompt import build_prompt
from chatui.serverinfo import ServerInfo
from chatui.template import render_prefix
from chatui.tree import Conversation, Message, Provenance, Settings, Source
from chatui.workers import WORKERS

if TYPE_CHECKING:
    from chatui.client import BackendClient
    from chatui.store import ConversationStore
    from chatui.client import ChatStream
    from chatui.serverinfo import ServerFeatures
    from chatui.supervisor import BackendWatch


class Retriever(Protocol):
    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]: ...

    def forget(self, owner: str, conversation_id: str) -> int:
        """Drop the documents attached to this conversation alone; how many there were."""
        ...


class ChatService(Protocol):
    """What a runner needs of ``service.ChatService`` (named so, without importing it)."""

    store: ConversationStore
    backend: BackendClient
    watch: BackendWatch | None
    retriever: Retriever | None
    default_model: str | None
    context_tokens: int
    features: ServerFeatures | None

    def require_backend(self) -> None: ...

DEFAULT_ANSWER_TOKENS = 512
_SHOWN = (ContentWasReasoning, ToolCallDelta)  # besides text deltas, events that change the view


def produce(
    service: ChatService,
    answer: Answer,
    conversation: Conversation,
    parent_id: str | None,
    override: Settings | None,
    continued: Message | None = None,
    question: Callable[[], None] | None = None,
) -> Iterator[Progress]:
    """The runner's job: retrieve, ask the model, publish each step, store the end.

    The answer's tokens are published from the stream loop as they come
    (``_relay``); what this yields is the rest: the final, stored step.

    ``question`` is the store write of the question (``ChatService.start_*``): it
    runs on its own thread while the prompt is built and the request starts, so
    the first token does not wait for the disk; it has ended before any step is
    published and before the answer is stored (its error, if any, is the answer's).
    """
    written = _Written(question)
    steps = _steps(service, answer, conversation, parent_id, override, continued, written)
    try:
        with closing(steps):
            for step in steps:
                written.wait()
                yield step
            written.wait()  # an answer stopped before its request: the question still counts
    finally:
        written.join()


class _Written:
    """A store write run beside the request (``produce``'s ``question``)."""

    def __init__(self, write: Callable[[], None] | None) -> None:
        self._future: Future[None] = Future()
        if write is None:
            self._future.set_result(None)
        else:
            WORKERS.run(lambda: self._run(write), "chatui-question")

    def _run(self, write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as error:  # given to the answer's reader by ``wait``
            self._future.set_exception(error)
        else:
            self._future.set_result(None)

    def join(self) -> None:
        futures.wait([self._future])

    def wait(self) -> None:
        """Return once the write has ended; raise its error if it failed."""
        self._future.result()

    async def until_written(self) -> None:
        """``wait`` on the stream loop; its error comes as ``_QuestionFailed``."""
        if not self._future.done():
            await asyncio.wait([asyncio.wrap_future(self._future)])
        error = self._future.exception()
        if error is not None:
            raise _QuestionFailed(error)


class _QuestionFailed(Exception):
    """The question could not be stored: the answer fails with that error, storing nothing."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _steps(
    service: ChatService,
    answer: Answer,
    conversation: Conversation,
    parent_id: str | None,
    override: Settings | None,
    continued: Message | None,
    written: _Written,
) -> Generator[Progress, None, None]:
    """``produce``'s steps: retrieve, ask the model, publish each step, store the end."""
    settings = override or conversation.settings
    model = settings.model or service.default_model
    path = tree.path_to(conversation, parent_id)
    if continued is not None:
        path.append(continued)
    found = _retrieve(service, conversation, path, settings)
    answer_tokens = settings.max_tokens or DEFAULT_ANSWER_TOKENS
    info = service.features.info() if service.features is not None else None
    context = (info.context_tokens if info else None) or service.context_tokens
    prompt = build_prompt(path, settings.system_prompt, found, context, answer_tokens)
    messages, sources = prompt.messages, prompt.sources
    made = Provenance(
        requested_model=model, settings=tuple(codec.settings_to_dict(settings).items()),
        context_tokens=context, trimmed=_trimmed(found, sources, prompt.dropped),
        server_build=info.build if info else None,
    )
    if continued is not None:
        made = replace(continued.made or made,
                       continue_mode=info.continue_mode if info else "resend")
        draft = replace(continued, made=made)
    else:
        draft = tree.make_message("assistant", "", parent_id, model=model,
                                  sources=tuple(sources), status="streaming", made=made)
    if answer.stopped:
        return  # stopped while the documents were searched: nothing was asked
    reading = _Reading(conversation, draft, continued)
    service.require_backend()
    stream = _ask(service, info, messages, model, settings, continued is not None)
    answer.attach(stream)
    try:
        streamloop.run(_relay(stream, reading, answer.publish, written))
    except _QuestionFailed as failed:
        raise failed.error from None
    except Exception as error:
        if answer.stopped:  # the stream was closed under the runner: that is the stop
            pass
        else:
            failure = (service.watch.explain(error)
                       if service.watch is not None and isinstance(error, BackendError)
                       else error)
            written.wait()  # the question first
            _keep_partial(service, conversation, reading.draft, reading.accumulator, continued,
                          "error", str(failure))
            if failure is error:
                raise
            raise failure from error
    finally:
        stream.close()
    draft, accumulator = reading.draft, reading.accumulator
    if answer.stopped and not _has_output(accumulator):
        return  # stopped before the first token: no ghost message
    status: tree.Status = "stopped" if answer.stopped else "complete"
    final = _with_accumulated(draft, accumulator, continued, status)
    written.wait()  # the question first
    yield Progress(_store_answer(service, conversation, final, continued), final, done=True)


async def _relay(
    stream: ChatStream, reading: _Reading, publish: Callable[[Progress], None],
    written: _Written,
) -> None:
    """On the stream loop: each event that changes what is shown, published as it comes
    (the first once the question is stored)."""
    stored = False
    async for event in stream:
        step = reading.step(event)
        if step is not None:
            if not stored:  # (a Future's ``done`` takes a lock: once, not per token)
                await written.until_written()
                stored = True
            publish(step)


class _Reading:
    """The answer as its events have made it so far, and the step each one shows."""

    __slots__ = ("accumulator", "continued", "conversation", "draft")

    def __init__(
        self, conversation: Conversation, draft: Message, continued: Message | None
    ) -> None:
        self.accumulator = Accumulator()
        self.conversation = conversation
        self.draft = draft
        self.continued = continued

    def step(self, event: StreamEvent) -> Progress | None:
        """Take in ``event``; the step to publish, if it changes what is shown."""
        accumulator = self.accumulator
        accumulator.add(event)
        if isinstance(event, ContentDelta):
            content_delta, reasoning_delta = event.text, ""
        elif isinstance(event, ReasoningDelta):
            content_delta, reasoning_delta = "", event.text
        elif isinstance(event, _SHOWN):
            content_delta = reasoning_delta = ""
        elif isinstance(event, PromptProgress):
            if _has_output(accumulator):
                return None
            return Progress(self.conversation, self.draft, prompt=event)
        elif isinstance(event, ModelName | ServerBuild):  # into the draft once, not per step
            made = self.draft.made
            if made is not None:
                made = (replace(made, server_model=event.name) if isinstance(event, ModelName)
                        else replace(made, server_build=event.fingerprint))
                self.draft = replace(self.draft, made=made)
            return None
        else:
            return None  # usage, timings, the model's name: nothing to show yet
        return Progress(
            self.conversation,
            _with_accumulated(self.draft, accumulator, self.continued, "streaming"),
            content_delta=content_delta, reasoning_delta=reasoning_delta,
        )


def _ask(
    service: ChatService, info: ServerInfo | None, messages: list[dict[str, object]],
    model: str | None, settings: Settings, continuing: bool,
) -> ChatStream:
    """Send the request the way this server continues an answer, when continuing."""
    params = settings.sampling()
    if info is not None and info.reports_progress:
        params["return_progress"] = True
    if not continuing or info is None:
        return service.backend.stream_chat(messages, model, params)
    if info.continue_mode == "completions" and service.features is not None \
            and service.features.template is not None:
        prompt = render_prefix(service.features.template, messages)
        return service.backend.stream_chat(messages, model, params, prompt=prompt)
    return service.backend.stream_chat(messages, model, {**params, **info.continue_params()})


def _trimmed(found: Sequence[Source], kept: Sequence[Source], dropped: int) -> str | None:
    """In words, what of the history and the sources was left out to fit the context."""
    shortened = sum(1 for source, fitted in zip(found, kept, strict=False)
                    if fitted.snippet != source.snippet)
    left_out = len(found) - len(kept)
    parts = [f"the {dropped} oldest messages of the chat left out"] if dropped else []
    if left_out:
        parts.append(f"{left_out} of {len(found)} sources left out")
    if shortened:
        parts.append(f"{shortened} {'source' if shortened == 1 else 'sources'} shortened")
    return (", ".join(parts) + " to fit the context.") if parts else None


def _retrieve(
    service: ChatService, conversation: Conversation, path: Sequence[Message], settings: Settings
) -> list[Source]:
    if not settings.rag_enabled or service.retriever is None:
        return []
    query = next((m.content for m in reversed(path) if m.role == "user"), "")
    if not query:
        return []
    return service.retriever.retrieve(query, conversation.owner, conversation.id)


def _keep_partial(
    service: ChatService,
    conversation: Conversation,
    draft: Message,
    accumulator: Accumulator,
    continued: Message | None,
    status: tree.Status,
    error: str | None,
) -> None:
    if not _has_output(accumulator):
        return
    partial = replace(_with_accumulated(draft, accumulator, continued, status), error=error)
    _store_answer(service, conversation, partial, continued)


def _store_answer(
    service: ChatService, conversation: Conversation, answer: Message, continued: Message | None
) -> Conversation:
    latest = service.store.load(conversation.id)
    if continued is not None and continued.id in latest.messages:
        updated = tree.replace_message(latest, answer)
        updated = tree.switch_to(updated, answer.id)
    else:
        updated = tree.add_message(latest, answer)
    service.store.save(updated)
    return updated



def _has_output(accumulator: Accumulator) -> bool:
    return bool(accumulator.content or accumulator.reasoning or accumulator.tool_calls)



def _display_model(reported: str | None, requested: str | None) -> str | None:
    """The model the server reports, unless it is a file path (llama-cpp-python sends one)."""
    if reported and not reported.endswith(".gguf") and not reported.startswith("/"):
        return reported
    return requested or reported



def _with_accumulated(
    draft: Message, accumulator: Accumulator, continued: Message | None, status: tree.Status
) -> Message:
    base_content = continued.content if continued else ""
    base_reasoning = continued.reasoning if continued else ""
    made = draft.made
    if made is not None and accumulator.model and made.server_model != accumulator.model:
        made = replace(made, server_model=accumulator.model)
    server = accumulator.server_timings
    timings = accumulator.timings() if _has_output(accumulator) else draft.timings
    if timings is not None and server is not None and server.cache_tokens is not None:
        timings = replace(timings, cached_tokens=server.cache_tokens)
    return replace(
        draft,
        made=made,
        content=base_content + accumulator.content,
        reasoning=base_reasoning + accumulator.reasoning,
        tool_calls=(continued.tool_calls if continued else ()) + accumulator.tool_calls,
        model=_display_model(accumulator.model, draft.model),
        timings=timings,
        status=status,
        error=None,
    )
