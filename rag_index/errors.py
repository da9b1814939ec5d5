"""Every error rag_index raises on purpose, written for the person who reads it.

    RagError
     +-- DocumentError                 one uploaded file cannot be indexed; names the file
     |    +-- UnsupportedType          the file name's extension is not one we read
     |    +-- DocumentTooLarge         the file is over the configured size limit
     |    |    +-- TooMuchText         it unpacks to too much: text, pages, paragraphs,
     |    |                            parts or passages (chunks) over a limit
     |    +-- LibraryFull              the owner's documents would hold too many passages
     |    +-- EmptyDocument            the file holds no text we could find
     |    +-- UnreadableDocument       the bytes are not a readable file of that type
     |         +-- EncryptedDocument   a password-protected PDF
     |         +-- BinaryContent       a "text" file that is really binary data
     +-- DocumentNotFound              no such document for this owner
     +-- IndexStoreError               the index on disk cannot be read or written
     +-- ModelUnavailable              the embedding model cannot be loaded locally

A ``DocumentError`` never leaves the index changed: files are read, checked and
chunked before anything is stored. Translate these to ``gr.Error`` or HTTP
status codes only at the edges (UI, REST); rag_index knows neither.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class; ``str(error)`` is a sentence a user can read."""


class DocumentError(RagError):
    """One file could not be indexed. ``filename`` is the (neutralised) file name."""

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(f"{filename}: {message}")
        self.filename = filename
        self.reason = message


class UnsupportedType(DocumentError):
    """The extension is not one of the supported document types."""


class DocumentTooLarge(DocumentError):
    """The file is bigger than the configured limit."""


class TooMuchText(DocumentTooLarge):
    """A small file that unpacks to more than one document may (text, pages, parts)."""


class LibraryFull(DocumentError):
    """Indexing the file would take its owner past their total of passages (chunks)."""


class EmptyDocument(DocumentError):
    """The file was read but holds no text."""


class UnreadableDocument(DocumentError):
    """The file is damaged or not what its extension says."""


class EncryptedDocument(UnreadableDocument):
    """A password-protected PDF; we do not ask for passwords."""


class BinaryContent(UnreadableDocument):
    """A text-type file whose bytes are binary data (NUL bytes, not valid text)."""


class DocumentNotFound(RagError):
    """The document id is unknown, or belongs to someone else (we do not say which)."""


class IndexStoreError(RagError):
    """The index on disk cannot be read or written."""


class ModelUnavailable(RagError):
    """The embedding model could not be loaded from local files."""
