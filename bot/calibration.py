"""Dense-similarity thresholds per embedding model, calibrated from the knowledge base at ingest.

Answering compares a question's best cosine similarity with three thresholds
(bot/answer.py, bot/retrieval.py):

- relevance: below it the best match is not trusted on its own;
- strong: a match this close to an entry's own wording is trusted without further checks;
- exact: at or above it the person asked (nearly) one of an entry's own questions.

They were tuned for the bundled model (0.45, 0.8, 0.95) and stay exactly so
for it. Another model spreads similarities differently (e5, for one, puts
nearly every pair of sentences above 0.7), so when ingest writes a store for
it, its numbers are calibrated from the knowledge base itself. Every entry's
paraphrased questions are encoded as queries (with the query prompt) and
compared with the stored texts, giving three distributions: each question's
best similarity to its own entry's other texts, to the best other entry's
texts, and to its own identical stored text. The bundled model gives the same
distributions on the same knowledge. Each bundled threshold is then carried
over to the same place in the new model's distributions (equipercentile:
piecewise-linear between matching quantiles), so a threshold that the bundled
model's genuine paraphrases clear 90 % of the time is cleared 90 % of the time
with the new model too.

The result goes into the store's manifest (`extra["thresholds"]`), with the
prompts the store was built with (`extra["embedding"]`); `thresholds_of(manifest)`
reads it back, and `check_prompts` refuses a store built with other prompts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from bot.settings import BUNDLED_EMBEDDING_MODEL
from bot.store import EmbeddingMismatchError, Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    relevance: float
    strong: float
    exact: float
    # bundled: the bundled model's own numbers; calibrated: carried over at ingest;
    # uncalibrated: the bundled numbers for another model (a store from before
    # calibration, or too few questions to calibrate from).
    basis: str = "bundled"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BUNDLED_THRESHOLDS = Thresholds(relevance=0.45, strong=0.8, exact=0.95, basis="bundled")
# Where the distributions are matched: quantiles of the questions' best similarities
# (own entry and other entries together), then the median similarity of a question
# to its own identical stored text.
QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
MIN_QUESTIONS = 10

_warned: set[str] = set()


def thresholds_of(manifest: Manifest, relevance: float | None = None) -> Thresholds:
    """The thresholds recorded in the store for its model; `relevance` (RELEVANCE_THRESHOLD) overrides one."""
    recorded = (manifest.extra or {}).get("thresholds")
    try:
        found = Thresholds(float(recorded["relevance"]), float(recorded["strong"]), float(recorded["exact"]),
                           str(recorded.get("basis", "calibrated")))
    except (TypeError, KeyError, ValueError):
        found = BUNDLED_THRESHOLDS
        if manifest.embedding_model != BUNDLED_EMBEDDING_MODEL:
            found = replace(BUNDLED_THRESHOLDS, basis="uncalibrated")
            if manifest.version not in _warned:
                _warned.add(manifest.version)
                log.warning("store version %s records no similarity thresholds for %s: using the bundled "
                            "model's; `python -m ingest --rebuild` calibrates them", manifest.version,
                            manifest.embedding_model)
    return found if relevance is None else replace(found, relevance=relevance)


# --- prompts ------------------------------------------------------------------------------

def prompts_of(embedder) -> dict[str, str]:
    return {"query_prompt": getattr(embedder, "query_prompt", ""),
            "document_prompt": getattr(embedder, "document_prompt", "")}


def check_prompts(manifest: Manifest, embedder) -> None:
    """Refuse a store whose texts were encoded with other prompts than the configured ones."""
    recorded = (manifest.extra or {}).get("embedding") or {"query_prompt": "", "document_prompt": ""}
    configured = prompts_of(embedder)
    if {k: recorded.get(k, "") for k in configured} != configured:
        raise EmbeddingMismatchError(
            f"The knowledge store was built with the prompts {recorded.get('query_prompt', '')!r} (questions) "
            f"and {recorded.get('document_prompt', '')!r} (stored texts) for {manifest.embedding_model!r}, but "
            f"the configured ones are {configured['query_prompt']!r} and {configured['document_prompt']!r}. "
            "Run `python -m ingest --rebuild` to rebuild the store with them, or set "
            "EMBEDDING_QUERY_PROMPT / EMBEDDING_DOCUMENT_PROMPT back."
        )


# --- calibration ------------------------------------------------------------------------------

@dataclass
class Profile:
    """For each paraphrased question: best similarity to its own entry's other texts,
    to any other entry's, and to its own identical stored text."""

    own: np.ndarray
    other: np.ndarray
    self_: np.ndarray

    @property
    def questions(self) -> int:
        return len(self.own)

    def anchors(self) -> np.ndarray:
        pooled = np.concatenate([self.own, self.other])
        top = float(np.median(self.self_)) if len(self.self_) else float(pooled.max())
        points = np.append(np.quantile(pooled, QUANTILES), top)
        return np.maximum.accumulate(points)


