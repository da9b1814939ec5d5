"""The Markdown transcript: the active branch, readable, saying what was cut short."""

from __future__ import annotations

from chatui import tree
from chatui.export import conversation_markdown
from chatui.tree import Source, ToolCall


def test_transcript_shows_the_active_branch_with_reasoning_sources_and_status() -> None:
    chat = tree.new_conversation("Plants")
    question = tree.make_message("user", "Why are leaves green?", None, now=1)
    chat = tree.add_message(chat, question)
    old = tree.make_message("assistant", "Old answer.", question.id, now=2)
    chat = tree.add_message(chat, old)
    answer = tree.make_message(
        "assistant", "Chlorophyll [1].", question.id, now=3, model="m", reasoning="Recall biology.",
        sources=(Source(1, "botany.pdf", 4, "Chlorophyll absorbs red light.", 0.9),),
        tool_calls=(ToolCall("c1", "lookup", '{"q": "leaf"}'),), status="stopped",
    )
    chat = tree.add_message(chat, answer)
    text = conversation_markdown(chat)
    assert "Old answer." not in text
    assert text.startswith("# Plants\n\n## You\n\nWhy are leaves green?\n\n## Assistant (m)\n\n")
    assert "<details><summary>Reasoning</summary>\n\nRecall biology.\n\n</details>" in text
    assert "1. botany.pdf, page 4" in text
    assert 'Tool call `lookup`:\n\n```json\n{"q": "leaf"}\n```' in text
    assert text.endswith("*(stopped before the end)*\n")


def test_an_empty_chat_is_just_its_title() -> None:
    assert conversation_markdown(tree.new_conversation("Empty")) == "# Empty\n"
