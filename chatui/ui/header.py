"""The header above the chat: the open chat's model, as a picker, and the server's health.

The picker lists the model server's models (``/v1/models`` via the service) and
shows the chat's model before its first answer. Picking one is the same as
picking it in Settings: the two are kept in step, and the chat's settings are
saved, so the open chat's next answer (and Regenerate's default) uses it. A
new chat takes it with its first message. The health line is ``ui.status``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr


def build_header() -> tuple[gr.Dropdown, gr.Markdown]:
    with gr.Row(equal_height=True, elem_id="chatui-header"):
        picker = gr.Dropdown(
            choices=[], value=None, allow_custom_value=True, label="Model", show_label=False,
            container=False, scale=2, min_width=180, elem_id="chatui-model-picker",
            info=None, interactive=True,
        )
        status = gr.Markdown("", elem_id="chatui-backend-status")
    return picker, status


def model_choices(models: tuple[str, ...] | None, model: str | None) -> Any:
    """The picker's update: the models listed, and the chat's model (kept if unlisted)."""
    if models is None:
        return gr.update(value=model) if model is not None else gr.skip()
    choices = list(models)
    if model and model not in choices:
        choices.append(model)
    return gr.update(choices=choices, value=model)


def wire_header(picker: gr.Dropdown, settings_model: Any,
                save: Callable[[Any], Any]) -> None:
    """Keep the picker and the Settings model in step; ``save`` stores the chat's settings
    after a pick (it chains the settings' save handler on the event it is given)."""
    quiet: dict[str, Any] = {"queue": False, "show_progress": "hidden",
                             "api_visibility": "private"}
    picked = picker.input(lambda name: name, picker, settings_model, **quiet)
    save(picked)
    settings_model.input(lambda name: name, settings_model, picker, **quiet)
