"""Raw HTML from answers and documents is made inert; code, math and prose stay as written."""

from __future__ import annotations

import pytest

from chatui import tree
from chatui.sanitize import inert_html
from chatui.tree import Source
from chatui.ui.render import FOOTER_OPEN, render_message


@pytest.mark.parametrize(("text", "shown"), [
    ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)">'),
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ('<a href="javascript:alert(1)">x</a>', '&lt;a href="javascript:alert(1)">x&lt;/a>'),
    ("<!-- hidden --> <!DOCTYPE html> <?xml?>", "&lt;!-- hidden --> &lt;!DOCTYPE html> &lt;?xml?>"),
    ('<button class="chatui-act chatui-do-regen chatui-id-1">↻</button>',
     '&lt;button class="chatui-act chatui-do-regen chatui-id-1">↻&lt;/button>'),
    ("1 < 2 and 3 <= 4, x<y", "1 < 2 and 3 <= 4, x&lt;y"),
    ("plain text, no markup", "plain text, no markup"),
])
def test_raw_html_in_prose_is_shown_as_text(text: str, shown: str) -> None:
    assert inert_html(text) == shown


@pytest.mark.parametrize("code", [
    "```html\n<div onclick='x()'>a</div>\n```",
    "~~~~\n<script>\n~~~~",
    "Use `<br>` for a break.",
    "``a ` <b> inside``",
    "    <pre>indented code</pre>",
    "Text\n\n    <pre>indented code after a blank line</pre>",
    "\\<not a tag>",
])
def test_code_and_math_are_left_alone(code: str) -> None:
    assert inert_html(code) == code


def test_only_the_prose_around_code_changes() -> None:
    text = "Say <b>hi</b>:\n```\n<b>hi</b>\n```\nthen `<i>` and <i>done</i>"
    assert inert_html(text) == (
        "Say &lt;b>hi&lt;/b>:\n```\n<b>hi</b>\n```\nthen `<i>` and &lt;i>done&lt;/i>"
    )


def test_an_unclosed_fence_runs_to_the_end_as_the_renderer_closes_it() -> None:
    assert inert_html("start <x>\n```\n<still code>") == "start &lt;x>\n```\n<still code>"


def test_openers_without_closers_do_not_hide_tags() -> None:
    assert inert_html("$$a<b <img src=x onerror=alert(1)>$$") == (
        "$$a&lt;b &lt;img src=x onerror=alert(1)>$$")  # the page decodes it before KaTeX
    assert inert_html("` " + "<a " * 1000).count("&lt;a") == 1000  # a lone backtick is no code
    assert inert_html("`` <a ` <b").count("&lt;") == 2


def test_answers_reasoning_and_sources_render_inert_with_the_footer_intact() -> None:
    conversation = tree.new_conversation("t", tree.Settings(), "local")
    question = tree.make_message("user", "hi <b>me</b>", None)
    conversation = tree.add_message(conversation, question)
    source = Source(number=1, document="<img src=x onerror=alert(2)>.txt", page=None,
                    snippet="<script>alert(3)</script>", score=0.9, chunk_id=1)
    answer = tree.make_message("assistant", "<img src=x onerror=alert(1)>", question.id,
                               sources=(source,), status="complete",
                               reasoning="<svg onload=alert(4)>")
    conversation = tree.add_message(conversation, answer)
    rows = render_message(conversation, answer).rows
    texts = [row["content"]["text"] for row in rows]
    reasoning, sources, text = texts
    assert reasoning == "&lt;svg onload=alert(4)>"
    assert "&lt;img src=x onerror=alert(2)>.txt" in sources
    assert "&lt;script>alert(3)&lt;/script>" in sources
    assert text.startswith("&lt;img src=x onerror=alert(1)>\n\n" + FOOTER_OPEN)
    assert '<button class="chatui-act chatui-do-regen' in text  # the app's own HTML stays
