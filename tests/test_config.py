from __future__ import annotations

import pytest

from chatui.config import parse_config


def test_defaults_run_the_embedded_model_on_loopback() -> None:
    config = parse_config([], environ={})
    assert config.embedded and config.host == "127.0.0.1" and config.command == "serve"


def test_flags_beat_environment_and_openai_key_is_honoured() -> None:
    env = {"OPENAI_API_KEY": "sk-env", "CHATUI_MODEL": "env-model", "CHATUI_PORT": "9000"}
    config = parse_config(["--model", "flag-model", "--api-base", "http://x:1/v1/"], environ=env)
    assert config.api_key == "sk-env"
    assert config.model == "flag-model"
    assert config.port == 9000
    assert config.api_base == "http://x:1/v1" and not config.embedded


def test_sampling_defaults_from_flags() -> None:
    config = parse_config(["--temperature", "0.2", "--max-tokens", "64", "--system-prompt", "Hi"], environ={})
    assert config.defaults.sampling() == {"temperature": 0.2, "max_tokens": 64}
    assert config.defaults.system_prompt == "Hi"


def test_share_without_auth_is_refused_with_an_explanation() -> None:
    with pytest.raises(SystemExit) as refusal:
        parse_config(["--share"], environ={})
    assert "--auth" in str(refusal.value) and "anyone" in str(refusal.value)


def test_auth_pairs_from_flags_and_file(tmp_path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# team\ncarol:pw3\n")
    config = parse_config(["--auth", "alice:pw1", "--auth", "bob:pw2", "--auth-file", str(users), "--share"], environ={})
    assert config.auth == (("alice", "pw1"), ("bob", "pw2"), ("carol", "pw3"))
    with pytest.raises(SystemExit):
        parse_config(["--auth", "nopassword"], environ={})
