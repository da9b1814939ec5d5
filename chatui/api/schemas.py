"""Request and response bodies of the REST API (pydantic), and their conversions.

Request models validate ranges and forbid unknown fields, so a typo such as
``"temprature"`` is a 422 rather than silently ignored. Response models mirror
``chatui.codec``'s dicts without constraints: whatever the store holds can be
shown. ``ChatExport`` is both the JSON history and the import body, so an
export can be posted back to ``/chats/import`` as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from chatui import codec
from chatui.cache import CacheStats
from chatui.settings import BY_NAME, FIELDS, MAX_NAME, MAX_TEXT, SettingField
from chatui.storage import ID_PATTERN
from chatui.store import ConversationSummary
from chatui.supervisor import BackendHealth
from chatui.transfer import ImportRefused
from chatui.tree import Conversation, Message


MessageId = Annotated[str, Field(pattern=ID_PATTERN, description="Letters, digits, - and _.")]
"""A message id a client sends (or imports): checked like every id from outside."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no "true" for a number


class _Record(BaseModel):
    """Strict for what clients send (imports); ``of`` builds from our own values leniently."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)  # json.loads accepts NaN


def _request_field(setting: SettingField) -> tuple[Any, Any]:
    """A setting as an optional request field with the table's range (null: not given)."""
    constraints: dict[str, Any] = {"description": f"{setting.help} Unset: {setting.unset}."}
    if setting.kind is float:
        constraints["allow_inf_nan"] = False
    if setting.minimum is not None:
        constraints["ge"] = setting.kind(setting.minimum)
    if setting.maximum is not None:
        constraints["le"] = setting.kind(setting.maximum)
    if setting.max_length is not None:
        constraints["max_length"] = setting.max_length
    if setting.optional and setting.kind is str:
        constraints["min_length"] = 1  # unset is null, not ""
    return setting.kind | None, Field(default=None, **constraints)


def _settings_fields(names: Iterable[str]) -> dict[str, Any]:
    return {name: _request_field(BY_NAME[name]) for name in names}


SAMPLING_FIELDS = tuple(setting.name for setting in FIELDS if setting.sampling)
"""The settings a single message may override, besides ``model``."""


class _ChatCreate(_Input):
    title: str | None = Field(default=None, max_length=MAX_NAME)

    def settings_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"title"}, exclude_none=True)


class _MessageCreate(_Input):
    content: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    parent_id: MessageId | None = Field(
        default=None, max_length=MAX_NAME,
        description="Absent: continue the active branch. null: a new first message. "
        "An id: the new message goes under that message.",
    )
    regenerate_id: MessageId | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    continue_id: MessageId | None = Field(
        default=None, min_length=1, max_length=MAX_NAME,
        description="Continue this answer: the model writes on at its end (same message).")
    reproduce_id: MessageId | None = Field(
        default=None, min_length=1, max_length=MAX_NAME,
        description="Retry this answer with the model, settings and seed it was made with; "
        "the new answer goes beside it.")

    @model_validator(mode="after")
    def _content_or_regenerate(self) -> _MessageCreate:
        again = [name for name in ("continue_id", "reproduce_id") if getattr(self, name)]
        if again:
            given = {name for name in self.model_fields_set if getattr(self, name) is not None}
            if len(again) > 1 or given - set(again) or "parent_id" in self.model_fields_set:
                raise ValueError(f"{again[0]} takes nothing else: no content, parent_id "
                                 "or settings.")
            return self
        if self.regenerate_id is None and self.content is None:
            raise ValueError("Give the message's content (or regenerate_id to regenerate).")
        if self.regenerate_id is not None and self.content is not None:
            raise ValueError("Regenerating takes no content; to edit, post content with parent_id.")
        if self.regenerate_id is not None and "parent_id" in self.model_fields_set:
            raise ValueError("A regenerated answer goes beside the old one; give no parent_id.")
        return self

    def overrides(self) -> dict[str, Any]:
        """The settings this message overrides: model and sampling fields that are set."""
        return self.model_dump(
            exclude={"content", "parent_id", "regenerate_id", "continue_id", "reproduce_id"},
            exclude_none=True,
        )


class _SettingsRecord(_Record):
    pass


# The settings fields come from ``chatui.settings.FIELDS``; mypy sees the base classes.
if TYPE_CHECKING:
    ChatCreate = _ChatCreate
    MessageCreate = _MessageCreate
    SettingsRecord = _SettingsRecord
else:
    ChatCreate = create_model(
        "ChatCreate", __base__=_ChatCreate, __module__=__name__,
        __doc__="A new chat. Unset fields take the server's configured defaults.",
        **_settings_fields(setting.name for setting in FIELDS),
    )
    MessageCreate = create_model(
        "MessageCreate", __base__=_MessageCreate, __module__=__name__,
        __doc__="""A message to answer, or an answer to regenerate.

    - Continue the chat: ``{"content": ...}``; it goes under the active branch's last message.
    - Branch from any message: ``parent_id`` = that message's id.
    - Edit a message M: ``parent_id`` = M's ``parent_id`` and the new content; the new
      message becomes M's sibling. Editing a first message: ``"parent_id": null``.
    - Regenerate an answer A: ``{"regenerate_id": A's id}`` without content; a new
      answer becomes A's sibling (only ``model`` may be overridden then).
    - Continue an answer A: ``{"continue_id": A's id}``: more text at A's end, in A.
    - Retry A the way it was made: ``{"reproduce_id": A's id}``: its model, settings
      and seed (A's ``made``); a new answer becomes A's sibling.
    """,
        **_settings_fields(("model", *SAMPLING_FIELDS)),
    )
    SettingsRecord = create_model(  # what the store holds: shown as it is, no ranges
        "SettingsRecord", __base__=_SettingsRecord, __module__=__name__,
        **{s.name: ((s.kind | None) if s.optional else s.kind, s.default) for s in FIELDS},
    )


