"""Build the crisis detector (bot/judgement/models.py, CrisisDetector) at ingest.

A linear SVM, crisis against every other label, over the same two views as the
label model, trained on the tuning part of the labelled messages. Its threshold
is the score at which CRISIS_LINES_TARGET of the tuning crises are flagged
out-of-fold (each scored by a detector that did not see it), raised where
needed so that at most QUESTION_ALARM_LIMIT of the ordinary questions in the
tuning part of knowledge/eval/ get the crisis lines before their answer. Those
questions are also learned as what is not a crisis.
"""

from __future__ import annotations

import numpy as np

from bot.judgement.labels import INDEX
from bot.judgement.models import CrisisDetector

DETECTOR_C = 0.3  # out-of-fold on the tuning part: C in {0.3, 1, 3} x crisis weight in {1, 3}
CRISIS_WEIGHT = 3.0
FOLDS = 5
# Share of tuning crises (out-of-fold) the detector should flag...
CRISIS_LINES_TARGET = 0.985
# ... unless that would put the crisis lines before the answer to more than this share of
# the ordinary questions in the tuning part of knowledge/eval/ (people who only asked).
QUESTION_ALARM_LIMIT = 0.03


def _fit(design, is_crisis: np.ndarray):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=DETECTOR_C, class_weight={0: 1.0, 1: CRISIS_WEIGHT}, random_state=0).fit(design, is_crisis)


def out_of_fold_scores(design, is_crisis: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(is_crisis))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train, test in splitter.split(np.zeros(len(is_crisis)), is_crisis):
        scores[test] = _fit(design[train], is_crisis[train]).decision_function(design[test])
    return scores


def calibrate_threshold(crisis_scores: np.ndarray, question_scores: np.ndarray) -> float:
    """The highest threshold that flags CRISIS_LINES_TARGET of `crisis_scores`, raised to
    flag at most QUESTION_ALARM_LIMIT of `question_scores`."""
    flagged_needed = int(np.ceil(CRISIS_LINES_TARGET * len(crisis_scores)))
    threshold = float(np.sort(crisis_scores)[::-1][flagged_needed - 1])
    if len(question_scores):
        allowed = int(np.floor(QUESTION_ALARM_LIMIT * len(question_scores)))
        ranked = np.sort(question_scores)[::-1]
        if allowed < len(ranked) and threshold <= ranked[allowed]:
            threshold = float(np.nextafter(ranked[allowed], np.inf))  # just above the first too many
    return threshold


def build_crisis_detector(design, labels: np.ndarray, question_design=None, *, dimension: int,
                          dense_scale: float = 1.0) -> CrisisDetector | None:
    """`design`: the tuning messages' feature rows (ingest/judgement_build.design_matrix: the
    embedding times `dense_scale` in the first `dimension` columns, then the hashed features),
    `labels` their label indices; `question_design`: the ordinary tuning questions' rows.
    None when there are too few crises (or nothing but crises) to learn from.

    The ordinary questions are also examples of what is not a crisis: customers asking about
    their own account in their own words ("我怎么看自己欠了多少") were flagged from words the
    crisis messages share. They are scored out-of-fold like the messages, so the alarm limit
    is checked on questions the detector did not learn."""
    from scipy import sparse

    is_crisis = (labels == INDEX["crisis"]).astype(np.int32)
    if is_crisis.sum() < FOLDS or (1 - is_crisis).sum() < FOLDS:
        return None
    asked = 0 if question_design is None else question_design.shape[0]
    rows = design if not asked else sparse.vstack([design, question_design]).tocsr()
    targets = np.concatenate([is_crisis, np.zeros(asked, dtype=np.int32)])
    scores = out_of_fold_scores(rows, targets)
    crisis_scores = scores[:len(is_crisis)][is_crisis == 1]
    detector = _fit(rows, targets)
    weights = detector.coef_[0]
    return CrisisDetector(weights[:dimension] * dense_scale, weights[dimension:], float(detector.intercept_[0]),
                          calibrate_threshold(crisis_scores, scores[len(is_crisis):]))
