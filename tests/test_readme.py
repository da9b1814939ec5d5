"""The README's quick start and .ci/run must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    assert block, "the Quick start has no code block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_is_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("app.py")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci


def test_every_flag_is_documented() -> None:
    from chatui.config import _parser

    readme = (ROOT / "README.md").read_text()
    flags = {option for action in _parser({})._actions for option in action.option_strings
             if option.startswith("--") and option != "--help"}
    assert {"--api-base", "--temperature", "--presence-penalty"} <= flags  # the parser's own
    missing = sorted(flag for flag in flags if f"`{flag}" not in readme)
    assert not missing, f"README does not document {missing}"
