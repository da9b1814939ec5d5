"""The chat service: user actions in, tree + store + backend + retriever calls out.

The Gradio UI, the REST API and the command-line chat all call this module and
nothing below it knows about them. Data flows one way:

    UI / REST / CLI  ->  ChatService  ->  tree (pure), store, backend client, retriever

Rules it keeps:

- The store is written once per finished step (the user message, the final or
  stopped answer), never per streamed token. The user message is written by
  the runner while the request starts (``runner.produce``), and is on disk
  before any step is shown or the answer stored.
- One generation at a time per conversation; a second one raises
  ``ConversationBusy`` instead of interleaving writes into the same tree.
- A failed answer with no content never reaches the tree or the store; a
  partial answer is kept with status "error" and the error text (as ``watch``
  explains it: "The embedded model crashed (SIGKILL: …) while answering.").
- With a ``watch`` (``chatui.supervisor``), no answer is asked of a backend
  known to be down: ``BackendDown`` says why, before anything is stored. Stop
  keeps the partial answer as "stopped".
- ``owner`` is required everywhere and scopes every lookup: another owner's
  conversation is ``NotFound``, exactly like one that does not exist. (The
  single local user is the owner "local", passed by the edges.)
- Deleting a conversation stops its answer first (which is stored as stopped,
  then deleted with the rest) and drops the documents attached to it
  (``Retriever.forget``).
- Every answer is admitted by ``limits`` (per-user answers at once and per
  minute) before anything is stored, and counts until it ends; a refused one
  raises ``LimitExceeded`` and changes nothing. ``address`` (where the request
  came from, as the edge saw it) counts too for anonymous visitors, who can
  shed their owner id by dropping a cookie.

Answers: ``start_send`` / ``start_edit`` / ``start_regenerate`` /
``start_continue`` / ``start_retry`` check, admit and claim, raise at once if
any of it fails, and return an ``Answer`` (``chatui.answer``) whose runner
streams the model's reply and stores it; the UI, the REST API and the terminal
only read it. ``stop_all`` ends them all when the server stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from chatui import tree
from chatui.answer import Answer, Follower, Progress
from chatui.client import BackendClient
from chatui.errors import ConversationBusy, InvalidRequest, NotFound
from chatui.limits import Admission, Limits, UserLimits
from chatui.runner import Retriever, produce
from chatui.store import ConversationPage, ConversationStore, ConversationSummary
from chatui.context import ContextUse, context_use
from chatui.serverinfo import ServerFeatures
from chatui.supervisor import BackendHealth, BackendWatch
from chatui.tree import Conversation, Message, Settings

STOP_WAIT_SECONDS = 10.0  # how long a delete waits for a stopped answer to be stored

__all__ = ["Answer", "ChatService", "Progress", "Retriever"]


class ChatService:
    def __init__(
        self,
        store: ConversationStore,
        backend: BackendClient,
        *,
        default_model: str | None = None,
        defaults: Settings | None = None,
        retriever: Retriever | None = None,
        context_tokens: int = 4096,
        limits: Limits | None = None,
        watch: BackendWatch | None = None,
        features: ServerFeatures | None = None,
    ) -> None:
        self.store = store
        self.watch = watch
        self.features = features  # how this server continues, its n_ctx (chatui.serverinfo)
        self.backend = backend
        self.default_model = default_model
        self.defaults = defaults or Settings()
        self.retriever = retriever
        self.context_tokens = context_tokens
        self.limits = limits or Limits(UserLimits.none())
        self._running: dict[str, Answer] = {}  # conversation id -> its answer
        self._admissions: dict[Answer, Admission | None] = {}
        self._owners: dict[Answer, str] = {}  # a launched answer -> its conversation's owner
        self._models: tuple[str, ...] | None = None  # the last list the model server gave
        self._lock = threading.Lock()

    # ----- queries -------------------------------------------------------

    def conversation(self, conversation_id: str, owner: str) -> Conversation:
        try:
            conversation = self.store.load(conversation_id)
        except NotFound:
            # The same words as for another's chat: a guessed id tells nothing.
            raise NotFound("There is no such conversation.") from None
        if conversation.owner != owner:
            raise NotFound("There is no such conversation.")
        return conversation

    def conversations(self, owner: str) -> list[ConversationSummary]:
        return self.store.list(owner=owner)

    def search(self, text: str, owner: str) -> list[ConversationSummary]:
        return self.store.search(text, owner=owner)

    def conversation_page(
        self, owner: str, limit: int = 50, cursor: str | None = None, search: str = ""
    ) -> ConversationPage:
        """Newest first; ``next_cursor`` asks for the next page (a forged one: InvalidRequest)."""
        return self.store.page(owner, limit, cursor, search)

    def models(self) -> list[str]:
        """The model server's models. While an answer is being generated, the list known
        from before: a server with one slot (the embedded one) would answer only after
        that answer ends, and a page (re)opened meanwhile would wait for it."""
        with self._lock:
            busy = any(answer.started and not answer.ended for answer in self._running.values())
            known = self._models
        if busy and known is not None:
            return list(known)
        models = self.backend.list_models()
        with self._lock:
            self._models = tuple(models)
        return models

    def backend_health(self) -> BackendHealth | None:
        """How the model server is doing (None when nothing watches it)."""
        return self.watch.health() if self.watch is not None else None

    def require_backend(self) -> None:
        """Raise ``BackendDown`` when the model is known to be unable to answer now."""
        if self.watch is not None:
            self.watch.require_answering()

    def is_generating(self, conversation_id: str, owner: str) -> bool:
        """Whether an answer is being generated in this (``owner``'s) conversation."""
        self.conversation(conversation_id, owner)
        with self._lock:
            return conversation_id in self._running

    def follow(self, conversation_id: str, owner: str) -> Follower | None:
        """A new reader of the answer being generated in this (``owner``'s) chat, if any:
        the answer so far, then the rest (a page re-attaching). It never stops the answer."""
        self.conversation(conversation_id, owner)  # another's chat is NotFound
        with self._lock:
            answer = self._running.get(conversation_id)
        if answer is None or not answer.started or answer.ended:
            return None
        return answer.follow()

    def answering(self, owner: str) -> frozenset[str]:
        """The ids of ``owner``'s chats with an answer being generated now (the sidebar's
        mark, ``ui.sidebar``; no store access). A quick change's claim is not listed."""
        with self._lock:
            return frozenset(cid for cid, answer in self._running.items()
                             if answer.started and not answer.ended
                             and self._owners.get(answer) == owner)

    # ----- commands on conversations ---------------------------------------

    def create(
        self, owner: str, title: str | None = None, settings: Settings | None = None
    ) -> Conversation:
        conversation = tree.new_conversation(
            title=title or "New chat", settings=settings or self.defaults, owner=owner
        )
        self.store.save(conversation)
        return conversation

    def rename(self, conversation_id: str, title: str, owner: str) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.rename(c, title))

    def update_settings(self, conversation_id: str, settings: Settings, owner: str) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.with_settings(c, settings))

    def delete(self, conversation_id: str, owner: str) -> None:
        """Delete a conversation and the documents attached to it (not the owner's library).

        An answer being generated there is stopped first, and its end awaited (it
        stores the partial answer, which then goes with the rest); the claim
        keeps a new one from starting while the conversation is deleted.
        """
        conversation = self.conversation(conversation_id, owner)
        with self._lock:
            running = self._running.get(conversation_id)
        if running is not None:
            running.stop()
            running.wait(STOP_WAIT_SECONDS)  # not ended by then: the claim below says busy
        with self._claim(conversation_id) as claim:
            try:
                self.store.delete(conversation_id)
            finally:
                self._release(claim)
        if self.retriever is not None:
            self.retriever.forget(conversation.owner, conversation_id)

    def switch_branch(self, conversation_id: str, message_id: str, owner: str) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.switch_to(c, message_id))

    def step_sibling(
        self, conversation_id: str, message_id: str, step: int, owner: str
    ) -> Conversation:
        return self._update(
            conversation_id, owner, lambda c: tree.switch_sibling(c, message_id, step)
        )

    def delete_message(self, conversation_id: str, message_id: str, owner: str) -> Conversation:
        return self._update(conversation_id, owner, lambda c: tree.delete_subtree(c, message_id))

    def import_conversation(self, conversation: Conversation, owner: str) -> Conversation:
        """Store an exported conversation under a fresh id, owned by ``owner``."""
        fresh = tree.new_conversation(conversation.title, conversation.settings, owner)
        imported = replace(conversation, id=fresh.id, owner=owner, created_at=fresh.created_at)
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
        owner: str,
        change: Callable[[Conversation], Conversation],
    ) -> Conversation:
        self.conversation(conversation_id, owner)  # another's chat is NotFound, busy or not
        with self._claim(conversation_id) as claim:
            try:
                updated = change(self.conversation(conversation_id, owner))
                self.store.save(updated)
                return updated
            finally:
                self._release(claim)

    # ----- answers ----------------------------------------------------------------
    #
    # Each start_* checks, admits and claims before it returns an ``Answer``
    # (``chatui.answer``); a refusal raises and stores nothing.

    def start_send(
        self,
        conversation_id: str,
        text: str,
        *,
        owner: str,
        parent_id: str | None = None,
        branch_from_current: bool = True,
        settings: Settings | None = None,
        address: str | None = None,
    ) -> Answer:
        """Add a user message (under the current leaf, or ``parent_id``) and answer it."""
        if not text.strip():
            raise InvalidRequest("The message is empty.")
        self.conversation(conversation_id, owner)  # another's chat is NotFound, busy or not
        with self._claim(conversation_id) as answer:
            conversation = self.conversation(conversation_id, owner)
            if parent_id is None and branch_from_current:
                parent_id = conversation.current_leaf_id
            if parent_id is not None:
                conversation.message(parent_id)
            self._admit(answer, conversation, address)
            if not conversation.messages and conversation.title == "New chat":
                conversation = tree.rename(conversation, tree.title_from(text))
            user = tree.make_message("user", text, parent_id)
            conversation = tree.add_message(conversation, user)
            return self._launch(answer, conversation, user.id, settings, question=True)

    def start_chat(
        self, text: str, *, owner: str, settings: Settings | None = None,
        address: str | None = None,
    ) -> Answer:
        """A new conversation that starts with ``text``, and its answer.

        Admitted before the conversation exists: a refused one stores nothing.
        """
        if not text.strip():
            raise InvalidRequest("The message is empty.")
        self.require_backend()
        admission: Admission | None = self.limits.admit(owner, address)
        try:
            conversation = tree.new_conversation(
                title=tree.title_from(text), settings=settings or self.defaults, owner=owner
            )
            with self._claim(conversation.id) as answer:
                with self._lock:
                    self._admissions[answer], admission = admission, None
                user = tree.make_message("user", text, None)
                conversation = tree.add_message(conversation, user)
                return self._launch(answer, conversation, user.id, None, question=True)
        finally:
            if admission is not None:
                admission.release()

    def start_edit(
        self, conversation_id: str, message_id: str, text: str, *, owner: str,
        address: str | None = None,
    ) -> Answer:
        """A new sibling of a user message with ``text``, then a fresh answer."""
        original = self.conversation(conversation_id, owner).message(message_id)
        if original.role != "user":
            raise InvalidRequest("Only your own messages can be edited.")
        return self.start_send(
            conversation_id, text, owner=owner, parent_id=original.parent_id,
            branch_from_current=False, address=address,
        )

    def start_regenerate(
        self, conversation_id: str, message_id: str, *, owner: str, model: str | None = None,
        address: str | None = None,
    ) -> Answer:
        """A new answer beside an assistant message; the old one stays."""
        answer = self.conversation(conversation_id, owner).message(message_id)
        if answer.role != "assistant" or answer.parent_id is None:
            raise InvalidRequest("Only an answer can be regenerated.")
        return self.start_retry(
            conversation_id, answer.parent_id, owner=owner, model=model, address=address
        )

    def start_continue(
        self, conversation_id: str, message_id: str, *, owner: str, address: str | None = None,
    ) -> Answer:
        """Generate more text at the end of an assistant message."""
        self.conversation(conversation_id, owner)
        with self._claim(conversation_id) as answer:
            conversation = self.conversation(conversation_id, owner)
            continued = conversation.message(message_id)
            if continued.role != "assistant":
                raise InvalidRequest("Only an answer can be continued.")
            self._admit(answer, conversation, address)
            return self._launch(answer, conversation, continued.parent_id, None, continued)

    def start_retry(
        self, conversation_id: str, message_id: str, *, owner: str, model: str | None = None,
        address: str | None = None, settings: Settings | None = None,
    ) -> Answer:
        """An answer to a user message (one whose answer failed; ``settings``: not the chat's)."""
        self.conversation(conversation_id, owner)
        with self._claim(conversation_id) as answer:
            conversation = self.conversation(conversation_id, owner)
            if conversation.message(message_id).role != "user":
                raise InvalidRequest("Only your own messages can be answered.")
            self._admit(answer, conversation, address)
            if model:
                settings = replace(settings or conversation.settings, model=model)
            return self._launch(answer, conversation, message_id, settings)

    def start_reproduce(
        self, conversation_id: str, message_id: str, *, owner: str, address: str | None = None,
    ) -> Answer:
        """Answer again beside ``message_id`` as it was made: its model, settings and seed."""
        old = self.conversation(conversation_id, owner).message(message_id)
        if old.role != "assistant" or old.parent_id is None:
            raise InvalidRequest("Only an answer can be retried with its settings.")
        return self.start_retry(conversation_id, old.parent_id, owner=owner, address=address,
                                settings=old.made.as_settings() if old.made else None)

    def context_use(self, conversation_id: str, owner: str, draft: str = "") -> ContextUse:
        """How full the model's context is on the active branch, and whether ``draft`` fits."""
        info = self.features.info() if self.features is not None else None
        return context_use(self.conversation(conversation_id, owner),
                           (info.context_tokens if info else None) or self.context_tokens, draft)

    def stop(self, conversation_id: str, owner: str) -> bool:
        """Stop the answer being generated in a conversation; True if there was one."""
        self.conversation(conversation_id, owner)
        with self._lock:
            answer = self._running.get(conversation_id)
        return answer is not None and answer.stop()

    def stop_all(self, wait: float = STOP_WAIT_SECONDS) -> int:
        """Stop every answer being generated (the server shuts down); how many. Each is
        stored as "stopped" with what came: this waits up to ``wait`` s in all for that."""
        with self._lock:
            answers = list(self._running.values())
        stopped = [answer for answer in answers if answer.stop()]
        deadline = time.monotonic() + wait
        for answer in stopped:
            answer.wait(max(0.0, deadline - time.monotonic()))
        return len(stopped)

    # ----- internals -------------------------------------------------------

    @contextmanager
    def _claim(self, conversation_id: str) -> Iterator[Answer]:
        """Mark a conversation busy; given back here only if the block raises.

        On success the answer's runner gives it back when it ends.
        """
        answer = Answer(conversation_id)
        with self._lock:
            if conversation_id in self._running:
                raise ConversationBusy(
                    "An answer is still being generated in this conversation; "
                    "stop it or wait for it to finish."
                )
            self._running[conversation_id] = answer
        try:
            yield answer
        except BaseException:
            self._release(answer)
            raise

    def _release(self, answer: Answer) -> None:
        """Give the conversation and the admission back; the answer, if it never ran, ends."""
        with self._lock:
            if self._running.get(answer.conversation_id) is answer:
                del self._running[answer.conversation_id]
            admission = self._admissions.pop(answer, None)
            self._owners.pop(answer, None)
        if admission is not None:
            admission.release()
        if not answer.started:
            answer.end()  # so that a delete waiting for it goes on at once

    def _admit(self, answer: Answer, conversation: Conversation, address: str | None) -> None:
        """The model can answer now and the owner has room: else raise, before storing."""
        self.require_backend()
        admission = self.limits.admit(conversation.owner, address)
        with self._lock:
            self._admissions[answer] = admission

    def _launch(
        self,
        answer: Answer,
        conversation: Conversation,
        parent_id: str | None,
        override: Settings | None,
        continued: Message | None = None,
        question: bool = False,
    ) -> Answer:
        """Run the answer; with ``question``, ``conversation`` (holding the new question) is
        stored by the runner while the request starts, before any step is shown."""
        stored = conversation
        job = produce(self, answer, conversation, parent_id, override, continued,
                      (lambda: self.store.save(stored)) if question else None)
        with self._lock:
            self._owners[answer] = conversation.owner
        answer.run(job, on_end=lambda: self._release(answer))
        return answer
