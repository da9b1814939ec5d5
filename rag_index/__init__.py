"""Document retrieval for chatui: load, chunk, embed, index and search files.

Knows nothing of Gradio or chats. The app creates one ``Embedder`` and one
``Library`` at start and passes them in; see ``library.py`` for the contract.
Importing this package and creating both is quick (numpy and FAISS, no torch):
the embedding model loads only when ``Library.start_loading`` or a document
call asks for it.
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
    LibraryFull,
    ModelUnavailable,
    RagError,
    TooMuchText,
    UnreadableDocument,
    UnsupportedType,
)
from .library import Library
from .budget import TextLimits
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
    "SUPPORTED_EXTENSIONS",
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
    "LibraryFull",
    "ModelUnavailable",
    "RagError",
    "SearchMode",
    "TextEmbedder",
    "TextLimits",
    "TooMuchText",
    "UnreadableDocument",
    "UnsupportedType",
]
