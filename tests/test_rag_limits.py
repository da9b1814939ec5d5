"""Hostile uploads: small files that unpack to far too much are refused early, by name.

Each hostile file is built for real here (a zip bomb of a .docx, a zip whose
header lies, an XML entity bomb, a PDF of thousands of pages, HTML of many MB).
"Early" is measured in work, not time: peak traced memory under a generous
bound, or how many pages / parsers were run. Normal documents load as before.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from rag_fixtures import docx_bytes, minimal_pdf

from rag_index import Library
from rag_index.errors import (
    DocumentError,
    DocumentTooLarge,
    LibraryFull,
    TooMuchText,
    UnreadableDocument,
)
from rag_index.budget import TextLimits
from rag_index.loaders import Page, load_document
from rag_index.values import IngestFailure, IngestProgress, IngestResult

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-subset" / "corpus.jsonl"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
LINE = "All work and no play makes Jack a dull boy."
SPLIT_IT = "; split it into smaller files."


# -- hostile files -----------------------------------------------------------------------------


def docx_with_body(body: str, *, doctype: str = "") -> bytes:
    """A real python-docx file whose word/document.xml body is replaced by ``body``."""
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
        f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    ).encode()
    return replace_part(docx_bytes("Title", ["text"]), "word/document.xml", xml)


def replace_part(docx: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(docx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            data = content if info.filename == name else source.read(info.filename)
            target.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def paragraphs_bomb(count: int = 200_000, text: str = LINE) -> bytes:
    run = f"<w:r><w:t>{text}</w:t></w:r>" if text else ""
    return docx_with_body(f"<w:p>{run}</w:p>" * count)


def lie_about_size(archive: bytes, name: str, claimed: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in both its zip headers to ``claimed``."""
    data = bytearray(archive)
    encoded = name.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        for match in re.finditer(re.escape(signature), data):
            start = match.start()
            if data[start + name_at : start + name_at + len(encoded)] == encoded:
                struct.pack_into("<I", data, start + size_at, claimed)
    return bytes(data)


def blank_pdf(pages: int) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=72, height=72)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def peak_traced_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(DocumentError):  # the caller checks the error itself
            action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# -- DOCX --------------------------------------------------------------------------------------


def test_docx_bomb_of_200k_paragraphs_is_refused_without_unpacking_it() -> None:
    bomb = paragraphs_bomb()
    assert len(bomb) < 100_000  # tens of kB on disk, 9 million characters unpacked
    with pytest.raises(TooMuchText) as raised:
        load_document(bomb, "report.docx")
    assert str(raised.value) == (
        "report.docx: too much text (over 2,000,000 characters once unpacked)" + SPLIT_IT
    )
    # python-docx built the whole tree: ~46 MB traced (and 0.5 GB resident) for this file.
    assert peak_traced_bytes(lambda: load_document(bomb, "report.docx")) < 20_000_000


def test_docx_of_empty_paragraphs_is_refused_by_paragraph_count() -> None:
    bomb = paragraphs_bomb(text="")
    with pytest.raises(TooMuchText, match=r"^void\.docx: too many paragraphs \(over 100,000\);"):
        load_document(bomb, "void.docx")


def test_docx_text_limit_is_configurable() -> None:
    small = paragraphs_bomb(count=50)
    assert load_document(small, "ok.docx")[0].text.count(LINE) == 50
    with pytest.raises(TooMuchText, match=r"over 1,000 characters"):
        load_document(small, "ok.docx", limits=TextLimits(max_chars=1_000))


def test_docx_whose_parts_declare_too_much_is_refused_before_unpacking() -> None:
    honest = paragraphs_bomb(count=700_000, text="x")  # document.xml: 23 MB
    with pytest.raises(TooMuchText, match=r"^big\.docx: it unpacks to 2\d\.\d MB \(the limit is"):
        load_document(honest, "big.docx")
    assert peak_traced_bytes(lambda: load_document(honest, "big.docx")) < 5_000_000
    declared = lie_about_size(docx_bytes("T", ["p"]), "word/styles.xml", 2_000_000_000)
    with pytest.raises(TooMuchText, match=r"it unpacks to 2\.0 GB"):
        load_document(declared, "styles.docx")


