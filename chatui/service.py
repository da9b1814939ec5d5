"""The chat service: user actions in, tree + store + backend + retriever calls out.

The Gradio UI, the REST API and the command-line chat all call this module and
nothing below it knows about them. Data flows one way:

    UI / REST / CLI  ->  ChatService  ->  tree (pure), store, backend client, retriever

Rules it keeps:

- The store is written once per finished step (the user message, the final or
  stopped answer), never per streamed token.
- One generation at a time per conversation; a second one raises
  ``ConversationBusy`` instead of interleaving writes into the same tree.
- A failed answer with no content never reaches the tree or the store; a
  partial answer is kept with status "error" and the error text (as ``watch``
  explains it: "The embedded model crashed (SIGKILL: …) while answering.").
- With a ``watch`` (``chatui.supervisor``), no answer is asked of a backend
  known to be down: ``BackendDown`` says why, after the question is stored. Stop (or a
  consumer closing the generator) keeps the partial answer as "stopped".
- ``owner`` scopes every lookup: another owner's conversation is ``NotFound``.
- Deleting a conversation drops the documents attached to it (``Retriever.forget``).
- Every generation is admitted by ``limits`` (per-user answers at once and per
  minute) before anything is stored, and counts until it ends; a refused one
  raises ``LimitExceeded`` and changes nothing. ``address`` (where the request
  came from, as the edge saw it) counts too for anonymous visitors, who can
  shed their owner id by dropping a cookie.

Generations are generators of ``Progress``; closing one early stops the
upstream request and keeps what was streamed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from chatui import tree
from chatui.accumulate import Accumulator
from chatui.cache import CachedStore
from chatui.client import BackendClient, ChatStream
from chatui.errors import BackendError, ConversationBusy, InvalidRequest, NotFound
from chatui.events import ContentDelta, ReasoningDelta
from chatui.limits import Admission, Limits, UserLimits
from chatui.prompt import build_messages
from chatui.store import ConversationStore, ConversationSummary
from chatui.supervisor import BackendHealth, BackendWatch
from chatui.tree import Conversation, Message, Settings, Source

DEFAULT_ANSWER_TOKENS = 512


class Retriever(Protocol):
    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]: ...

    def forget(self, owner: str, conversation_id: str) -> int:
        """Drop the documents attached to this conversation alone; how many there were."""
        ...


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a generation: the answer so far and what just arrived.

    ``conversation`` is the stored state the answer is being written into
    (for a continued answer it still holds the old text); ``message`` is the
    answer as it stands now. ``done`` marks the final, stored answer.
    """

    conversation: Conversation
    message: Message
    content_delta: str = ""
    reasoning_delta: str = ""
    done: bool = False

    def path(self) -> list[Message]:
        """The active branch as it should be shown right now, answer included."""
        return [*tree.path_to(self.conversation, self.message.parent_id), self.message]


@dataclass(slots=True)
class _Running:
    stream: ChatStream | None = None
    stopped: bool = False
    admission: Admission | None = None


