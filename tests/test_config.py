from __future__ import annotations

from pathlib import Path

import pytest

from chatui.config import parse_config
from chatui.errors import ChatError, ConfigError


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
    with pytest.raises(ConfigError) as refusal:
        parse_config(["--share"], environ={})
    assert "--auth" in str(refusal.value) and "anyone" in str(refusal.value)


def test_auth_pairs_from_flags_and_file(tmp_path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# team\ncarol:pw3\n")
    config = parse_config(["--auth", "alice:pw1", "--auth", "bob:pw2", "--auth-file", str(users),
                           "--share", "--api-token", "t"], environ={})
    assert config.auth == (("alice", "pw1"), ("bob", "pw2"), ("carol", "pw3"))
    with pytest.raises(ConfigError, match="USER:PASSWORD"):
        parse_config(["--auth", "nopassword"], environ={})


# ----- start-up checks that need nothing loaded (issue 9 item 7, issue 10 item 4) ------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5"])
def test_serving_beyond_loopback_without_a_token_is_refused_while_parsing(host: str) -> None:
    with pytest.raises(ConfigError, match="--api-token") as refusal:
        parse_config(["--host", host], environ={})
    assert isinstance(refusal.value, ChatError) and host in str(refusal.value)
    assert parse_config(["--host", host, "--api-token", "t"], environ={}).api_token == "t"
    assert parse_config(["--host", host], environ={"CHATUI_API_TOKEN": "t"}).api_token == "t"
    assert parse_config(["chat", "--host", host], environ={}).command == "chat"  # serves nothing


def test_a_share_link_needs_a_token_too() -> None:
    with pytest.raises(ConfigError, match="share link"):
        parse_config(["--share", "--auth", "a:b"], environ={})


@pytest.mark.parametrize(
    "api_base", ["localhost:8080/v1", "ftp://x/v1", "http://", "https://h:x/v1"]
)
def test_a_malformed_api_base_is_refused(api_base: str) -> None:
    with pytest.raises(ConfigError, match="--api-base must be an http:// or https:// URL"):
        parse_config(["--api-base", api_base], environ={})
    with pytest.raises(ConfigError, match="--api-base"):
        parse_config([], environ={"CHATUI_API_BASE": api_base})


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    with pytest.raises(ConfigError, match="--port must be between 1 and 65535"):
        parse_config(["--port", port], environ={})


def test_unreadable_auth_and_token_files_are_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(ConfigError, match=f"Cannot read {missing}"):
        parse_config(["--auth-file", str(missing)], environ={})
    with pytest.raises(ConfigError, match=f"Cannot read {missing}"):
        parse_config(["--api-tokens-file", str(missing)], environ={})
    tokens = tmp_path / "tokens"
    tokens.write_text("alice tok\n")
    with pytest.raises(ConfigError, match="line 1: expected USER:TOKEN"):
        parse_config(["--api-tokens-file", str(tokens)], environ={})