def test_docx_whose_header_understates_the_size_is_never_unpacked_past_it() -> None:
    real = paragraphs_bomb(count=600_000, text="x")
    lying = lie_about_size(real, "word/document.xml", 4_096)
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("word/document.xml").file_size == 4_096
    with pytest.raises(UnreadableDocument, match=r"^liar\.docx: the file is damaged"):
        load_document(lying, "liar.docx")
    assert peak_traced_bytes(lambda: load_document(lying, "liar.docx")) < 5_000_000


def test_docx_with_an_xml_entity_bomb_is_refused() -> None:
    lol = "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    doctype = f'<!DOCTYPE w:document [<!ENTITY lol0 "lol">{lol}]>'
    bomb = docx_with_body("<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>", doctype=doctype)
    with pytest.raises(UnreadableDocument, match=r"^lol\.docx: .*XML entities"):
        load_document(bomb, "lol.docx")
    assert peak_traced_bytes(lambda: load_document(bomb, "lol.docx")) < 5_000_000


def test_docx_with_bzip2_parts_is_unreadable() -> None:
    source = zipfile.ZipFile(io.BytesIO(docx_bytes("T", ["p"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    with pytest.raises(UnreadableDocument, match="damaged"):
        load_document(out.getvalue(), "bz.docx")


def test_docx_with_too_many_parts_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes("T", ["p"]))) as source, zipfile.ZipFile(
        out, "w"
    ) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        for i in range(10_001):
            target.writestr(f"junk/{i}", b"")
    with pytest.raises(TooMuchText, match=r"too many parts \(over 10,000\)"):
        load_document(out.getvalue(), "parts.docx")


def test_merged_table_cell_is_read_once_not_once_per_column() -> None:
    wide = '<w:tc><w:tcPr><w:gridSpan w:val="100000"/></w:tcPr><w:p><w:r><w:t>wide</w:t></w:r></w:p>'
    body = f"<w:tbl><w:tr>{wide}</w:tc><w:tc><w:p><w:r><w:t>narrow</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    [page] = load_document(docx_with_body(body), "merged.docx")
    assert page.text == "wide | narrow"  # python-docx repeated "wide" 100,000 times


# -- PDF ---------------------------------------------------------------------------------------


@pytest.fixture
def extracted_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts pages pypdf extracts text from (one entry per call)."""
    from pypdf import PageObject

    calls: list[int] = []
    original = PageObject.extract_text

    def counting(self: PageObject, *args: object, **kwargs: object) -> str:
        calls.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PageObject, "extract_text", counting)
    return calls


def test_pdf_with_too_many_pages_is_refused_before_reading_any(extracted_pages: list[int]) -> None:
    with pytest.raises(TooMuchText) as raised:
        load_document(blank_pdf(2_001), "scan.pdf")
    assert str(raised.value) == "scan.pdf: too many pages (over 2,000)" + SPLIT_IT
    assert extracted_pages == []


def test_pdf_that_understates_its_page_count_is_still_refused(extracted_pages: list[int]) -> None:
    data = minimal_pdf([""] * 2_001)
    lying = data.replace(b"/Count 2001", b"/Count 1   ")
    assert lying != data
    with pytest.raises(TooMuchText, match="too many pages"):
        load_document(lying, "liar.pdf")
    assert extracted_pages == []


def test_pdf_text_limit_stops_at_the_page_that_passes_it(extracted_pages: list[int]) -> None:
    data = minimal_pdf([f"Page {i}: " + "words " * 80 for i in range(40)])  # ~490 chars a page
    with pytest.raises(TooMuchText, match=r"^long\.pdf: too much text \(over 1,000 characters"):
        load_document(data, "long.pdf", limits=TextLimits(max_chars=1_000))
    assert len(extracted_pages) == 3
    assert len(load_document(data, "long.pdf")) == 40


def test_pdf_text_limit_stops_inside_a_long_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_index import loaders

    pieces: list[str] = []
    counting = loaders._PageBudget.__call__

    def spy(self: loaders._PageBudget, text: str, *rest: object) -> None:
        pieces.append(text)
        counting(self, text, *rest)

    monkeypatch.setattr(loaders._PageBudget, "__call__", spy)
    data = minimal_pdf(["\n".join(f"line {i} " + "w" * 40 for i in range(60))])  # 2,900 chars
    with pytest.raises(TooMuchText, match="over 500 characters"):
        load_document(data, "dense.pdf", limits=TextLimits(max_chars=500))
    assert 0 < len(pieces) < 20  # of 60 lines


# -- HTML and text -----------------------------------------------------------------------------


@pytest.fixture
def soups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts BeautifulSoup trees built."""
    import bs4

    built: list[int] = []
    original = bs4.BeautifulSoup

    def counting(*args: object, **kwargs: object) -> bs4.BeautifulSoup:
        built.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bs4, "BeautifulSoup", counting)
    return built


def test_html_of_many_megabytes_is_refused_before_parsing(soups: list[int]) -> None:
    page = b"<html><body>" + b"<p>" + b"word " * 2_400_000 + b"</p></body></html>"  # 12 MB
    with pytest.raises(TooMuchText) as raised:
        load_document(page, "dump.html")
    assert str(raised.value) == (
        "dump.html: the page is 12.0 MB of HTML (the limit is 10.5 MB)" + SPLIT_IT
    )
    assert soups == []


def test_html_of_too_many_elements_is_refused_before_parsing(soups: list[int]) -> None:
    page = b"<html><body>" + b"<b>x</b>" * 100_001 + b"</body></html>"  # 0.8 MB
    with pytest.raises(TooMuchText, match=r"^tags\.html: too many HTML elements \(over 100,000\)"):
        load_document(page, "tags.html")
    assert soups == []


def test_html_and_text_over_the_character_limit_are_refused() -> None:
    words = "lorem ipsum " * 200_000  # 2.4 million characters
    with pytest.raises(TooMuchText, match=r"^long\.html: too much text \(over 2,000,000"):
        load_document(f"<p>{words}</p>".encode(), "long.html")
    with pytest.raises(TooMuchText, match=r"^long\.txt: too much text \(over 2,000,000"):
        load_document(words.encode(), "long.txt")
    assert load_document(words[:100_000].encode(), "short.txt")[0].text == words[:100_000].strip()


def test_too_much_text_is_a_kind_of_too_large() -> None:
    assert issubclass(TooMuchText, DocumentTooLarge)  # edges that map "too large" keep working


# -- normal documents are unchanged --------------------------------------------------------------


def python_docx_text(data: bytes) -> str:
    """The previous loader: python-docx's paragraphs and tables, tidied the same way."""
    import docx
    from docx.table import Table

    from rag_index.loaders import _tidy

    blocks: list[str] = []
    for item in docx.Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells]
                blocks.append(" | ".join(cell for cell in cells if cell))
        else:
            blocks.append(item.text)
    return _tidy("\n\n".join(blocks))


