"""One event for everything that follows the session's ``View``.

The documents list, the context gauge and the branch map each redraw when the
View changes (a chat opened, an answer begun or ended). As three listeners of
``view.change`` they were three events per change: three requests, and each
one makes Gradio's page update the loading status of every component, twice
per answer. ``on_view_change`` registers them as one event; each part still
writes its own handler (``Refresh``) in its own module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass(frozen=True, slots=True)
class Refresh:
    """``fn(request, *values of inputs)`` -> the value (one output) or values of ``outputs``."""

    fn: Callable[..., Any]
    inputs: Sequence[Any]
    outputs: Sequence[Any]


def on_view_change(view: gr.State, parts: Sequence[Refresh]) -> None:
    """Run ``parts`` together, in one event, whenever ``view`` changes."""
    inputs = [component for part in parts for component in part.inputs]
    outputs = [component for part in parts for component in part.outputs]

    def refresh(request: gr.Request, *values: Any) -> tuple[Any, ...]:
        results: list[Any] = []
        start = 0
        for part in parts:
            got = part.fn(request, *values[start:start + len(part.inputs)])
            start += len(part.inputs)
            results.extend(got if len(part.outputs) > 1 else (got,))
        return tuple(results)

    view.change(refresh, inputs, outputs, show_progress="hidden", api_visibility="private",
                concurrency_limit=None)
