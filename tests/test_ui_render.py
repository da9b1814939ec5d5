"""``render``: a row's text is the message's text alone; what shows under it is its bar.

Also the notice (``ui.notice``): an error in words, then its detail, folded.
"""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import pairwise

from markdown_it import MarkdownIt

from chatui import tree
from chatui.errors import BackendHTTPError, BackendTimeout, BackendUnavailable, LimitExceeded
from chatui.tree import Conversation, Message, Timings
from chatui.ui.notice import explain, notice_markdown
from chatui.ui.render import BAR, pending_rows, render_conversation, render_message, render_path


def _chat(*messages: Message) -> Conversation:
    conversation = tree.new_conversation("t", tree.Settings(), "local")
    parent = None
    for message in messages:
        message = replace(message, parent_id=parent)
        conversation = tree.add_message(conversation, message)
        parent = message.id
    return conversation


def _texts(rows: tuple[dict, ...]) -> list[str]:
    return [row["content"]["text"] for row in rows]


def test_the_footer_is_beside_the_text_not_in_it() -> None:
    answer = tree.make_message("assistant", "The **answer**", None, model="m1",
                               timings=Timings(generated_tokens=5, tokens_per_second=12.5,
                                               ttft_ms=80.0))
    conversation = _chat(tree.make_message("user", "Q?", None), answer)
    rows = render_conversation(conversation).rows
    assert _texts(rows) == ["Q?", "The **answer**"]
    bar = rows[-1][BAR]
    assert bar["facts"] == ["m1", "5 tokens", "12.5 tok/s", "TTFT 80 ms"]
    assert bar["text"] == "The **answer**" and bar["role"] == "assistant"
    assert bar["actions"] == ["copy", "regen", "cont", "delete"]
    assert rows[0][BAR]["actions"] == ["copy", "edit", "delete"]


def test_a_streaming_answer_only_grows_at_its_end() -> None:
    question = tree.make_message("user", "Code?", None)
    conversation = _chat(question)
    shown = []
    text = ""
    for piece in ["Here:\n\n", "```py\n", "x = 1\n", "y = 2", "\n```", " done"]:
        text += piece
        streaming = tree.make_message("assistant", text, question.id, status="streaming")
        rows = render_message(conversation, streaming).rows
        shown.append(rows[-1]["content"]["text"])
        assert rows[-1][BAR]["state"] == "streaming" and rows[-1][BAR]["actions"] == []
    for before, after in pairwise(shown):
        assert after.startswith(before)  # an append: the page's diff can add the new text


def test_the_waiting_answer_has_no_text() -> None:
    rows = pending_rows("Hi").rows
    assert _texts(rows) == ["Hi", ""]
    assert rows[1][BAR]["state"] == "waiting"


def test_two_unanswered_questions_in_a_row_stay_two_bubbles() -> None:
    first = tree.make_message("user", "One", None)
    second = tree.make_message("user", "Two", None)
    conversation = _chat(first, second)
    rendered = render_path(conversation, tree.active_path(conversation))
    assert [row["role"] for row in rendered.rows] == ["user", "assistant", "user", "assistant"]
    assert [row[BAR]["state"] for row in rendered.rows] == ["", "unanswered", "", "unanswered"]
    assert rendered.rows[1][BAR]["actions"] == ["answer"]
    assert rendered.message_ids == (first.id, first.id, second.id, second.id)
    # While an answer streams below the last one, it is not offered a retry.
    streaming = render_path(conversation, tree.active_path(conversation), streaming=True)
    assert [row["role"] for row in streaming.rows] == ["user", "assistant", "user"]


def test_a_star_in_reasoning_is_a_star() -> None:
    answer = tree.make_message("assistant", "ok", None,
                               reasoning="So 2 * 3 * 4 is *big*; `a*b` stays\n```\nx*y*z\n```")
    rows = render_message(_chat(tree.make_message("user", "q", None)), answer).rows
    html = MarkdownIt("commonmark").render(rows[0]["content"]["text"])
    assert "<em>" not in html
    assert "2 * 3 * 4 is *big*" in html
    assert "<code>a*b</code>" in html and "x*y*z" in html


def test_a_broken_answer_carries_its_error_once() -> None:
    answer = tree.make_message("assistant", "w1 w2", None, status="error",
                               error="The model server stopped sending.")
    rows = render_message(_chat(tree.make_message("user", "q", None)), answer).rows
    assert rows[-1]["content"]["text"] == "w1 w2"
    assert rows[-1][BAR]["state"] == "error"
    assert rows[-1][BAR]["error"] == "The model server stopped sending."


def test_an_error_is_told_in_words_with_its_detail_folded() -> None:
    unreachable = explain(BackendUnavailable("Cannot reach http://127.0.0.1:9/v1 (refused)."))
    sentence, detail = unreachable.split("\n")
    assert "cannot be reached" in sentence and "http" not in sentence
    assert detail == "Cannot reach http://127.0.0.1:9/v1 (refused)."
    refused = explain(BackendHTTPError(503, "busy"))
    assert refused.startswith("The model server refused the request (HTTP 503). Try again")
    assert explain(BackendTimeout("slow")).startswith("The model server took too long")
    assert explain(LimitExceeded("Too many answers at once.")) == "Too many answers at once."
    shown = notice_markdown(unreachable)
    assert shown.startswith("⚠️ The model server cannot be reached")
    assert re.search(r"<details class=\"chatui-detail\"><summary>Technical detail</summary>"
                     r"<code>Cannot reach http://127\.0\.0\.1:9/v1 \(refused\)\.</code></details>",
                     shown)
    assert notice_markdown("Type a message first.") == "⚠️ Type a message first\\."
    assert notice_markdown("") == ""


def test_the_upload_report_keeps_its_parts_apart() -> None:
    from chatui.ui.documents.handlers import FileOutcome, upload_report

    report = upload_report([FileOutcome("a.txt", "d1", chunks=3),
                            FileOutcome("b.exe", error="b.exe: not a document type")],
                           "this chat", note="*Use documents* is now on for this chat.")
    html = MarkdownIt("commonmark").render(report)
    items = re.findall(r"<li>(.*?)</li>", html, flags=re.S)
    assert len(items) == 2 and all("Not added" not in i and "Use documents" not in i
                                   for i in items)
    assert "<p><strong>Not added (1 of 2):</strong></p>" in html
    assert "<p><em>Use documents</em> is now on for this chat.</p>" in html
