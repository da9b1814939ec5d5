from __future__ import annotations

from chatui import tree
from chatui.prompt import build_messages, estimate_tokens
from chatui.tree import Source


def _path() -> list[tree.Message]:
    user = tree.make_message("user", "What does the report say?", None)
    return [user]


def _source(number: int, text: str) -> Source:
    return Source(number=number, document=f"doc{number}.pdf", page=number, snippet=text, score=0.5)


def test_system_prompt_then_history() -> None:
    messages, kept = build_messages(_path(), "Be brief.", [], 4096, 512)
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1] == {"role": "user", "content": "What does the report say?"}
    assert kept == []


def test_sources_are_numbered_in_the_prompt_and_kept_in_rank_order() -> None:
    sources = [_source(1, "Alpha finding."), _source(2, "Beta finding.")]
    messages, kept = build_messages(_path(), "", sources, 4096, 512)
    system = messages[0]["content"]
    assert "[1] (doc1.pdf, page 1)\nAlpha finding." in system
    assert "[2] (doc2.pdf, page 2)\nBeta finding." in system
    assert "[n]" not in system and "cite" in system
    assert [s.number for s in kept] == [1, 2]


def test_sources_are_trimmed_to_fit_the_context() -> None:
    sources = [_source(n, "word " * 800) for n in range(1, 6)]
    messages, kept = build_messages(_path(), "", sources, 2048, 512)
    total = sum(estimate_tokens(m["content"]) for m in messages)
    assert total <= 2048 - 512
    assert 1 <= len(kept) < 5
    assert [s.number for s in kept] == list(range(1, len(kept) + 1))


def test_failed_empty_answers_are_not_sent_back_to_the_model() -> None:
    user = tree.make_message("user", "hi", None)
    failed = tree.make_message("assistant", "", user.id, status="error", error="boom")
    messages, _ = build_messages([user, failed], "", [], 4096, 512)
    assert [m["role"] for m in messages] == ["user"]
