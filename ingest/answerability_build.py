"""Fit the answerability decision at ingest, on the version being written.

Every tuning question of the labelled question sets (knowledge/eval/questions.yaml:
kind answer with its ids, kind decline with none; knowledge/eval/realistic.yaml) is
searched in the new version exactly as the bot would search it. Each of its two best
matches becomes one example: the evidence (bot/answerability.py FEATURES) and whether
that entry answers the question acceptably. A logistic regression learns the odds; the
answer threshold is the lowest at which, out-of-fold, at most WRONG_TARGET of the
questions would get an answer from an entry that does not answer them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import yaml

from bot.answerability import Answerability, features
from bot.safety import assess
from bot.splits import is_held_out
from bot.textnorm import normalise_query

log = logging.getLogger(__name__)

# Bump when the features or the fitting change: the next ingest fits the model again.
ANSWERABILITY_FORMAT = "answerability-5"  # fitted on candidates ordered with the entry classifier
WRONG_TARGET = 0.03
# Offer a choice between two entries only where, out-of-fold, at least this share of
# such choices would contain an acceptable entry.
CLARIFY_PRECISION = 0.7
MIN_QUESTIONS = 40  # fewer tuning questions than this: no answerability model is built


def tuning_questions(knowledge_dir: Path) -> list[tuple[str, list[str]]]:
    """(question, acceptable entry ids) of the tuning part of the labelled question sets."""
    items: list[tuple[str, list[str]]] = []
    for name in ("questions.yaml", "realistic.yaml"):
        path = knowledge_dir / "eval" / name
        if not path.is_file():
            continue
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if not isinstance(raw, dict) or "q" not in raw:
                continue
            kind = raw.get("kind", "answer")
            if kind not in ("answer", "decline") or is_held_out(str(raw["q"])):
                continue
            items.append((str(raw["q"]), [str(i) for i in raw.get("ids") or []] if kind == "answer" else []))
    return items


def build_answerability(retriever, items: list[tuple[str, list[str]]]) -> Answerability | None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    if len(items) < MIN_QUESTIONS:
        return None
    judge, lexicon, embedder = retriever.judge, retriever.lexicon, retriever.embedder
    rows, targets, question_of, position = [], [], [], []
    for n, (question, ids) in enumerate(items):
        label = assess(normalise_query(question), judge, embedder.query_vector, lexicon.overrides).label
        result = retriever.search(question, k=5)
        for p in range(min(2, len(result.hits))):
            rows.append(features(result, label, p))
            targets.append(result.hits[p].unit.id in ids)
            question_of.append(n)
            position.append(p)
    X, y = np.array(rows), np.array(targets, dtype=int)
    if len(set(y.tolist())) < 2:
        return None
    model = LogisticRegression(C=1.0, max_iter=2000)
    oof = cross_val_predict(model, X, y, cv=5, method="predict_proba")[:, 1]
    model.fit(X, y)
    answer_at = _answer_threshold(oof, y, question_of, position, len(items))
    clarify_at = _clarify_threshold(oof, y, question_of, position, answer_at)
    fitted_on = {"questions": len(items), "examples": int(len(y))}
    log.info("answerability answer_at=%.3f clarify_at=%.3f on %d questions", answer_at, clarify_at, len(items))
    return Answerability([float(w) for w in model.coef_[0]], float(model.intercept_[0]), answer_at, clarify_at,
                         fitted_on)


def _top_rows(question_of, position) -> dict[int, int]:
    return {q: i for i, (q, p) in enumerate(zip(question_of, position)) if p == 0}


def _answer_threshold(oof, y, question_of, position, questions: int) -> float:
    top = _top_rows(question_of, position)
    for threshold in np.arange(0.30, 0.99, 0.01):
        wrong = sum(1 for i in top.values() if oof[i] >= threshold and not y[i])
        if wrong / questions <= WRONG_TARGET:
            return float(round(threshold, 2))
    return 0.99


def _clarify_threshold(oof, y, question_of, position, answer_at: float) -> float:
    rows: dict[int, list[int]] = {}
    for i, q in enumerate(question_of):
        rows.setdefault(q, []).append(i)
    pairs = [r for r in rows.values() if len(r) == 2 and oof[r[0]] < answer_at]
    for threshold in np.arange(0.10, answer_at, 0.01):
        offered = [r for r in pairs if min(oof[r[0]], oof[r[1]]) >= threshold]
        if offered and sum(1 for r in offered if y[r[0]] or y[r[1]]) / len(offered) >= CLARIFY_PRECISION:
            return float(round(threshold, 2))
    return 1.0  # never: no threshold made a choice between two entries reliable
