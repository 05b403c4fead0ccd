"""Build the judgement model from the labelled messages, at ingest.

Only the tuning part of the messages is learned from: the held-out part is
what `python -m bot eval` reports, so it must stay unseen. The per-label
offsets that make the costly mistakes rarer are calibrated on out-of-fold
predictions over the tuning part (see calibrate_offsets).
"""

from __future__ import annotations

import logging

import numpy as np

from bot.judgement.features import FEATURES, message_features
from bot.judgement.judge import Judge, Overrides
from bot.judgement.labels import INDEX, LABELS
from bot.judgement.models import LinearModel, NeighbourModel
from bot.textnorm import normalise_query
from ingest.crisis_build import build_crisis_detector
from ingest.judgement_data import LabelledMessage

log = logging.getLogger(__name__)

MODEL_KIND = "linear"  # the better of the two on held-out messages (docs/judgement.md)
# Bump when the features or the training change: the next ingest rebuilds the model.
JUDGEMENT_FORMAT = "judgement-7"  # 7: the crisis detector learns the ordinary questions as non-crises
LINEAR_C = 1.0
SCORE_TEMPERATURE = 4.0  # SVM scores to logits: softmax(4 * score) reads like a probability
DENSE_SCALE = 1.0  # weight of the embedding view against the (L2-normalised) n-gram view
FOLDS = 5
# Cost-aware calibration (calibrate_offsets), on out-of-fold tuning predictions.
# The label: a missed crisis costs five ordinary mistakes, crisis lines shown to someone
# who did not need them one (in real traffic crises are rare, so false alarms add up).
# The crisis label itself is never raised by an offset: below the model's own call, the
# crisis detector (ingest/crisis_build.py) puts the lines first without replacing the answer.
MISSED_CRISIS_COST = 5.0
LECTURED_VICTIM_COST = 10.0
NEEDLESS_CRISIS_COST = 1.0
PROTECTED_FROM_EVASION = ("victim", "threat", "relative", "crisis")
OFFSET_STEP = 0.25
OFFSET_LIMIT = 4.0
ABSENT_LABEL_BIAS = -30.0


# --- features ------------------------------------------------------------------------
def embed_by_length(texts: list[str], embedder, batch: int = 64) -> np.ndarray:
    """Embeddings in batches of similar length: a batch is padded to its longest text,
    so mixing 3- and 120-character messages would cost several times more."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        vectors[chunk] = embedder.encode_queries([texts[i] for i in chunk])  # messages are queries
    return vectors


def featurise(messages: list[LabelledMessage], embedder):
    normalised = [normalise_query(m.text) for m in messages]
    vectors = embed_by_length(normalised, embedder)
    ngrams = [message_features(t) for t in normalised]
    labels = np.array([INDEX[m.label] for m in messages], dtype=np.int32)
    return vectors, ngrams, labels


# --- models ----------------------------------------------------------------------------
def design_matrix(vectors: np.ndarray, ngrams):
    from scipy import sparse

    rows = np.repeat(np.arange(len(ngrams)), [len(i) for i, _ in ngrams])
    cols = np.concatenate([i for i, _ in ngrams]) if ngrams else np.zeros(0, dtype=np.int32)
    vals = np.concatenate([v for _, v in ngrams]) if ngrams else np.zeros(0, dtype=np.float32)
    grams = sparse.csr_matrix((vals, (rows, cols)), shape=(len(ngrams), FEATURES))
    return sparse.hstack([sparse.csr_matrix(vectors * DENSE_SCALE), grams]).tocsr()


def class_weights(clf) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients, intercepts), a row per class in clf.classes_ order: a two-class SVM
    stores one row (for the second class), its mirror is the first."""
    if len(clf.classes_) > 2:
        return clf.coef_, clf.intercept_
    return np.vstack([-clf.coef_, clf.coef_]), np.array([-clf.intercept_[0], clf.intercept_[0]])


def fit_linear(vectors: np.ndarray, ngrams, labels: np.ndarray) -> LinearModel:
    """A linear SVM (one-vs-rest, classes balanced) over both views; its scores, scaled
    by SCORE_TEMPERATURE, are read as logits. As accurate as logistic regression on these
    messages and twenty times faster to fit, which keeps ingest quick."""
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=LINEAR_C, class_weight="balanced", random_state=0)
    clf.fit(design_matrix(vectors, ngrams), labels)
    n, dim = len(LABELS), vectors.shape[1]
    dense = np.zeros((n, dim), dtype=np.float32)
    grams = np.zeros((n, FEATURES), dtype=np.float32)
    bias = np.full(n, ABSENT_LABEL_BIAS, dtype=np.float32)
    coef, intercept = class_weights(clf)
    for row, cls in enumerate(clf.classes_):
        dense[cls] = coef[row, :dim] * DENSE_SCALE * SCORE_TEMPERATURE
        grams[cls] = coef[row, dim:] * SCORE_TEMPERATURE
        bias[cls] = intercept[row] * SCORE_TEMPERATURE
    return LinearModel(dense, grams, bias)


