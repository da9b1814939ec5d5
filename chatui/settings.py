"""Generation settings, defined once: the ``Settings`` value and the table of its fields.

``Settings`` is a conversation's generation settings (system prompt, model,
sampling, "use documents"). Each of its fields carries one row of
``SettingField``: type, range, default, label and help. Everything else is
derived from that table at the edges, by iterating ``FIELDS`` in order:

    api/schemas.py   the REST request and record models (fields and ranges)
    config.py        the CLI flags ``--temperature`` ... and ``CHATUI_TEMPERATURE`` ...
    ui/layout.py     the Settings form, one component per field, in table order
    codec.py         the stored dict (old files still read: see ``SettingField.stored``)

So adding a setting is one line here, and a field cannot be offered by one
edge and forgotten by another (``tests/test_settings.py`` checks the sets).

Invariants: a ``Settings`` value is always within the table's ranges (it
refuses anything else when built); ``None`` in an optional field means "the
model server's default" and is never sent. Nothing here imports Gradio,
FastAPI or argparse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from types import NoneType, UnionType
from typing import Any, Literal, get_args, get_type_hints

from chatui.errors import InvalidRequest

MAX_TEXT = 200_000  # characters of a system prompt (and of any text a client sends)
MAX_NAME = 200  # characters of a model name or a title
MAX_SEED = 2**32 - 1

Kind = type[bool] | type[int] | type[float] | type[str]
Widget = Literal["model", "text", "number", "toggle"]


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    help: str
    minimum: float | None
    maximum: float | None
    step: float | None
    max_length: int | None
    sampling: bool
    unset: str


def _setting(
    default: Any, label: str, help: str, *, minimum: float | None = None,
    maximum: float | None = None, step: float | None = None, max_length: int | None = None,
    sampling: bool = True, unset: str = "server default",
) -> Any:
    row = _Row(label, help, minimum, maximum, step, max_length, sampling, unset)
    return field(default=default, metadata={"setting": row})


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-conversation generation settings; ``None`` means the model server's default."""

    model: str | None = _setting(
        None, "Model", "The model that answers (also used by ↻ regenerate).",
        max_length=MAX_NAME, sampling=False, unset="the first one the server lists")
    system_prompt: str = _setting(
        "", "System prompt", "Instructions the model reads before the conversation.",
        max_length=MAX_TEXT, sampling=False, unset="empty")
    temperature: float | None = _setting(
        None, "Temperature", "Randomness: 0 always picks the likeliest word.",
        minimum=0, maximum=2, step=0.05)
    top_p: float | None = _setting(
        None, "Top p", "Pick only among the likeliest words that together make up this share.",
        minimum=0, maximum=1, step=0.05)
    top_k: int | None = _setting(
        None, "Top k", "Pick only among this many likeliest words (0: all).",
        minimum=0, maximum=1000, step=1)
    min_p: float | None = _setting(
        None, "Min p", "Leave out words less likely than this share of the likeliest.",
        minimum=0, maximum=1, step=0.01)
    max_tokens: int | None = _setting(
        None, "Max tokens", "Longest answer, in tokens.", minimum=1, maximum=131_072, step=1)
    repeat_penalty: float | None = _setting(
        None, "Repeat penalty", "Above 1 makes repeating recent words less likely.",
        minimum=0, maximum=2, step=0.05)
    presence_penalty: float | None = _setting(
        None, "Presence penalty", "Above 0 makes any word already used less likely.",
        minimum=-2, maximum=2, step=0.1)
    frequency_penalty: float | None = _setting(
        None, "Frequency penalty", "Above 0 makes a word less likely the more it was used.",
        minimum=-2, maximum=2, step=0.1)
    seed: int | None = _setting(
        None, "Seed", "The same seed and settings give the same answer.",
        minimum=0, maximum=MAX_SEED, step=1, unset="random")
    rag_enabled: bool = _setting(
        False, "Use documents",
        "Answer from this chat's documents and your library, citing them as [1], [2], …",
        sampling=False, unset="off")

    def __post_init__(self) -> None:
        for setting in FIELDS:
            setting.check(getattr(self, setting.name))

    def sampling(self) -> dict[str, Any]:
        """The sampling fields that are set, as request parameters."""
        values = {s.name: getattr(self, s.name) for s in FIELDS if s.sampling}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class SettingField:
    """One row of the table: a field of ``Settings`` and what every edge needs to offer it."""

    name: str
    kind: Kind
    optional: bool  # None allowed: the model server's default
    default: Any
    label: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    max_length: int | None = None
    sampling: bool = True  # sent to the model server as a request parameter
    unset: str = "server default"  # what an empty field means, in words

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "CHATUI_" + self.name.upper()

    @property
    def widget(self) -> Widget:
        if self.name == "model":
            return "model"  # a choice among the server's models, or any name
        if self.kind is bool:
            return "toggle"
        return "text" if self.kind is str else "number"

    @property
    def range_text(self) -> str:
        if self.minimum is None or self.maximum is None:
            return ""
        return f"{_number(self.minimum)} to {_number(self.maximum)}"

    def check(self, value: Any) -> None:
        """Raise ``InvalidRequest`` (a sentence naming the setting) unless ``value`` fits."""
        if value is None:
            if self.optional:
                return
            raise InvalidRequest(f"{self.label} must be set.")
        if self.kind is str:
            if not isinstance(value, str):
                raise InvalidRequest(f"{self.label} must be text.")
            if self.max_length is not None and len(value) > self.max_length:
                raise InvalidRequest(
                    f"{self.label} must be at most {self.max_length:,} characters.")
            return
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidRequest(f"{self.label} must be on or off.")
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{self.label} must be a number.")
        if self.kind is int and not isinstance(value, int):
            raise InvalidRequest(f"{self.label} must be a whole number.")
        if not math.isfinite(value) or not self._in_range(value):
            raise InvalidRequest(f"{self.label} must be from {self.range_text}, not {value}.")

    def parse(self, raw: Any) -> Any:
        """A value typed by a person (a form field, a flag, a variable), checked.

        Empty means unset (the server's default); text is read as a number for
        number fields; a whole float is accepted for a whole-number field.
        """
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and self.kind is not str):
            value: Any = None if self.optional else self.default
        elif self.kind is str:
            value = str(raw) if raw != "" or not self.optional else None
        elif self.kind is bool:
            value = _boolean(raw) if isinstance(raw, str) else raw
        else:
            value = self._number(raw)
        self.check(value)
        return value

    def stored(self, raw: Any) -> Any:
        """A value read from storage or an import: never refused, made to fit.

        Older versions let the form store numbers beyond today's range (a
        temperature up to 5, a system prompt of any length): such a value is
        clamped to the range (text cut to its limit); a value of the wrong
        type falls back to the default.
        """
        try:
            value = self.parse(raw)
        except InvalidRequest:
            if self.kind is str and isinstance(raw, str):
                return raw[:self.max_length]  # the old form took any length
            try:
                number = self._number(raw)
            except InvalidRequest:
                return self.default
            if self.minimum is None or self.maximum is None or not math.isfinite(number):
                return self.default
            value = min(max(number, self.kind(self.minimum)), self.kind(self.maximum))
        return value

    def _number(self, raw: Any) -> int | float:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise InvalidRequest(f"{self.label} must be a number.")
        if isinstance(raw, int) and self.kind is int:
            return raw
        try:
            number = float(raw)
        except (ValueError, OverflowError):
            raise InvalidRequest(f"{self.label} must be a number, not {raw!r}.") from None
        if self.kind is int:
            if not number.is_integer():
                raise InvalidRequest(f"{self.label} must be a whole number, not {raw!r}.")
            return int(number)
        return number

    def _in_range(self, value: float) -> bool:
        low, high = self.minimum, self.maximum
        return (low is None or value >= low) and (high is None or value <= high)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{int(value):,}"


