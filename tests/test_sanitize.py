"""Raw HTML from answers and documents is made inert; code, math and prose stay as written."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from markdown_it import MarkdownIt

from chatui import tree
from chatui.sanitize import CHAT_LATEX_DELIMITERS, image_allowed, inert_html, plain_markdown
from chatui.tree import Source
from chatui.ui.render import BAR, render_message


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


def test_answers_reasoning_and_sources_render_inert_and_the_bar_stays_data() -> None:
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
    assert text == "&lt;img src=x onerror=alert(1)>"  # nothing appended: the bar is beside it
    assert rows[-1][BAR]["text"] == "<img src=x onerror=alert(1)>"  # copied as written
    assert "regen" in rows[-1][BAR]["actions"]


# ----- images: none loads by itself (issue 9, item 3) -------------------------------------

LEAK = "http://127.0.0.1:9/leak?d=secret"
CHAT: dict[str, Any] = {"latex_delimiters": CHAT_LATEX_DELIMITERS}


def _images(markdown: str) -> list[str]:
    """What the page would fetch, near enough: the ``src`` of every ``<img>`` a CommonMark
    renderer makes, after taking out the Chatbot's LaTeX regions first as the page does."""
    for delimiter in CHAT_LATEX_DELIMITERS:
        left, right = re.escape(str(delimiter["left"])), re.escape(str(delimiter["right"]))
        markdown = re.sub(f"{left}[\\s\\S]+?{right}", "LATEX", markdown)
    rendered = MarkdownIt("commonmark").render(markdown)
    return re.findall(r'<img src="([^"]*)"', rendered)


@pytest.mark.parametrize("text", [
    f"Here: ![x]({LEAK}) done",
    f"![x]({LEAK} \"a title\")",
    f"![x](<{LEAK}>)",
    f"![x][ref]\n\n[ref]: {LEAK}",
    f"![ref]\n\n[ref]: {LEAK}",
    f"![ref][]\n\n[ref]: {LEAK}",
    f"[![x]({LEAK})](http://example.com/)",
    f"![a ![b]({LEAK}) c]({LEAK})",
    f"![x `]` y]({LEAK})",
    f"- item\n\n    ![x]({LEAK})",
    f"- item\n  ```\n![x]({LEAK})",
    f"```a`b\n![x]({LEAK})",
    f"$$`$$ ![x]({LEAK}) `",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![" * 3000 + f"x]({LEAK})",  # built to make the look-aheads quadratic
    "![a](" * 3000 + f"![x]({LEAK})",
])
def test_no_image_is_left_to_load(text: str) -> None:
    assert _images(text), "the case is an image to begin with"
    assert _images(inert_html(text, **CHAT)) == []


def test_a_fence_closed_the_way_the_page_closes_it_hides_no_image() -> None:
    # The page's parser (marked) closes a fence with "```~"; CommonMark would not.
    assert "![" not in inert_html(f"```\ncode\n```~\n![x]({LEAK})", **CHAT)


def test_an_image_becomes_a_link_showing_its_alt_text_and_host() -> None:
    shown = inert_html(f"See ![the chart]({LEAK}).", **CHAT)
    assert shown == f"See [🖼 the chart (127\\.0\\.0\\.1\\:9)](<{LEAK}>)."
    rendered = MarkdownIt("commonmark").render(shown)
    assert f'<a href="{LEAK.replace("&", "&amp;")}">🖼 the chart (127.0.0.1:9)</a>' in rendered


def test_data_and_script_images_become_text() -> None:
    assert inert_html("![dot](data:image/png;base64,AAAA)") == "🖼 dot (embedded image not shown)"
    assert inert_html("![x](javascript:alert(1))") == "🖼 x (image not shown)"


def test_images_in_code_and_not_images_stay_as_written() -> None:
    for text in ("`![x](http://e/)`", "```\n![x](http://e/)\n```", "n![k] is a factorial",
                 "Wow![not an image", "\\![x](http://e/)"):
        assert inert_html(text, **CHAT) == text


def test_allowed_hosts_keep_their_images_and_only_theirs() -> None:
    hosts = ("127.0.0.1:9", "img.example")
    kept = [f"![a]({LEAK})", "![b](https://IMG.example:8443/b.png)"]
    refused = ["![c](http://127.0.0.1:10/c.png)", "![d](http://img.example.evil/d)",
               "![e](http://img.example@evil.example/e)", "![f](http://evil.example\\@img.example/)",
               "![g](http://img.example%2Eevil/)", "![h](ftp://img.example/h)"]
    for text in kept:
        assert _images(inert_html(text, image_hosts=hosts)) == _images(text)
    for text in refused:
        assert _images(inert_html(text, image_hosts=hosts)) == []
    assert image_allowed("http://img.example/x", ["img.example"])
    assert not image_allowed("http://img.example/x", [])


def test_html_images_stay_inert_even_behind_math_and_list_code() -> None:
    for text in ("$$`$$ <img src=http://e/x> `", "- a\n\n    <img src=http://e/x>",
                 "- a\n  ```\n<img src=http://e/x>"):
        assert "<img" not in inert_html(text, **CHAT)


def test_plain_markdown_shows_every_character_and_makes_no_markup() -> None:
    text = "HTTP 500: <img src=http://e/x> ![a](http://e/) *b* `c` $$d$$ &amp;"
    rendered = MarkdownIt("commonmark").render(plain_markdown(text))
    assert rendered == "<p>" + html.escape(text, quote=False).replace('"', "&quot;") + "</p>\n"