def fit_neighbours(vectors: np.ndarray, ngrams, labels: np.ndarray) -> NeighbourModel:
    return NeighbourModel.build(vectors, labels, len(LABELS), ngrams)


FITTERS = {"linear": fit_linear, "neighbours": fit_neighbours}


def out_of_fold_probabilities(kind: str, vectors, ngrams, labels, folds: int = FOLDS) -> np.ndarray:
    """Each message's label probabilities from a model that did not see it."""
    from sklearn.model_selection import StratifiedKFold

    probabilities = np.zeros((len(labels), len(LABELS)))
    counts = np.bincount(labels, minlength=len(LABELS))
    folds = min(folds, int(counts[counts > 0].min())) if len(labels) else 0
    if folds < 2:  # too few messages of some label to hold any out: no calibration
        probabilities[np.arange(len(labels)), labels] = 1.0
        return probabilities
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        model = FITTERS[kind](vectors[train], [ngrams[i] for i in train], labels[train])
        for i in test:
            probabilities[i] = model.probabilities(vectors[i], ngrams[i])
    return probabilities


def cost_matrix() -> np.ndarray:
    """cost[true, predicted] of one mistake. A missed crisis is the worst error, a victim
    (or someone under threat, or a relative) answered as an evader the next; crisis lines
    shown to someone who did not need them cost little."""
    cost = np.ones((len(LABELS), len(LABELS)))
    np.fill_diagonal(cost, 0.0)
    crisis, evasion = INDEX["crisis"], INDEX["evasion"]
    cost[crisis, :] = MISSED_CRISIS_COST
    cost[crisis, crisis] = 0.0
    for label in PROTECTED_FROM_EVASION:
        if label != "crisis":
            cost[INDEX[label], evasion] = LECTURED_VICTIM_COST
    cost[:, crisis] = np.minimum(cost[:, crisis], NEEDLESS_CRISIS_COST)
    cost[crisis, crisis] = 0.0
    return cost


def calibrate_offsets(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-label offsets added to log-probabilities that minimise the total cost of the
    mistakes (cost_matrix) on out-of-fold predictions of the tuning messages; coordinate
    descent over a grid, ties going to the smaller offset."""
    offsets = np.zeros(len(LABELS))
    logp = np.log(np.maximum(probabilities, 1e-9))
    cost = cost_matrix()
    grid = np.arange(-OFFSET_LIMIT, OFFSET_LIMIT + 1e-9, OFFSET_STEP)

    def total(candidate: np.ndarray) -> float:
        return float(cost[labels, np.argmax(logp + candidate, axis=1)].sum())

    best = total(offsets)
    for _ in range(3):
        improved = False
        for label in range(len(LABELS)):
            if label == INDEX["crisis"]:
                continue  # a crisis label is the model's own call; the crisis risk catches the rest
            for value in sorted(grid, key=abs):
                candidate = offsets.copy()
                candidate[label] = value
                score = total(candidate)
                if score < best - 1e-9:
                    best, offsets, improved = score, candidate, True
        if not improved:
            break
    # Then a hard line, not a cost: no victim, threat, relative or crisis taken for an evader.
    evasion = INDEX["evasion"]
    protected = np.isin(labels, [INDEX[label] for label in PROTECTED_FROM_EVASION])
    while protected.any() and offsets[evasion] > -OFFSET_LIMIT \
            and (np.argmax(logp + offsets, axis=1)[protected] == evasion).any():
        offsets[evasion] -= OFFSET_STEP
    return offsets


def build_judge(messages: list[LabelledMessage], embedder, overrides: Overrides | None = None,
                kind: str = MODEL_KIND, questions: list[str] = ()) -> Judge:
    """`questions`: ordinary questions of the tuning part of the question sets, to keep the
    crisis risk from alarming people who only asked something."""
    tuning = [m for m in messages if not m.held_out]
    vectors, ngrams, labels = featurise(tuning, embedder)
    model = FITTERS[kind](vectors, ngrams, labels)
    probabilities = out_of_fold_probabilities(kind, vectors, ngrams, labels)
    offsets = calibrate_offsets(probabilities, labels)
    asked = None
    if questions:
        normalised = [normalise_query(q) for q in questions]
        asked = design_matrix(embed_by_length(normalised, embedder), [message_features(t) for t in normalised])
    detector = build_crisis_detector(design_matrix(vectors, ngrams), labels, asked, dimension=vectors.shape[1],
                                     dense_scale=DENSE_SCALE)
    log.info("judgement model=%s messages=%d offsets=%s crisis_threshold=%s", kind, len(tuning),
             {LABELS[i]: float(o) for i, o in enumerate(offsets) if o}, detector and round(detector.threshold, 3))
    return Judge(model, offsets, overrides, detector)
