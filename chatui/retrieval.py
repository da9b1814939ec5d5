"""The chat side of documents: ``rag_index`` hits become numbered ``Source`` values.

``LibraryRetriever`` is what ``ChatService`` calls when a conversation has RAG
on. It searches the owner's library plus the conversation's attachments, keeps
hits above ``min_score`` and numbers them from 1 in rank order, the numbers the
prompt and the answer's Sources list share. ``forget`` drops a deleted
conversation's attachments (its owner's library stays).
"""

from __future__ import annotations

from rag_index import Hit, Library, RagError

from chatui.errors import ChatError
from chatui.tree import Source

DEFAULT_K = 5
DEFAULT_MIN_SCORE = 0.2  # hybrid scores are 0..1: below this a chunk is noise


def source_of(hit: Hit, number: int) -> Source:
    return Source(
        number=number, document=hit.document_name, page=hit.page,
        snippet=hit.text, score=round(float(hit.score), 4), chunk_id=hit.chunk_id,
    )


class LibraryRetriever:
    def __init__(
        self, library: Library, k: int = DEFAULT_K, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.library = library
        self.k = k
        self.min_score = min_score

    def retrieve(self, query: str, owner: str, conversation_id: str) -> list[Source]:
        try:
            hits = self.library.search(
                query, owner, conversation_id, k=self.k, mode="hybrid", min_score=self.min_score
            )
        except RagError as error:  # e.g. the embedding model cannot be loaded
            raise ChatError(f"Searching your documents failed: {error}") from error
        return [source_of(hit, number) for number, hit in enumerate(hits, start=1)]

    def forget(self, owner: str, conversation_id: str) -> int:
        return self.library.delete_conversation(owner, conversation_id)