def profile(embedder, documents: list[str], metadatas: list[dict], vectors: np.ndarray | None = None) -> Profile:
    """The similarity profile of a knowledge store's questions under `embedder`.

    `vectors`: the stored texts' vectors when at hand (else they are encoded here).
    """
    docs = np.array(documents, dtype=object)
    units = np.array([m.get("unit_id", "") for m in metadatas], dtype=object)
    asked = [i for i, m in enumerate(metadatas) if m.get("field") == "question"]
    stored = embedder.encode(list(documents)) if vectors is None else np.asarray(vectors, dtype=np.float32)
    stored = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
    queries = embedder.encode_queries([documents[i] for i in asked])
    own, other, self_ = [], [], []
    for row, i in zip(queries @ stored.T, asked):
        same_text = docs == documents[i]
        mine = units == units[i]
        if (mine & ~same_text).any() and (~mine & ~same_text).any():
            own.append(row[mine & ~same_text].max())
            other.append(row[~mine & ~same_text].max())
        self_.append(row[same_text].max())
    return Profile(np.array(own, dtype=np.float64), np.array(other, dtype=np.float64),
                   np.array(self_, dtype=np.float64))


def carry_over(reference: Profile, model: Profile, thresholds: Thresholds = BUNDLED_THRESHOLDS) -> Thresholds:
    """The bundled thresholds moved from the reference (bundled) profile to the model's."""
    xs, ys = reference.anchors(), model.anchors()
    keep = np.concatenate([[True], np.diff(xs) > 1e-9])  # np.interp needs increasing xs
    xs, ys = xs[keep], ys[keep]

    def move(value: float) -> float:
        return round(float(np.clip(np.interp(value, xs, ys), 0.0, 1.0)), 4)

    return Thresholds(move(thresholds.relevance), move(thresholds.strong), move(thresholds.exact), "calibrated")


def manifest_extra(embedder, collection) -> dict[str, Any]:
    """What a new store version records about its model: prompts and calibrated thresholds."""
    extra: dict[str, Any] = {"embedding": prompts_of(embedder)}
    if embedder.name == BUNDLED_EMBEDDING_MODEL:
        extra["thresholds"] = BUNDLED_THRESHOLDS.as_dict()
        return extra
    from bot.embeddings import get_embedder

    got = collection.get(include=["documents", "metadatas", "embeddings"])
    documents, metadatas = list(got["documents"]), list(got["metadatas"])
    model = profile(embedder, documents, metadatas, np.asarray(got["embeddings"]))
    if model.questions < MIN_QUESTIONS:
        log.warning("only %d questions to calibrate %s from: using the bundled model's thresholds",
                    model.questions, embedder.name)
        extra["thresholds"] = replace(BUNDLED_THRESHOLDS, basis="uncalibrated").as_dict()
        return extra
    reference = profile(get_embedder(BUNDLED_EMBEDDING_MODEL), documents, metadatas)
    calibrated = carry_over(reference, model)
    extra["thresholds"] = {**calibrated.as_dict(), "questions": model.questions,
                           "anchors": {"reference": [round(float(v), 4) for v in reference.anchors()],
                                       "model": [round(float(v), 4) for v in model.anchors()]}}
    log.info("thresholds for %s calibrated from %d questions: relevance=%.3f strong=%.3f exact=%.3f",
             embedder.name, model.questions, calibrated.relevance, calibrated.strong, calibrated.exact)
    return extra