class ChatService:
    def __init__(
        self,
        store: ConversationStore | CachedStore,
        backend: BackendClient,
        *,
        default_model: str | None = None,
        defaults: Settings | None = None,
        retriever: Retriever | None = None,
        context_tokens: int = 4096,
        limits: Limits | None = None,
        watch: BackendWatch | None = None,
    ) -> None:
        self.store = store
        self.watch = watch
        self.backend = backend
        self.default_model = default_model
        self.defaults = defaults or Settings()
        self.retriever = retriever
        self.context_tokens = context_tokens
        self.limits = limits or Limits(UserLimits.none())
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    # ----- queries -------------------------------------------------------

    def conversation(self, conversation_id: str, owner: str | None = None) -> Conversation:
        try:
            conversation = self.store.load(conversation_id)
        except NotFound:
            if owner is None:
                raise
            # The same words as for another's chat: a guessed id tells nothing.
            raise NotFound("There is no such conversation.") from None
        if owner is not None and conversation.owner != owner:
            raise NotFound("There is no such conversation.")
        return conversation

    def conversations(self, owner: str | None = None) -> list[ConversationSummary]:
        return self.store.list(owner=owner)

    def search(self, text: str, owner: str | None = None) -> list[ConversationSummary]:
        return self.store.search(text, owner=owner)

    def models(self) -> list[str]:
        return self.backend.list_models()

    def backend_health(self) -> BackendHealth | None:
        """How the model server is doing (None when nothing watches it)."""
        return self.watch.health() if self.watch is not None else None

    def require_backend(self) -> None:
        """Raise ``BackendDown`` when the model is known to be unable to answer now."""
        if self.watch is not None:
            self.watch.require_answering()

    def admit(self, owner: str, address: str | None = None) -> Admission:
        """Count an answer against ``owner``'s limits now (``LimitExceeded`` if over).

        For callers that must refuse before they start (a REST stream's status);
        pass it as ``admission=`` to the generation, which releases it at its end.
        """
        return self.limits.admit(owner, address)

    def is_generating(self, conversation_id: str) -> bool:
        with self._lock:
            return conversation_id in self._running

    # ----- commands on conversations ---------------------------------------

    def create(
        self, owner: str = "local", title: str | None = None, settings: Settings | None = None
    ) -> Conversation:
        conversation = tree.new_conversation(
            title=title or "New chat", settings=settings or self.defaults, owner=owner
        )
        self.store.save(conversation)
        return conversation

    def rename(self, conversation_id: str, title: str, owner: str | None = None) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.rename(c, title))

    def update_settings(
        self, conversation_id: str, settings: Settings, owner: str | None = None
    ) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.with_settings(c, settings))

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        """Delete a conversation and the documents attached to it (not the owner's library)."""
        conversation = self.conversation(conversation_id, owner)
        self.store.delete(conversation_id)
        if self.retriever is not None:
            self.retriever.forget(conversation.owner, conversation_id)

    def switch_branch(
        self, conversation_id: str, message_id: str, owner: str | None = None
    ) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.switch_to(c, message_id))

    def step_sibling(
        self, conversation_id: str, message_id: str, step: int, owner: str | None = None
    ) -> Conversation:
        return self._update(
            conversation_id, owner, lambda c: tree.switch_sibling(c, message_id, step)
        )

    def delete_message(
        self, conversation_id: str, message_id: str, owner: str | None = None
    ) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.delete_subtree(c, message_id))

    def import_conversation(self, conversation: Conversation, owner: str) -> Conversation:
        """Store an exported conversation under a fresh id, owned by ``owner``."""
        fresh = tree.new_conversation(conversation.title, conversation.settings, owner)
        imported = replace(
            conversation, id=fresh.id, owner=owner, created_at=fresh.created_at
        )
        for message in imported.messages.values():
            if message.parent_id is not None:
                imported.message(message.parent_id)
        if imported.current_leaf_id is not None:
            tree.active_path(imported)
        self.store.save(imported)
        return imported

    def _update(
        self,
        conversation_id: str,
        owner: str | None,
        change: Callable[[Conversation], Conversation],
    ) -> Conversation:
        with self._claim(conversation_id):
            updated = change(self.conversation(conversation_id, owner))
            self.store.save(updated)
            return updated

    # ----- generations -----------------------------------------------------

    def send(
        self,
        conversation_id: str,
        text: str,
        *,
        owner: str | None = None,
        parent_id: str | None = None,
        branch_from_current: bool = True,
        settings: Settings | None = None,
        admission: Admission | None = None,
        address: str | None = None,
    ) -> Iterator[Progress]:
        """Add a user message (under the current leaf, or ``parent_id``) and answer it."""
        if not text.strip():
            raise InvalidRequest("The message is empty.")
        with self._claim(conversation_id) as running:
            conversation = self.conversation(conversation_id, owner)
            if parent_id is None and branch_from_current:
                parent_id = conversation.current_leaf_id
            if parent_id is not None:
                conversation.message(parent_id)
            running.admission = admission or self.limits.admit(conversation.owner, address)
            if not conversation.messages and conversation.title == "New chat":
                conversation = tree.rename(conversation, tree.title_from(text))
            user = tree.make_message("user", text, parent_id)
            conversation = tree.add_message(conversation, user)
            self.store.save(conversation)
            yield from self._answer(running, conversation, user.id, settings)

    def edit(
        self, conversation_id: str, message_id: str, text: str, *, owner: str | None = None,
        admission: Admission | None = None, address: str | None = None,
    ) -> Iterator[Progress]:
        """A new sibling of a user message with ``text``, then a fresh answer."""
        original = self.conversation(conversation_id, owner).message(message_id)
        if original.role != "user":
            raise InvalidRequest("Only your own messages can be edited.")
        return self.send(
            conversation_id, text, owner=owner, parent_id=original.parent_id,
            branch_from_current=False, admission=admission, address=address,
        )

    def regenerate(
        self,
        conversation_id: str,
        message_id: str,
        *,
        owner: str | None = None,
        model: str | None = None,
        admission: Admission | None = None,
        address: str | None = None,
    ) -> Iterator[Progress]:
        """A new answer beside an assistant message; the old one stays."""
        answer = self.conversation(conversation_id, owner).message(message_id)
        if answer.role != "assistant" or answer.parent_id is None:
            raise InvalidRequest("Only an answer can be regenerated.")
        return self.answer(
            conversation_id, answer.parent_id, owner=owner, model=model, admission=admission,
            address=address,
        )

    def continue_answer(
        self, conversation_id: str, message_id: str, *, owner: str | None = None,
        admission: Admission | None = None, address: str | None = None,
    ) -> Iterator[Progress]:
        """Generate more text at the end of an assistant message."""
        with self._claim(conversation_id) as running:
            conversation = self.conversation(conversation_id, owner)
            answer = conversation.message(message_id)
            if answer.role != "assistant":
                raise InvalidRequest("Only an answer can be continued.")
            running.admission = admission or self.limits.admit(conversation.owner, address)
            yield from self._answer(running, conversation, answer.parent_id, None, answer)

    def answer(
        self,
        conversation_id: str,
        message_id: str,
        *,
        owner: str | None = None,
        model: str | None = None,
        admission: Admission | None = None,
        address: str | None = None,
    ) -> Iterator[Progress]:
        """An answer to a user message, e.g. one whose first answer failed."""
        with self._claim(conversation_id) as running:
            conversation = self.conversation(conversation_id, owner)
            if conversation.message(message_id).role != "user":
                raise InvalidRequest("Only your own messages can be answered.")
            running.admission = admission or self.limits.admit(conversation.owner, address)
            settings = replace(conversation.settings, model=model) if model else None
            yield from self._answer(running, conversation, message_id, settings)

    def stop(self, conversation_id: str) -> bool:
        """Stop the generation running in a conversation; True if there was one."""
        with self._lock:
            running = self._running.get(conversation_id)
            if running is None:
                return False
            running.stopped = True
            stream = running.stream
        if stream is not None:
            stream.close()
        return True

    # ----- internals -------------------------------------------------------

    def _claim(self, conversation_id: str) -> _Claim:
        return _Claim(self, conversation_id)

    def _answer(
        self,
        running: _Running,
        conversation: Conversation,
        parent_id: str | None,
        override: Settings | None,
        continued: Message | None = None,
    ) -> Iterator[Progress]:
        settings = override or conversation.settings
        model = settings.model or self.default_model
        path = tree.path_to(conversation, parent_id)
        if continued is not None:
            path.append(continued)
        sources = self._retrieve(conversation, path, settings)
        answer_tokens = settings.max_tokens or DEFAULT_ANSWER_TOKENS
        messages, sources = build_messages(
            path, settings.system_prompt, sources, self.context_tokens, answer_tokens
        )
        draft = continued or tree.make_message(
            "assistant", "", parent_id, model=model, sources=tuple(sources), status="streaming"
        )
        accumulator = Accumulator()
        self.require_backend()
        stream = self.backend.stream_chat(messages, model, settings.sampling())
        with self._lock:
            running.stream = stream
        if running.stopped:
            stream.close()
        ended = False
        try:
            for event in stream:
                accumulator.add(event)
                yield Progress(
                    conversation,
                    _with_accumulated(draft, accumulator, continued, "streaming"),
                    content_delta=event.text if isinstance(event, ContentDelta) else "",
                    reasoning_delta=event.text if isinstance(event, ReasoningDelta) else "",
                )
            ended = True
        except BackendError as error:
            ended = True
            if not running.stopped:
                failure = self.watch.explain(error) if self.watch is not None else error
                self._keep_partial(conversation, draft, accumulator, continued, "error",
                                   str(failure))
                if failure is error:
                    raise
                raise failure from error
        finally:
            stream.close()
            if not ended:  # the consumer closed this generator: that is a Stop
                self._keep_partial(conversation, draft, accumulator, continued, "stopped", None)
        if running.stopped and not _has_output(accumulator):
            return  # stopped before the first token: no ghost message
        status: tree.Status = "stopped" if running.stopped else "complete"
        final = _with_accumulated(draft, accumulator, continued, status)
        yield Progress(self._store_answer(conversation, final, continued), final, done=True)

    def _retrieve(
        self, conversation: Conversation, path: Sequence[Message], settings: Settings
    ) -> list[Source]:
        if not settings.rag_enabled or self.retriever is None:
            return []
        query = next((m.content for m in reversed(path) if m.role == "user"), "")
        if not query:
            return []
        return self.retriever.retrieve(query, conversation.owner, conversation.id)

    def _keep_partial(
        self,
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
        self._store_answer(conversation, partial, continued)

    def _store_answer(
        self, conversation: Conversation, answer: Message, continued: Message | None
    ) -> Conversation:
        latest = self.store.load(conversation.id)
        if continued is not None and continued.id in latest.messages:
            updated = tree.replace_message(latest, answer)
            updated = tree.switch_to(updated, answer.id)
        else:
            updated = tree.add_message(latest, answer)
        self.store.save(updated)
        return updated


class _Claim:
    """Marks a conversation busy for the length of a ``with`` block."""

    def __init__(self, service: ChatService, conversation_id: str) -> None:
        self._service = service
        self._id = conversation_id

    def __enter__(self) -> _Running:
        with self._service._lock:
            if self._id in self._service._running:
                raise ConversationBusy(
                    "An answer is still being generated in this conversation; "
                    "stop it or wait for it to finish."
                )
            running = _Running()
            self._service._running[self._id] = running
            return running

    def __exit__(self, *exc: object) -> None:
        with self._service._lock:
            running = self._service._running.pop(self._id, None)
        if running is not None and running.admission is not None:
            running.admission.release()


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
