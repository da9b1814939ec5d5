"""The runner's job: what one answer's thread does, from the question to the stored answer.

``produce`` is run by ``Answer``'s runner thread (``ChatService.start_*``
launch it after checking, admitting and claiming): it searches the documents
(RAG), builds the prompt, asks the model, publishes a ``Progress`` per event
that changes what is shown, and stores the end once:

- complete: the answer, stored as "complete";
- stopped (``Answer.stop`` closed the upstream stream): what came, stored as
  "stopped"; nothing at all if no token came (no ghost message);
- failed: what came, stored as "error" with the error in words (as the
  supervisor's ``watch`` explains a crash of the embedded model), then raised
  for the reader; nothing is stored if no token came.

The store is written once per answer, never per token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from chatui import tree
from chatui.accumulate import Accumulator
from chatui.answer import Answer, Progress
from chatui.errors import BackendError
from chatui.events import ContentDelta, ContentWasReasoning, ReasoningDelta, ToolCallDelta
from chatui.prompt import build_messages
from chatui.tree import Conversation, Message, Settings, Source

if TYPE_CHECKING:
    from chatui.client import BackendClient
    from chatui.store import ConversationStore
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
) -> Iterator[Progress]:
    """The runner's job: retrieve, ask the model, publish each step, store the end."""
    settings = override or conversation.settings
    model = settings.model or service.default_model
    path = tree.path_to(conversation, parent_id)
    if continued is not None:
        path.append(continued)
    sources = _retrieve(service, conversation, path, settings)
    answer_tokens = settings.max_tokens or DEFAULT_ANSWER_TOKENS
    messages, sources = build_messages(
        path, settings.system_prompt, sources, service.context_tokens, answer_tokens
    )
    draft = continued or tree.make_message(
        "assistant", "", parent_id, model=model, sources=tuple(sources), status="streaming"
    )
    if answer.stopped:
        return  # stopped while the documents were searched: nothing was asked
    accumulator = Accumulator()
    service.require_backend()
    stream = service.backend.stream_chat(messages, model, settings.sampling())
    answer.attach(stream)
    try:
        for event in stream:
            accumulator.add(event)
            if isinstance(event, ContentDelta):
                content_delta, reasoning_delta = event.text, ""
            elif isinstance(event, ReasoningDelta):
                content_delta, reasoning_delta = "", event.text
            elif isinstance(event, _SHOWN):
                content_delta = reasoning_delta = ""
            else:
                continue  # usage, timings, the model's name: nothing to show yet
            yield Progress(
                conversation, _with_accumulated(draft, accumulator, continued, "streaming"),
                content_delta=content_delta, reasoning_delta=reasoning_delta,
            )
    except Exception as error:
        if answer.stopped:  # the stream was closed under the runner: that is the stop
            pass
        else:
            failure = (service.watch.explain(error)
                       if service.watch is not None and isinstance(error, BackendError)
                       else error)
            _keep_partial(service, conversation, draft, accumulator, continued, "error",
                          str(failure))
            if failure is error:
                raise
            raise failure from error
    finally:
        stream.close()
    if answer.stopped and not _has_output(accumulator):
        return  # stopped before the first token: no ghost message
    status: tree.Status = "stopped" if answer.stopped else "complete"
    final = _with_accumulated(draft, accumulator, continued, status)
    yield Progress(_store_answer(service, conversation, final, continued), final, done=True)


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
    return replace(
        draft,
        content=base_content + accumulator.content,
        reasoning=base_reasoning + accumulator.reasoning,
        tool_calls=(continued.tool_calls if continued else ()) + accumulator.tool_calls,
        model=_display_model(accumulator.model, draft.model),
        timings=accumulator.timings() if _has_output(accumulator) else draft.timings,
        status=status,
        error=None,
    )
