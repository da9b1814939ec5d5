"""Settings are defined once (``chatui.settings``): every edge offers the same fields and ranges.

The sets are read from what each edge really builds (the REST models, the
argument parser, the Settings form), so a field added to the table and
forgotten by an edge, or offered by one edge only, fails here. Ranges are
tried the way a client sends them: JSON over HTTP (422), a flag or a variable
(exit 2), a forged form (refused by name, nothing stored or sent), and a
forged Gradio event (refused by Gradio's own check, nothing sent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from chatui import codec
from chatui.api.schemas import ChatCreate, MessageCreate, SettingsRecord
from chatui.config import SETTINGS_GROUP, Config, _parser, parse_config
from chatui.errors import InvalidRequest
from chatui.settings import FIELDS, SettingField, Settings
from chatui.ui import handlers
from chatui.ui.layout import build_page
from chatui.ui.screen import FORM_FIELDS, View, settings_from_form, settings_to_form
from tests.apiharness import Api, assert_error, running_api
from tests.fakebackend import FakeBackend, Script
from tests.polling import PATIENCE

NAMES = [setting.name for setting in FIELDS]
RANGED = [setting for setting in FIELDS if setting.minimum is not None]
OWNER = "local"


def above(setting: SettingField) -> int | float:
    assert setting.maximum is not None
    return int(setting.maximum) + 1 if setting.kind is int else setting.maximum + 0.5


def below(setting: SettingField) -> int | float:
    assert setting.minimum is not None
    return int(setting.minimum) - 1 if setting.kind is int else setting.minimum - 0.5


def top(setting: SettingField) -> int | float:
    assert setting.maximum is not None
    return setting.kind(setting.maximum)


# ----- one definition, every edge -------------------------------------------------------------


def test_the_table_is_the_settings_value() -> None:
    assert [field.name for field in dataclasses.fields(Settings)] == NAMES
    for setting in FIELDS:
        assert getattr(Settings(), setting.name) == setting.default
        assert setting.label and setting.help
    assert {s.name for s in FIELDS if s.sampling} >= {"presence_penalty", "frequency_penalty"}


def _settings_flags() -> list[str]:
    parser = _parser({})
    group = next(g for g in parser._action_groups if g.title == SETTINGS_GROUP)
    return [action.dest for action in group._group_actions]


def test_rest_flags_form_and_value_have_exactly_the_same_fields() -> None:
    assert set(ChatCreate.model_fields) - {"title"} == set(NAMES)
    assert list(SettingsRecord.model_fields) == NAMES
    overridable = set(MessageCreate.model_fields) - {
        "content", "parent_id", "regenerate_id", "continue_id", "reproduce_id"}
    assert overridable == {"model", *(s.name for s in FIELDS if s.sampling)}
    assert _settings_flags() == NAMES
    assert list(FORM_FIELDS) == NAMES
    page = build_page(Config())
    assert [component.label for component in page.form] == [s.label for s in FIELDS]


def test_the_form_components_carry_the_table_ranges() -> None:
    page = build_page(Config())
    for setting, component in zip(FIELDS, page.form, strict=True):
        if setting.minimum is None:
            continue
        assert isinstance(component, gr.Number)
        assert (component.minimum, component.maximum) == (setting.minimum, setting.maximum)
        with pytest.raises(gr.Error):  # Gradio's own check of an event's value
            component.preprocess(above(setting))
        assert component.preprocess(top(setting)) == top(setting)


# ----- the REST API: 422 outside the range ---------------------------------------------------


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, connect_timeout=1.0,
                     first_token_timeout=PATIENCE, stall_timeout=PATIENCE) as running:
        yield running


def test_rest_refuses_every_setting_outside_its_range(api: Api, fake_backend: FakeBackend) -> None:
    chat = api.new_chat()
    for setting in RANGED:
        for value in (above(setting), below(setting)):
            refused = api.http.post("/chats/new", json={setting.name: value})
            assert_error(refused, 422, "invalid_request")
            if setting.sampling:
                message = api.http.post(f"/chats/{chat['id']}/message",
                                        json={"content": "Hi", setting.name: value})
                assert_error(message, 422, "invalid_request")
        accepted = api.new_chat(**{setting.name: top(setting)})
        assert accepted["settings"][setting.name] == top(setting)
    assert fake_backend.requests == []  # nothing refused reached the model server
    too_long = api.http.post("/chats/new", json={"model": "m" * 201})
    assert_error(too_long, 422, "invalid_request")


def test_penalties_given_over_rest_reach_the_model_server(
        api: Api, fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(Script.text_answer("Fine."))
    chat = api.new_chat(presence_penalty=1.5)
    answer = api.http.post(f"/chats/{chat['id']}/message",
                           json={"content": "Hi", "frequency_penalty": -1.0})
    assert answer.status_code == 200, answer.text
    body = fake_backend.requests[-1]
    assert (body["presence_penalty"], body["frequency_penalty"]) == (1.5, -1.0)


# ----- flags and variables: refused at start --------------------------------------------------


@pytest.mark.parametrize("setting", RANGED, ids=lambda s: s.name)
def test_a_flag_or_variable_outside_its_range_stops_the_start(
        setting: SettingField, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, environ in (([setting.flag, str(above(setting))], {}),
                          ([], {setting.env: str(below(setting))})):
        with pytest.raises(SystemExit) as stopped:
            parse_config(argv, environ=environ)
        assert stopped.value.code == 2
        said = capsys.readouterr().err
        assert setting.flag in said and f"{setting.label} must be from" in said
    config = parse_config([setting.flag, str(top(setting))], environ={})
    assert getattr(config.defaults, setting.name) == top(setting)


def test_every_setting_has_its_flag_and_variable() -> None:
    argv = ["--presence-penalty", "0.5", "--rag-enabled", "--system-prompt", "Be brief.",
            "--model", "m1"]
    config = parse_config(argv, environ={"CHATUI_FREQUENCY_PENALTY": "-0.5",
                                         "CHATUI_SEED": "7"})
    assert config.defaults.sampling() == {
        "presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 7}
    assert config.defaults.rag_enabled and config.defaults.system_prompt == "Be brief."
    assert config.model == "m1"  # the default model, resolved against the server's list
    with pytest.raises(SystemExit):
        parse_config(["--seed", "1.5"], environ={})


# ----- the form: what the browser sends is checked --------------------------------------------


def test_a_forged_form_is_refused_by_name_and_nothing_is_stored(api: Api) -> None:
    service = api.service
    conversation = service.create(OWNER, settings=Settings(model="fake-model", temperature=0.5))
    view = View(conversation_id=conversation.id)
    good = list(settings_to_form(conversation.settings))
    at = {name: index for index, name in enumerate(FORM_FIELDS)}
    forged: list[tuple[str, Any, str]] = [
        ("temperature", 7.0, "Temperature must be from 0 to 2"),
        ("presence_penalty", -3, "Presence penalty must be from -2 to 2"),
        ("top_k", "many", "Top k must be a number"),
        ("max_tokens", 1.5, "Max tokens must be a whole number"),
        ("seed", True, "Seed must be a number"),
        ("system_prompt", "x" * 200_001, "System prompt must be at most 200,000 characters"),
        ("rag_enabled", "maybe", "on or off"),
    ]
    for name, value, says in forged:
        form = good.copy()
        form[at[name]] = value
        screen = handlers.save_settings(service, OWNER, view, form)
        assert screen.notice is not None and says in screen.notice
        assert service.conversation(conversation.id, OWNER).settings == conversation.settings
    short = handlers.save_settings(service, OWNER, view, good[:-1])
    assert short.notice is not None and "reload" in short.notice
    good[at["frequency_penalty"]] = 1.25
    handlers.save_settings(service, OWNER, view, good)
    assert service.conversation(conversation.id, OWNER).settings.frequency_penalty == 1.25


def test_form_values_are_typed_and_empty_means_the_server_default() -> None:
    form = list(settings_to_form(Settings(model="m", temperature=0.5, seed=3)))
    form[FORM_FIELDS.index("temperature")] = ""
    form[FORM_FIELDS.index("seed")] = 4.0  # Gradio sends a whole float for a number box
    form[FORM_FIELDS.index("model")] = ""
    settings = settings_from_form(form, Settings())
    assert (settings.temperature, settings.seed, settings.model) == (None, 4, None)
    assert isinstance(settings.seed, int)
    with pytest.raises(InvalidRequest, match="Top p must be from 0 to 1"):
        Settings(top_p=1.5)  # no Settings value outside the table's range exists


def test_a_forged_gradio_event_outside_the_range_sends_nothing(
        running_app: Callable[..., Any], fake_backend: FakeBackend) -> None:
    from gradio_client import Client

    form = list(settings_to_form(Settings(model="fake-model")))
    form[FORM_FIELDS.index("temperature")] = 3  # the old form let up to 5 through
    with running_app(fake_backend.base_url) as url:
        client = Client(url + "/", verbose=False)
        with pytest.raises(Exception, match="3 is greater than maximum value 2"):
            client.predict("Hello", *form, api_name="/send")
    assert fake_backend.requests == []


# ----- stored settings: old files still read --------------------------------------------------


def test_settings_stored_by_older_versions_still_read() -> None:
    before_penalties = {  # what the first versions wrote: no penalties, no rag_enabled
        "system_prompt": "Old", "model": "m", "temperature": 0.7, "top_p": None, "top_k": 40,
        "min_p": None, "max_tokens": 256, "repeat_penalty": 1.1, "seed": 3,
    }
    assert codec.settings_from_dict(before_penalties) == Settings(
        system_prompt="Old", model="m", temperature=0.7, top_k=40, max_tokens=256,
        repeat_penalty=1.1, seed=3)
    # The old form allowed a temperature up to 5 and any repeat penalty: clamped, not refused.
    loose = {"temperature": 4.5, "repeat_penalty": 3, "top_k": "40", "seed": "x",
             "a_setting_from_a_newer_version": 1, "rag_enabled": True}
    assert codec.settings_from_dict(loose) == Settings(
        temperature=2.0, repeat_penalty=2.0, top_k=40, rag_enabled=True)
    assert codec.settings_from_dict(None) == Settings()
    long_prompt = codec.settings_from_dict({"system_prompt": "p" * 300_000}).system_prompt
    assert long_prompt == "p" * 200_000  # the old form took any length: cut, not dropped
    conversation = codec.conversation_from_dict({
        "id": "c1", "title": "Old chat", "created_at": 1.0, "settings": before_penalties,
        "messages": [],
    })
    again = codec.conversation_from_dict(codec.conversation_to_dict(conversation))
    assert again.settings == conversation.settings and again.settings.presence_penalty is None


# ----- document types: the loader's list is the one the page offers -----------------------------


def test_the_documents_panel_offers_every_type_the_loader_reads() -> None:
    from chatui.ui.documents.layout import build_documents_panel
    from rag_index import SUPPORTED_EXTENSIONS

    with gr.Blocks():
        panel = build_documents_panel()
    offered = set(str(panel.files.label).removeprefix("Add documents (").rstrip(")").split())
    assert offered == set(SUPPORTED_EXTENSIONS) and ".markdown" in offered
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert all(f"`{extension}`" in readme for extension in SUPPORTED_EXTENSIONS)
