"""Two interchangeable judgement models, evaluated in numpy alone at answer time.

Both see the same two views of a message: its sentence embedding (the store's
embedding model) and its hashed surface features: character n-grams and words (features.py).

- LinearModel: multinomial logistic regression over both views (trained at
  ingest with scikit-learn, see ingest/judgement_build.py).
- NeighbourModel: the labelled messages most similar to the message vote,
  similarity being a blend of embedding and n-gram cosine.

`python bench/judgement_compare.py` compares them on the held-out messages;
docs/judgement.md holds the result and which one ingest builds.
"""

from __future__ import annotations

import numpy as np

from bot.judgement.features import FEATURES


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()


def linear_scores(dense: np.ndarray, ngram: np.ndarray, bias, vector: np.ndarray,
                  ngrams: tuple[np.ndarray, np.ndarray]):
    """dense · embedding + hashed features · their weights + bias: the score every linear
    model here gives a message (a row per class, or one row as 1-d arrays)."""
    idx, val = ngrams
    values = dense @ vector + bias
    if len(idx):
        values = values + ngram[..., idx] @ val
    return values


class LinearModel:
    kind = "linear"

    def __init__(self, dense: np.ndarray, ngram: np.ndarray, bias: np.ndarray) -> None:
        self.dense = np.asarray(dense, dtype=np.float32)      # (labels, dimension)
        self.ngram = np.asarray(ngram, dtype=np.float32)      # (labels, FEATURES)
        self.bias = np.asarray(bias, dtype=np.float32)        # (labels,)

    def probabilities(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return _softmax(linear_scores(self.dense, self.ngram, self.bias, vector, ngrams))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"dense": self.dense.astype(np.float16), "ngram": self.ngram.astype(np.float16),
                "bias": self.bias}

    @classmethod
    def from_arrays(cls, arrays) -> "LinearModel":
        return cls(arrays["dense"], arrays["ngram"], arrays["bias"])


class NeighbourModel:
    kind = "neighbours"
    K = 7
    NGRAM_WEIGHT = 0.5  # share of the n-gram cosine in the blended similarity

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, n_labels: int,
                 ngram_indptr: np.ndarray, ngram_rows: np.ndarray, ngram_values: np.ndarray) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)  # (messages, dimension), L2-normalised
        self.labels = np.asarray(labels, dtype=np.int32)
        self.n_labels = int(n_labels)
        # The messages' n-grams by bucket (a CSC matrix without scipy): the rows
        # holding bucket b are ngram_rows[indptr[b]:indptr[b+1]].
        self.indptr = np.asarray(ngram_indptr, dtype=np.int64)
        self.rows = np.asarray(ngram_rows, dtype=np.int32)
        self.values = np.asarray(ngram_values, dtype=np.float32)

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, n_labels: int,
              ngrams: list[tuple[np.ndarray, np.ndarray]]) -> "NeighbourModel":
        per_bucket: list[list[tuple[int, float]]] = [[] for _ in range(FEATURES)]
        for row, (idx, val) in enumerate(ngrams):
            for b, v in zip(idx.tolist(), val.tolist()):
                per_bucket[b].append((row, v))
        indptr = np.zeros(FEATURES + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p) for p in per_bucket])
        rows = np.fromiter((r for p in per_bucket for r, _ in p), dtype=np.int32, count=int(indptr[-1]))
        values = np.fromiter((v for p in per_bucket for _, v in p), dtype=np.float32, count=int(indptr[-1]))
        return cls(vectors, labels, n_labels, indptr, rows, values)

    def similarities(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        sims = (1.0 - self.NGRAM_WEIGHT) * (self.vectors @ vector)
        idx, val = ngrams
        for b, v in zip(idx.tolist(), val.tolist()):
            start, end = self.indptr[b], self.indptr[b + 1]
            if end > start:
                sims[self.rows[start:end]] += self.NGRAM_WEIGHT * v * self.values[start:end]
        return sims

    def probabilities(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        sims = self.similarities(vector, ngrams)
        k = min(self.K, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        votes = np.full(self.n_labels, 1e-3, dtype=np.float64)
        np.add.at(votes, self.labels[top], np.maximum(sims[top], 0.0) ** 2)
        return votes / votes.sum()

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors.astype(np.float16), "labels": self.labels,
                "n_labels": np.array(self.n_labels), "indptr": self.indptr, "rows": self.rows,
                "values": self.values.astype(np.float16)}

    @classmethod
    def from_arrays(cls, arrays) -> "NeighbourModel":
        return cls(arrays["vectors"], arrays["labels"], int(arrays["n_labels"]), arrays["indptr"],
                   arrays["rows"], arrays["values"])


class CrisisDetector:
    """Is this message possibly a crisis? One linear score over both views, trained on
    crisis against every other label: the crisis risk that puts the crisis lines first.

    A model of its own because the question is binary: the label model spreads a
    message's probability over eleven labels, and on out-of-fold tuning messages a
    crisis-against-the-rest score catches as many crises with under half the false
    alarms on ordinary questions, at the price of more alarms for distressed messages
    (docs/crisis-risk.md)."""

    def __init__(self, dense: np.ndarray, ngram: np.ndarray, bias: float, threshold: float) -> None:
        self.dense = np.asarray(dense, dtype=np.float32)      # (dimension,)
        self.ngram = np.asarray(ngram, dtype=np.float32)      # (FEATURES,)
        self.bias = float(bias)
        self.threshold = float(threshold)  # calibrated at ingest (ingest/crisis_build.py)

    def score(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> float:
        return float(linear_scores(self.dense, self.ngram, self.bias, vector, ngrams))

    def flags(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> bool:
        return self.score(vector, ngrams) >= self.threshold

    def to_arrays(self) -> dict[str, np.ndarray]:
        # float32, not float16 like the label model: scores near the threshold stay on their side
        return {"dense": self.dense, "ngram": self.ngram, "bias": np.array(self.bias),
                "threshold": np.array(self.threshold)}

    @classmethod
    def from_arrays(cls, arrays) -> "CrisisDetector":
        return cls(arrays["dense"], arrays["ngram"], float(arrays["bias"]), float(arrays["threshold"]))


MODELS = {LinearModel.kind: LinearModel, NeighbourModel.kind: NeighbourModel}
