"""Chunker: token-bounded chunks that cut at paragraphs, then sentences, with overlap."""

from __future__ import annotations

import re

import pytest

from rag_index import Embedder
from rag_index.chunker import Chunk, Chunker
from rag_index.loaders import Page

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture

SENTENCES = [
    f"Sentence number {i} describes the {word} of a small experiment in some detail."
    for i, word in enumerate(
        ["design", "outcome", "budget", "timeline", "risk", "method", "staff", "scope"] * 12
    )
]


def token_count(rag_embedder: Embedder, text: str) -> int:
    return len(rag_embedder.token_spans([text])[0])


@pytest.fixture
def chunker(rag_embedder: Embedder) -> Chunker:
    return Chunker(rag_embedder.token_spans, chunk_tokens=60, overlap_tokens=15)


def check_slices(chunks: list[Chunk], pages: list[Page]) -> None:
    by_page = {page.page: page.text for page in pages}
    for chunk in chunks:
        text = by_page[chunk.page]
        assert text[chunk.char_start : chunk.char_start + len(chunk.text)] == chunk.text


def test_chunks_are_bounded_in_model_tokens(rag_embedder: Embedder, chunker: Chunker) -> None:
    page = Page("a.txt", None, " ".join(SENTENCES))
    chunks = chunker.split([page])
    assert len(chunks) > 5
    for chunk in chunks:
        assert token_count(rag_embedder, chunk.text) == chunk.n_tokens <= 60
    check_slices(chunks, [page])


def test_cuts_fall_on_sentence_boundaries(chunker: Chunker) -> None:
    chunks = chunker.split([Page("a.txt", None, " ".join(SENTENCES))])
    for chunk in chunks:
        assert chunk.text.endswith("detail.")
        assert chunk.text.startswith("Sentence number")


def test_consecutive_chunks_overlap_by_whole_sentences(
    rag_embedder: Embedder, chunker: Chunker
) -> None:
    chunks = chunker.split([Page("a.txt", None, " ".join(SENTENCES))])
    for before, after in zip(chunks, chunks[1:], strict=False):
        end_before = before.char_start + len(before.text)
        assert after.char_start < end_before, "no overlap"
        shared = before.text[after.char_start - before.char_start :]
        assert after.text.startswith(shared)
        assert 0 < token_count(rag_embedder, shared) <= 15


def test_paragraph_break_is_preferred_over_a_later_sentence_end(chunker: Chunker) -> None:
    first = " ".join(SENTENCES[:3])  # about 45 tokens: past half a chunk
    text = first + "\n\n" + " ".join(SENTENCES[3:8])
    chunks = chunker.split([Page("a.txt", None, text)])
    assert chunks[0].text == first


def test_a_word_longer_than_a_chunk_is_cut_inside(rag_embedder: Embedder, chunker: Chunker) -> None:
    text = "start " + "x" * 2000 + " end."
    chunks = chunker.split([Page("a.txt", None, text)])
    assert "".join(re.findall(r"x+", "".join(c.text for c in chunks))).count("x") >= 2000
    assert all(token_count(rag_embedder, c.text) <= 60 for c in chunks)


def test_chunks_keep_page_source_and_running_ordinal(chunker: Chunker) -> None:
    pages = [Page("r.pdf", 1, " ".join(SENTENCES[:10])), Page("r.pdf", 2, "Short last page.")]
    chunks = chunker.split(pages)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].page == 2 and chunks[-1].text == "Short last page."
    assert {c.page for c in chunks[:-1]} == {1}
    assert all(c.source == "r.pdf" for c in chunks)
    check_slices(chunks, pages)


def test_short_text_is_one_chunk(chunker: Chunker) -> None:
    [chunk] = chunker.split([Page("a.txt", None, "Just one line.")])
    assert (chunk.text, chunk.char_start, chunk.ordinal) == ("Just one line.", 0, 0)


def test_split_many_matches_split(chunker: Chunker) -> None:
    docs = [[Page("a.txt", None, " ".join(SENTENCES[:20]))], [Page("b.txt", None, "Tiny.")]]
    assert chunker.split_many(docs) == [chunker.split(docs[0]), chunker.split(docs[1])]


def test_settings_are_validated(rag_embedder: Embedder) -> None:
    with pytest.raises(ValueError):
        Chunker(rag_embedder.token_spans, chunk_tokens=50, overlap_tokens=30)
    with pytest.raises(ValueError):
        Chunker(rag_embedder.token_spans, chunk_tokens=4)
