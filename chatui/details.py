"""How an answer was made, in words: the "details" fold under an answer.

``details_markdown(message)`` is what the UI shows (``chatui.ui.render`` calls
it) and what the Markdown export may include: the model asked for and the one
that answered, the server's build, the sampling settings and seed, the context
size, how a continuation was asked for, what was trimmed to fit, the sources
used and the speed. Every value from the server or the store is shown as code
text (backticks stripped), so nothing in it can become markup.
"""

from __future__ import annotations

from chatui.tree import Message

_LABELS = {
    "temperature": "temperature", "top_p": "top p", "top_k": "top k", "min_p": "min p",
    "max_tokens": "max tokens", "repeat_penalty": "repeat penalty",
    "presence_penalty": "presence penalty", "frequency_penalty": "frequency penalty",
    "seed": "seed",
}
_CONTINUE_WORDS = {
    "final-message": "the server's `continue_final_message`",
    "completions": "the model's own chat template on `/v1/completions`",
    "resend": "the history sent again (this server cannot continue a message)",
}


def _code(value: object) -> str:
    text = str(value).replace("`", "'").replace("\n", " ").strip()
    return f"`{text[:200]}`" if text else "—"


def details_markdown(message: Message) -> str:
    """The details fold of an answer (empty for a message that is not an answer)."""
    if message.role != "assistant":
        return ""
    lines: list[str] = []
    made = message.made
    if made is None:
        lines.append("- Made before chatui kept how answers are made.")
        if message.model:
            lines.append(f"- Model: {_code(message.model)}")
    else:
        lines.append(f"- Model asked for: {_code(made.requested_model or 'the server default')}")
        if made.server_model and made.server_model != made.requested_model:
            lines.append(f"- Model that answered: {_code(made.server_model)}")
        if made.server_build:
            lines.append(f"- Server build: {_code(made.server_build)}")
        sampling = [f"{label} {_code(made.setting(name))}" for name, label in _LABELS.items()
                    if made.setting(name) is not None]
        lines.append("- Sampling: " + (", ".join(sampling) if sampling
                                       else "the server's defaults (no seed: not reproducible)"))
        if made.setting("seed") is None and sampling:
            lines.append("- No seed was set: a retry may differ.")
        if made.setting("system_prompt"):
            lines.append(f"- System prompt: {_code(made.setting('system_prompt'))}")
        if made.context_tokens:
            lines.append(f"- Context: {made.context_tokens:,} tokens")
        if made.continue_mode:
            lines.append(f"- Continued with {_CONTINUE_WORDS.get(made.continue_mode, 'resend')}")
        if made.trimmed:
            lines.append(f"- Trimmed: {_code(made.trimmed)}")
    if message.sources:
        used = ", ".join(f"[{s.number}] {_code(s.document)}" for s in message.sources)
        lines.append(f"- Sources used: {used}")
    timings = message.timings
    if timings is not None:
        parts = [f"{timings.generated_tokens} tokens"]
        if timings.prompt_tokens is not None:
            cached = f" ({timings.cached_tokens} from cache)" if timings.cached_tokens else ""
            parts.append(f"prompt {timings.prompt_tokens}{cached}")
        if timings.tokens_per_second:
            parts.append(f"{timings.tokens_per_second:.1f} tok/s")
        if timings.ttft_ms is not None:
            parts.append(f"first token {timings.ttft_ms / 1000:.2f} s")
        lines.append("- Speed: " + ", ".join(parts) + f" ({timings.source}'s measure)")
    return "\n".join(lines)
