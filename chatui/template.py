"""A model's own chat template: read from its GGUF file, rendered as a prefix to fill.

``read_gguf_metadata(path)`` reads the key/value header of a GGUF file (only the
header: the tensors are never touched) and ``chat_template_of(path)`` picks
``tokenizer.chat_template`` from it, with the BOS/EOS token texts the template
may use. ``render_prefix`` renders the messages with that template, without the
generation prompt, and cuts the text right after the last message's content:
the prompt that makes the model go on with that same message (a true prefix
fill, as transformers' ``continue_final_message`` does).

The template is run in jinja2's sandbox: it comes from a model file, which is
data, not code we trust.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from chatui.errors import InvalidRequest

_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_WANTED = ("tokenizer.chat_template", "tokenizer.ggml.tokens",
           "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
           "general.name", "llama.context_length")
MAX_TEMPLATE_CHARS = 200_000
_MARK = "\u2063chatui-continue\u2063"  # invisible separator: never in real text


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    source: str
    bos_token: str = ""
    eos_token: str = ""


def read_gguf_metadata(path: str | Path, keys: Sequence[str] = _WANTED) -> dict[str, Any]:
    """The header values named in ``keys`` (others are skipped without being kept)."""
    with open(path, "rb") as handle:
        if handle.read(4) != _MAGIC:
            raise ValueError(f"{path} is not a GGUF file.")
        version = _unpack(handle, "<I")
        if version < 2:
            raise ValueError(f"{path} is GGUF version {version}; only 2 and later are read.")
        _unpack(handle, "<Q")  # tensor count
        count = _unpack(handle, "<Q")
        found: dict[str, Any] = {}
        for _ in range(count):
            key = _read_string(handle)
            kind = _unpack(handle, "<I")
            found_value = _read_value(handle, kind, keep=key in keys)
            if key in keys:
                found[key] = found_value
        return found


def chat_template_of(path: str | Path) -> ChatTemplate | None:
    """The GGUF's own chat template (None if it has none)."""
    meta = read_gguf_metadata(path)
    source = meta.get("tokenizer.chat_template")
    if not isinstance(source, str) or not source:
        return None
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        index = meta.get(key)
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    return ChatTemplate(source, token("tokenizer.ggml.bos_token_id"),
                        token("tokenizer.ggml.eos_token_id"))


def render_prefix(template: ChatTemplate, messages: Sequence[Mapping[str, Any]]) -> str:
    """The prompt that ends exactly where the last message (an answer so far) ends."""
    if not messages or messages[-1].get("role") != "assistant":
        raise InvalidRequest("Only an answer can be continued.")
    partial = str(messages[-1].get("content") or "")
    marked = [*messages[:-1], {**messages[-1], "content": partial + _MARK}]
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        rendered = environment.from_string(template.source).render(
            messages=marked, add_generation_prompt=False, bos_token=template.bos_token,
            eos_token=template.eos_token, raise_exception=_raise,
        )
    except TemplateError as error:
        raise InvalidRequest(f"The model's chat template could not be used: {error}") from None
    cut = rendered.rfind(_MARK)
    if cut < 0:  # the template dropped or rewrote the text: fall back to its last copy
        cut = rendered.rfind(partial) + len(partial) if partial in rendered else -1
    if cut < 0:
        raise InvalidRequest("The model's chat template does not show the answer being continued.")
    return rendered[:cut]


def _raise(message: str) -> None:
    raise TemplateError(message)


def _unpack(handle: IO[bytes], fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("The GGUF header ends early.")
    return struct.unpack(fmt, data)[0]


def _read_string(handle: IO[bytes], keep: bool = True) -> str:
    length = _unpack(handle, "<Q")
    if not keep or length > MAX_TEMPLATE_CHARS * 4:
        handle.seek(length, 1)
        return ""
    return handle.read(length).decode("utf-8", errors="replace")


def _read_value(handle: IO[bytes], kind: int, keep: bool) -> Any:
    if kind in _SCALARS:
        return _unpack(handle, _SCALARS[kind])
    if kind == _STRING:
        return _read_string(handle, keep)
    if kind == _ARRAY:
        item_kind = _unpack(handle, "<I")
        count = _unpack(handle, "<Q")
        if not keep and item_kind in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
            return None
        return [_read_value(handle, item_kind, keep) for _ in range(count)]
    raise ValueError(f"Unknown GGUF value type {kind}.")
