"""Text from outside the app is shown as text: raw HTML in Markdown becomes inert.

The Chatbot renders Markdown, and Markdown lets raw HTML through; Gradio then
sanitises the HTML (no scripts, no ``on*`` handlers, no ``javascript:`` URLs;
``tests/test_sharing_browser.py`` shows that nothing runs). Text the app did
not write (an answer, its reasoning, a document's name or snippet) also goes
through ``inert_html`` first: each ``<`` that would open a tag, a comment or a
declaration becomes ``&lt;``, so ``<img src=x onerror=...>`` is shown as those
characters. That also keeps out look-alikes of the app's own footer buttons
(Gradio's sanitiser keeps classes), forms and images made of raw HTML.

Code (fenced, indented, inline) is left as it is: there ``<`` is already text.
LaTeX is not skipped: the page decodes ``&lt;`` before KaTeX reads it, so
``$$a&lt;b$$`` shows as ``a<b``, and a ``$$`` cannot hide a tag. Markdown's own
links and images stay; the sanitiser drops unsafe URLs.

Pure and linear in the length of the text (it runs on every streamed frame).
"""

from __future__ import annotations

import re

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INDENTED = re.compile(r"^(?: {4}|\t)")
_TAG_START = re.compile(r"[A-Za-z/!?]")


def inert_html(markdown: str) -> str:
    """``markdown`` with raw HTML outside code and math turned into visible text."""
    if "<" not in markdown:
        return markdown
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None  # the run of ` or ~ that opened the current fenced block
    after_blank = True
    in_indented = False
    for line in markdown.splitlines(keepends=True):
        blank = not line.strip()
        if fence is not None:
            out.append(line)
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence) \
                    and len(line) - len(line.lstrip(" ")) <= 3:
                fence = None
        elif opened := _FENCE_OPEN.match(line):
            out.append(_inline("".join(prose)))
            prose = []
            out.append(line)
            fence = opened.group(1)
        elif not blank and _INDENTED.match(line) and (after_blank or in_indented):
            out.append(_inline("".join(prose)))
            prose = []
            out.append(line)
            in_indented = True
        else:
            if not blank:
                in_indented = False
            (out if in_indented else prose).append(line)
        after_blank = blank
    out.append(_inline("".join(prose)))
    return "".join(out)


def _inline(text: str) -> str:
    """Escape tag openers in a run of prose, skipping code spans."""
    if "<" not in text:
        return text
    out: list[str] = []
    no_closer: dict[str, int] = {}  # backtick run -> a position after which it never occurs
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == "`":
            run = _run_length(text, i)
            close = _find_closer(text, "`" * run, i + run, no_closer)
            stop = close + run if close >= 0 else i + run
            out.append(text[i:stop])
            i = stop
            continue
        if char == "\\" and i + 1 < end:
            out.append(text[i:i + 2])  # an escaped character is already text
            i += 2
            continue
        if char == "<" and i + 1 < end and _TAG_START.match(text, i + 1):
            out.append("&lt;")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _run_length(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] == text[start]:
        end += 1
    return end - start


def _find_closer(text: str, closer: str, start: int, no_closer: dict[str, int]) -> int:
    """Where a backtick run of exactly ``closer``'s length next occurs from ``start``, or -1.

    Misses are remembered, so a text full of unmatched openers stays linear.
    """
    if start >= no_closer.get(closer, len(text) + 1):
        return -1
    match = re.compile(f"(?<!`){closer}(?!`)").search(text, start)
    found = match.start() if match else -1
    if found < 0:
        no_closer[closer] = start
    return found