def _boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(f"Expected on or off (1 or 0), not {raw!r}.")


def _table() -> tuple[SettingField, ...]:
    hints = get_type_hints(Settings)
    rows = []
    for item in fields(Settings):
        row: _Row = item.metadata["setting"]
        kinds = get_args(hints[item.name]) if isinstance(hints[item.name], UnionType) else (
            hints[item.name],)
        kind = next(k for k in kinds if k is not NoneType)
        assert item.default is not MISSING
        rows.append(SettingField(
            name=item.name, kind=kind, optional=NoneType in kinds, default=item.default,
            label=row.label, help=row.help, minimum=row.minimum, maximum=row.maximum,
            step=row.step, max_length=row.max_length, sampling=row.sampling, unset=row.unset,
        ))
    return tuple(rows)


FIELDS: tuple[SettingField, ...] = _table()
"""Every setting, in the order the form shows them."""

BY_NAME: Mapping[str, SettingField] = {setting.name: setting for setting in FIELDS}


def settings_from_values(values: Mapping[str, Any], base: Settings | None = None) -> Settings:
    """``base`` (default: the defaults) with ``values`` typed by a person, each checked."""
    changes = {name: BY_NAME[name].parse(raw) for name, raw in values.items()}
    return replace(base or Settings(), **changes)


def settings_from_stored(data: Mapping[str, Any] | None) -> Settings:
    """Settings from a stored or imported dict: unknown keys ignored, bad values made to fit."""
    data = data or {}
    return Settings(**{s.name: s.stored(data[s.name]) for s in FIELDS if s.name in data})
