"""Under the message box: the context gauge, and what the server does before the first token.

Helper E's part of the page (issue 13, items 3 and 4). One ``gr.HTML`` line:

- between answers: the tokens the open chat uses of the model's context, as a bar
  and in words (``chatui.context``), with a warning when the text being typed
  would not fit; refreshed when the session's view changes (a chat opened, an
  answer begun or ended) and as the draft changes;
- while an answer is asked for and no text has come yet: llama-server's prompt
  progress as a bar with its rate, else the seconds waited. A timer (active
  only while answering) glances at the answer's newest step (``ChatService.follow``).

Every value shown is a number or our own words: nothing from a client or the
model reaches this HTML.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from chatui.context import ContextUse
from chatui.errors import ChatError
from chatui.events import PromptProgress
from chatui.service import ChatService
from chatui.ui.refresh import Refresh
from chatui.ui.screen import View

TICK_SECONDS = 0.5

GAUGE_CSS = """
.chatui-gauge { display: flex; align-items: center; gap: 8px; font-size: var(--text-sm);
  color: var(--body-text-color-subdued); margin: 2px 0; min-height: 20px; }
.chatui-gauge-bar { flex: 0 0 120px; height: 6px; border-radius: 3px; overflow: hidden;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.chatui-gauge-fill { height: 100%; background: var(--color-accent); }
.chatui-gauge[data-level="high"] .chatui-gauge-fill { background: #d97706; }
.chatui-gauge[data-level="full"] .chatui-gauge-fill { background: #dc2626; }
.chatui-gauge[data-level="full"] { color: #dc2626; font-weight: 600; }
"""


@dataclass(frozen=True, slots=True)
class Gauge:
    line: gr.HTML
    timer: gr.Timer  # ticks only while an answer is being asked for
    since: gr.State  # when this session's answer began (time.monotonic), for "waited"


def build_gauge() -> Gauge:
    """The gauge line; ``ui.layout`` places it right under the message box."""
    line = gr.HTML("", elem_id="chatui-gauge", padding=False, css_template=GAUGE_CSS)
    return Gauge(line, gr.Timer(TICK_SECONDS, active=False), gr.State(None))


def _bar(fraction: float, level: str, words: str, kind: str) -> str:
    percent = f"{min(max(fraction, 0.0), 1.0) * 100:.1f}"
    return (f'<div class="chatui-gauge" data-kind="{kind}" data-level="{level}">'
            f'<div class="chatui-gauge-bar" role="progressbar" aria-valuenow="{percent}" '
            f'aria-valuemin="0" aria-valuemax="100"><div class="chatui-gauge-fill" '
            f'style="width:{percent}%"></div></div><span>{_escape(words)}</span></div>')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def context_html(use: ContextUse) -> str:
    return _bar(use.fraction, use.level, use.words(), "context")


def prompt_html(progress: PromptProgress | None, waited: float) -> str:
    """Before the first token: the share of the prompt read and its rate, else the wait."""
    if progress is None:
        return _bar(0.0, "ok", f"Waiting for the model… {waited:.0f} s", "waiting")
    rate = progress.tokens_per_second
    words = f"Reading the prompt: {progress.fraction:.0%}"
    words += f" of {progress.total - progress.cache:,} tokens"
    if rate:
        words += f" · {rate:,.0f} tokens/s"
    return _bar(progress.fraction, "ok", words, "prompt")


def wire_gauge(
    gauge: Gauge, view: gr.State, message: gr.Textbox, service: ChatService,
    owner_of: Callable[[gr.Request | None], str], loaded: Any,
) -> Refresh:
    """Refresh after ``loaded`` (the page's load, which runs outside the queue, where Gradio
    fires no state change); the ``Refresh`` returned is for ``view`` changes (``ui.refresh``)."""
    def context_line(request: gr.Request, view: View, draft: str | None) -> str:
        if view.conversation_id is None:
            return ""
        try:
            use = service.context_use(view.conversation_id, owner_of(request), draft or "")
        except ChatError:
            return ""  # a chat just deleted, a server not reachable: no gauge
        return context_html(use)

    def on_view(request: gr.Request, view: View, draft: str | None, since: float | None
                ) -> tuple[Any, ...]:
        if view.generating:
            began = since if since is not None else time.monotonic()
            return prompt_html(None, 0.0), gr.Timer(active=True), began
        return context_line(request, view, draft), gr.Timer(active=False), None

    def on_tick(request: gr.Request, view: View, since: float | None) -> tuple[Any, ...]:
        if not view.generating or view.conversation_id is None:
            return gr.skip(), gr.Timer(active=False)
        try:
            follower = service.follow(view.conversation_id, owner_of(request))
        except ChatError:
            return gr.skip(), gr.Timer(active=False)
        step = None
        if follower is not None:  # a glance at the newest step, then let go
            try:
                steps, _ = follower.take(0)
            finally:
                follower.close()
            step = steps[-1] if steps else None
        if step is not None and step.prompt is None:
            return gr.skip(), gr.Timer(active=False)  # the text is coming: nothing to wait for
        waited = time.monotonic() - since if since is not None else 0.0
        return prompt_html(step.prompt if step is not None else None, waited), gr.skip()

    quiet: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private",
                             "concurrency_limit": None}
    refresh = {"fn": on_view, "inputs": [view, message, gauge.since],
               "outputs": [gauge.line, gauge.timer, gauge.since], **quiet}
    loaded.then(**refresh)
    message.change(context_line, [view, message], gauge.line, trigger_mode="always_last",
                   **quiet)
    gauge.timer.tick(on_tick, [view, gauge.since], [gauge.line, gauge.timer], **quiet)
    return Refresh(on_view, refresh["inputs"], refresh["outputs"])
