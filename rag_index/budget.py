"""How much text one file may unpack to, and the sentences that refuse it.

Shared by the loaders (``loaders.py``) and the streaming .docx reader
(``docx_reader.py``), which both stop reading once a file is over its budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TooMuchText

DEFAULT_MAX_CHARS = 2_000_000  # about a 1,000-page book


@dataclass(frozen=True, slots=True)
class TextLimits:
    """How much one file may unpack to; each limit refuses the file with ``TooMuchText``."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_pdf_pages: int = 2_000
    max_html_bytes: int = 10 * 1024 * 1024
    max_html_tags: int = 100_000  # start tags; BeautifulSoup holds ~1 kB per element
    max_docx_parts: int = 10_000
    max_docx_unpacked_bytes: int = 50 * 1024 * 1024  # all parts, as their headers declare
    max_docx_xml_bytes: int = 20 * 1024 * 1024  # the main part, as actually unpacked
    max_docx_paragraphs: int = 100_000


DEFAULT_LIMITS = TextLimits()


class TextBudget:
    """Characters one file may still yield; ``take`` raises ``TooMuchText`` once over."""

    def __init__(self, filename: str, max_chars: int) -> None:
        self.filename = filename
        self.max_chars = max_chars
        self.used = 0

    def take(self, chars: int) -> None:
        self.used += chars
        if self.used > self.max_chars:
            what = f"too much text (over {self.max_chars:,} characters once unpacked)"
            raise too_much(self.filename, what)


def too_much(filename: str, what: str) -> TooMuchText:
    return TooMuchText(filename, f"{what}; split it into smaller files.")


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