def scifact_documents(count: int) -> Iterator[dict[str, str]]:
    with SCIFACT.open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(count), strict=False):
            yield json.loads(line)


def rich_docx() -> bytes:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.add_heading("Field report", level=1)
    paragraph = document.add_paragraph("Tabs\tand ")
    paragraph.add_run("bold runs").bold = True
    paragraph.add_run().add_break()
    paragraph.add_run("after a line break")
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    paragraph.add_run("after a page break")
    document.add_paragraph("")
    document.add_paragraph("Caf\u00e9 \u2013 na\u00efve & <escaped> \u00a0 text", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r in range(3):
        for c in range(3):
            table.cell(r, c).text = f"r{r}c{c}"
    table.cell(1, 1).add_paragraph("second line in a cell")
    table.cell(2, 2).text = ""
    document.add_paragraph("Closing words.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


RAW_BODY = (  # what python-docx skips (deleted text, fields, nested tables, content controls)
    '<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>'
    '<w:r><w:t xml:space="preserve">See </w:t></w:r><w:hyperlink><w:r><w:t>the site</w:t></w:r>'
    '</w:hyperlink><w:r><w:tab/><w:t>tabbed</w:t><w:noBreakHyphen/><w:t>x</w:t><w:cr/>'
    '<w:t>y</w:t><w:br w:type="column"/><w:delText>gone</w:delText><w:instrText>PAGE</w:instrText>'
    "</w:r><w:ins><w:r><w:t>inserted</w:t></w:r></w:ins></w:p>"
    "<w:sdt><w:sdtContent><w:p><w:r><w:t>in a control</w:t></w:r></w:p></w:sdtContent></w:sdt>"
    "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p><w:r>"
    "<w:t>nested</w:t></w:r></w:p></w:tc></w:tr></w:tbl><w:p><w:r><w:t>a2</w:t></w:r></w:p></w:tc>"
    "<w:tc><w:p/></w:tc><w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    "<w:p><w:r><w:t>end</w:t></w:r></w:p><w:sectPr/>"
)


def test_normal_docx_reads_exactly_as_python_docx_read_it() -> None:
    samples = [rich_docx(), docx_bytes("Plan", ["One.", "Two."], [["a", "b"], ["c", "d"]])]
    samples.append(docx_with_body(RAW_BODY))
    for doc in scifact_documents(30):
        samples.append(docx_bytes(doc["title"] or "Untitled", doc["text"].split(". ")))
    for data in samples:
        [page] = load_document(data, "normal.docx")
        assert page.text == python_docx_text(data)


def test_normal_text_html_and_pdf_are_unchanged() -> None:
    for doc in scifact_documents(30):
        text = doc["text"]
        [page] = load_document(text.encode(), "abstract.txt")
        assert page.text == " ".join(text.split())
        [page] = load_document(f"<h1>T</h1><p>{text}</p>".encode(), "abstract.html")
        assert page.text == "T\n\n" + " ".join(text.split())
    pages = load_document(minimal_pdf(["First page.", "Second page."]), "two.pdf")
    assert pages == [Page("two.pdf", 1, "First page."), Page("two.pdf", 2, "Second page.")]


# -- chunk limits in the library ----------------------------------------------------------------


class WordEmbedder:
    """A fake model: one token per word, a fixed pseudo-random unit vector per text."""

    dimension = 8
    max_tokens = 64

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [
            np.array([m.span() for m in re.finditer(r"\S+", t)], dtype=np.int64).reshape(-1, 2)
            for t in texts
        ]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(-1, 8)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def words(count: int, seed: str) -> bytes:
    """``count`` distinct words, no sentence ends: chunks of exactly 8 words (no overlap)."""
    return " ".join(f"{seed}{i}" for i in range(count)).encode()


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return Library(
        tmp_path / "rag", WordEmbedder(), chunk_tokens=8, overlap_tokens=0,
        max_chunks_per_file=10, max_chunks_per_owner=20,
    )


def test_chunk_limits_refuse_single_files_and_the_rest_of_the_batch_goes_in(
    library: Library,
) -> None:
    batch = library.ingest_many(
        [
            (words(88, "huge"), "huge.txt"),  # 11 chunks: over the per-file limit
            (words(80, "a"), "a.txt"),  # 10
            (paragraphs_bomb(), "bomb.docx"),
            (words(64, "b"), "b.txt"),  # 8: 18 in all
            (words(24, "c"), "c.txt"),  # 3 more would be 21
            (words(24, "c"), "c-again.txt"),  # the same content: the same refusal
            (words(16, "d"), "d.txt"),  # 2: exactly 20
        ],
        owner="alice",
    )
    outcomes = {o.name: o for o in batch.outcomes}
    assert str(outcomes["huge.txt"].error) == (  # type: ignore[union-attr]
        "huge.txt: too much text (over 10 passages once split for search)" + SPLIT_IT
    )
    assert isinstance(outcomes["bomb.docx"], IngestFailure)
    assert isinstance(outcomes["bomb.docx"].error, TooMuchText)
    for name in ("c.txt", "c-again.txt"):
        failure = outcomes[name]
        assert isinstance(failure, IngestFailure) and isinstance(failure.error, LibraryFull)
        assert str(failure.error) == (
            f"{name}: your documents hold 18 passages and this file adds 3; the limit is 20. "
            "Delete some documents or split the file."
        )
    stored = {o.name: o.chunk_count for o in batch.succeeded}
    assert stored == {"a.txt": 10, "b.txt": 8, "d.txt": 2}
    assert library.chunk_count == 20
    assert [d.name for d in library.documents("alice")] == ["a.txt", "b.txt", "d.txt"]
    assert library.search("a3", "alice", mode="bm25")[0].document_name == "a.txt"


def test_owner_chunk_limit_counts_what_is_stored_and_is_per_owner(library: Library) -> None:
    library.ingest(words(80, "a"), "a.txt", owner="alice")
    library.ingest(words(80, "b"), "b.txt", owner="alice", conversation_id="chat-1")
    with pytest.raises(LibraryFull, match=r"^c\.txt: your documents hold 20 passages"):
        library.ingest(words(8, "c"), "c.txt", owner="alice")
    assert isinstance(library.ingest(words(8, "c"), "c.txt", owner="bob"), IngestResult)
    library.delete(library.documents("alice")[0].document_id, "alice")
    assert library.ingest(words(8, "c"), "c.txt", owner="alice").chunk_count == 1


def test_zero_means_no_chunk_limit(tmp_path: Path) -> None:
    library = Library(
        tmp_path / "rag", WordEmbedder(), chunk_tokens=8, overlap_tokens=0,
        max_chunks_per_file=0, max_chunks_per_owner=0,
    )
    assert library.ingest(words(8 * 6_000, "w"), "big.txt", owner="alice").chunk_count == 6_000


def test_owner_limit_is_checked_again_when_storing(library: Library) -> None:
    """Another batch of the same owner, stored while this one was embedding, counts."""
    meanwhile: list[IngestResult] = []

    def progress(event: IngestProgress) -> None:
        if event.stage == "embedding" and not meanwhile:
            meanwhile.append(library.ingest(words(80, "other"), "other.txt", owner="alice"))

    batch = library.ingest_many(
        [(words(72, "a"), "a.txt"), (words(16, "b"), "b.txt")], "alice", progress=progress
    )  # 9 + 2 chunks: they fitted when checked before embedding
    assert meanwhile[0].chunk_count == 10
    [failure] = batch.failed
    assert str(failure.error) == (
        "b.txt: your documents hold 19 passages and this file adds 2; the limit is 20. "
        "Delete some documents or split the file."
    )
    assert [(r.name, r.chunk_count) for r in batch.succeeded] == [("a.txt", 9)]
    assert library.chunk_count == 19
    hits = library.search("b3 a3", "alice", mode="bm25")
    assert {hit.document_name for hit in hits} == {"a.txt"}
    assert library.search("b3", "alice", mode="bm25") == []
    last = " ".join(f"a{i}" for i in range(64, 72))  # vectors still match their chunks
    assert library.search(last, "alice", mode="dense", k=1)[0].text == last
