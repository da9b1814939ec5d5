"""On-disk layout of a library, and the only code that writes it.

    data_dir/
      manifest.json          schema version, next chunk id, every live document
      segments/<name>.npz    immutable: chunk ids, vectors, pages, offsets, texts

A segment holds the chunks of one ingest call (one file, or a whole
``ingest_many`` batch). Segments are written once and never changed; the
manifest says which documents are live and which segment holds each one.

Invariants (crash safety):
- Every file is written to a temporary name in the same directory, fsynced,
  then ``os.replace``d into place, and the directory is fsynced.
- A segment is durable before any manifest names it, and a segment is deleted
  only after a manifest that no longer names it is durable. So the manifest,
  which is the single commit point, always describes a consistent index.
- Files no manifest refers to (a crash mid-ingest, a deleted document) are
  garbage and are removed by ``collect_garbage``.
- One writer per ``data_dir``: there is no lock between processes, so only
  one ``Library`` may open a folder at a time.
- A segment file stays while any of its documents lives (no compaction yet).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import IndexStoreError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SEGMENTS = "segments"


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """What the manifest stores about one live document."""

    document_id: str
    owner: str
    conversation_id: str | None
    name: str
    sha256: str
    size_bytes: int
    pages: int
    added_at: float
    segment: str
    first_chunk_id: int
    chunk_count: int


@dataclass(frozen=True, slots=True)
class Manifest:
    next_chunk_id: int
    documents: tuple[DocumentRecord, ...]


@dataclass(frozen=True, slots=True)
class SegmentData:
    """Columns of the chunks in one segment; row i of each belongs together."""

    ids: np.ndarray  # int64, increasing
    vectors: np.ndarray  # float32, n x dimension
    pages: np.ndarray  # int32, -1 where a document has no pages
    ordinals: np.ndarray  # int32
    char_starts: np.ndarray  # int64
    texts: tuple[str, ...]


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LibraryStore:
    """Reads and writes one ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.segment_dir = self.root / SEGMENTS
        try:
            self.segment_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexStoreError(
                f"The document index folder {self.root} cannot be created: {exc.strerror}."
            ) from exc

    def read_manifest(self) -> Manifest:
        path = self.root / MANIFEST
        if not path.exists():
            return Manifest(next_chunk_id=0, documents=())
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("schema") != SCHEMA_VERSION:
                raise IndexStoreError(
                    f"The document index in {self.root} has schema {raw.get('schema')!r}; "
                    f"this version reads schema {SCHEMA_VERSION}."
                )
            documents = tuple(DocumentRecord(**record) for record in raw["documents"])
            return Manifest(next_chunk_id=int(raw["next_chunk_id"]), documents=documents)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexStoreError(
                f"The document index file {path} is damaged and cannot be read."
            ) from exc

    def write_manifest(self, manifest: Manifest) -> None:
        payload = {
            "schema": SCHEMA_VERSION,
            "next_chunk_id": manifest.next_chunk_id,
            "documents": [asdict(record) for record in manifest.documents],
        }
        encoded = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        self._write(self.root / MANIFEST, encoded)

    def write_segment(self, name: str, segment: SegmentData) -> None:
        encoded = [text.encode("utf-8") for text in segment.texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        buffer = io.BytesIO()
        np.savez(
            buffer,
            ids=segment.ids,
            vectors=segment.vectors,
            pages=segment.pages,
            ordinals=segment.ordinals,
            char_starts=segment.char_starts,
            text_offsets=offsets,
            text_blob=np.frombuffer(b"".join(encoded), dtype=np.uint8),
        )
        self._write(self.segment_dir / f"{name}.npz", buffer.getvalue())

    def read_segment(self, name: str) -> SegmentData:
        path = self.segment_dir / f"{name}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                blob = data["text_blob"].tobytes()
                offsets = data["text_offsets"]
                bounds = offsets.tolist()
                spans = itertools.pairwise(bounds)
                texts = tuple(blob[start:end].decode("utf-8") for start, end in spans)
                return SegmentData(
                    ids=data["ids"], vectors=data["vectors"], pages=data["pages"],
                    ordinals=data["ordinals"], char_starts=data["char_starts"], texts=texts,
                )
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise IndexStoreError(f"The index segment {path} is missing or damaged.") from exc

    def collect_garbage(self, live_segments: Iterable[str]) -> None:
        """Delete segment and temporary files that no live document needs."""
        keep = {f"{name}.npz" for name in live_segments}
        for path in self.segment_dir.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)
        for path in self.root.glob(f".{MANIFEST}.*.tmp"):
            path.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            atomic_write(path, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise IndexStoreError(
                f"The document index could not be saved to {path.parent}: {reason}."
            ) from exc