class BranchSwitch(_Input):
    message_id: MessageId = Field(
        min_length=1, max_length=MAX_NAME,
        description="Show the branch through this message, down to its newest answer.",
    )


class ToolCallRecord(_Record):
    id: str
    name: str
    arguments: str


class TimingsRecord(_Record):
    prompt_tokens: int | None = None
    generated_tokens: int = 0
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    total_ms: float | None = None
    source: Literal["server", "client"] = "client"
    cached_tokens: int | None = None


class ProvenanceRecord(_Record):
    """How an answer was made (absent for answers from before chatui kept it)."""

    requested_model: str | None = None
    settings: dict[str, str | int | float | bool | None] = {}
    server_model: str | None = None
    server_build: str | None = None
    context_tokens: int | None = None
    continue_mode: str | None = None
    trimmed: str | None = None


class SourceRecord(_Record):
    number: int
    document: str
    page: int | None = None
    snippet: str
    score: float
    chunk_id: int | None = None


class MessageRecord(_Record):
    id: MessageId
    parent_id: MessageId | None
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    created_at: float
    reasoning: str = ""
    tool_calls: list[ToolCallRecord] = []
    model: str | None = None
    timings: TimingsRecord | None = None
    sources: list[SourceRecord] = []
    status: Literal["complete", "stopped", "error", "streaming"] = "complete"
    error: str | None = None
    made: ProvenanceRecord | None = None

    @classmethod
    def of(cls, message: Message) -> MessageRecord:
        return cls.model_validate(codec.message_to_dict(message), strict=False)


class ChatRecord(_Record):
    id: str
    title: str
    created_at: float
    updated_at: float
    current_leaf_id: str | None = None
    owner: str = "local"
    settings: SettingsRecord = SettingsRecord()

    @classmethod
    def of(cls, conversation: Conversation) -> ChatRecord:
        return cls.model_validate(codec.conversation_header(conversation), strict=False)


class ChatExport(ChatRecord):
    """A chat with its messages: the active branch, or the whole tree (``?tree=true``)."""

    messages: list[MessageRecord] = []

    @classmethod
    def of_messages(cls, conversation: Conversation, messages: list[Message]) -> ChatExport:
        header = codec.conversation_header(conversation)
        header["messages"] = [codec.message_to_dict(m) for m in messages]
        return cls.model_validate(header, strict=False)


class ChatImport(_Record):
    """An exported chat (``GET /chats/{id}/history?tree=true``); it gets a fresh id.

    Unknown fields are ignored, so an export from a newer version still imports.
    """

    id: str | None = Field(default=None, description="Ignored: the import gets a fresh id.")
    title: str = Field(default="New chat", max_length=MAX_TEXT)
    created_at: float | None = None
    updated_at: float | None = None
    current_leaf_id: MessageId | None = None
    owner: str | None = Field(
        default=None, description="Ignored: the import belongs to the caller.")
    settings: SettingsRecord = SettingsRecord()
    messages: list[MessageRecord] = Field(default_factory=list, max_length=100_000)

    @classmethod
    def check(cls, data: Mapping[str, Any]) -> None:
        """``ImportRefused`` naming the first field of ``data`` this schema refuses.

        The importer reads chatui's format with this check (REST and page alike),
        so what the spec promises to refuse is refused, not read as a default.
        """
        try:
            cls.model_validate(data)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the chat"
            raise ImportRefused(f"This chatui export cannot be imported: {where}: "
                                f"{first['msg']}.") from None


class ChatSummaryRecord(BaseModel):
    id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int
    preview: str = Field("", description="The first words of the last message shown.")

    @classmethod
    def of(cls, summary: ConversationSummary) -> ChatSummaryRecord:
        return cls(
            id=summary.id, title=summary.title, created_at=summary.created_at,
            updated_at=summary.updated_at, message_count=summary.message_count,
            preview=summary.preview,
        )


class StopResult(BaseModel):
    stopped: bool = Field(description="Whether an answer was being generated.")


class CacheRecord(BaseModel):
    hits: int
    misses: int
    size: int
    capacity: int

    @classmethod
    def of(cls, stats: CacheStats) -> CacheRecord:
        return cls(hits=stats.hits, misses=stats.misses, size=stats.size, capacity=stats.capacity)


class StatsRecord(BaseModel):
    cache: CacheRecord | None = Field(description="null when the store has no cache in front.")


class BackendHealthRecord(BaseModel):
    kind: Literal["embedded", "external"] = Field(
        description="The bundled model run by chatui, or a server at --api-base.")
    url: str = Field(description="The model server's base URL.")
    state: Literal["unknown", "starting", "ok", "restarted", "restarting", "down", "failed"] = (
        Field(description="ok / restarted: answers. restarting, starting: wait. down: does not "
              "answer. failed: the embedded model could not be restarted. unknown: not checked "
              "yet."))
    message: str = Field(description="The state in words, for a person.")
    since: float = Field(description="When the state last changed (seconds since the epoch).")
    restarts: int = Field(description="Restarts of the embedded model since the app started.")
    log_tail: str = Field(description="The embedded model's last log lines, once it failed.")

    @classmethod
    def of(cls, health: BackendHealth) -> BackendHealthRecord:
        return cls(kind=health.kind, url=health.url, state=health.state, message=health.message,
                   since=health.since, restarts=health.restarts, log_tail=health.log_tail)


class StatusRecord(BaseModel):
    backend: BackendHealthRecord | None = Field(
        description="The model server's health; null when nothing watches it.")


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
