"""Document retrieval for chatui: load, chunk, embed, index and search files.

Knows nothing of Gradio or chats. The app creates one ``Embedder`` and one
``Library`` at start and passes them in; see ``library.py`` for the contract.
"""

from __future__ import annotations

from .embedder import Embedder, TextEmbedder
from .errors import (
    BinaryContent,
    DocumentError,
    DocumentNotFound,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    IndexStoreError,
    ModelUnavailable,
    RagError,
    UnreadableDocument,
    UnsupportedType,
)
from .library import Library
from .loaders import SUPPORTED_EXTENSIONS
from .values import (
    DocumentInfo,
    Hit,
    IngestBatch,
    IngestFailure,
    IngestProgress,
    IngestResult,
    SearchMode,
)

__all__ = [
    "BinaryContent",
    "DocumentError",
    "DocumentInfo",
    "DocumentNotFound",
    "DocumentTooLarge",
    "Embedder",
    "EmptyDocument",
    "EncryptedDocument",
    "Hit",
    "IndexStoreError",
    "IngestBatch",
    "IngestFailure",
    "IngestProgress",
    "IngestResult",
    "Library",
    "ModelUnavailable",
    "RagError",
    "SUPPORTED_EXTENSIONS",
    "SearchMode",
    "TextEmbedder",
    "UnreadableDocument",
    "UnsupportedType",
]
