"""Fit the answerability decision at ingest, on the version being written.

Every tuning question of the labelled question sets (knowledge/eval/questions.yaml:
kind answer with its ids, kind decline with none; knowledge/eval/realistic*.yaml) is
searched in the new version as the bot would search it. Each of its RANK_DEPTH best
matches becomes one example: the evidence (bot/answerability.py FEATURES) and whether
that entry answers the question acceptably. A logistic regression learns the odds; the
bot decides on retrieval's first match (reordering the matches by these odds was measured
and dropped: docs/answerability-ranking.md).

The entry classifier (a retrieval leg and a source of features) learned from these same
questions, so it would recognise each of them far better than a new one. Each question is
therefore searched with a classifier fitted without its fold (`fit_classifier`), so the
evidence looks like a new customer's question does.

Two thresholds are chosen together, the pair that out-of-fold costs least when a confident
answer to a different question costs WRONG_COST needless declines (an honest "I can't say"
with where to ask is better than a wrong answer, but declining everything helps nobody):
the model answers on its own from `answer_at`, and the fixed rule's answer (bot/answer.py)
stands from `veto_at`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from bot.answerability import NEVER, RANK_DEPTH, Answerability, features
from bot.eval_answerability import realistic_files
from bot.safety import assess
from bot.splits import is_held_out
from bot.textnorm import normalise_query
from bot.yamlnodes import SAFE_LOADER

log = logging.getLogger(__name__)

# Bump when the features or the fitting change: the next ingest fits the model again.
ANSWERABILITY_FORMAT = "answerability-16"  # 16: the likelier of two answered only where right 9 times in 10
WRONG_COST = 2.0  # a wrong answer costs as much as this many needless declines
SMOOTHING = 2  # grid steps (of 0.01) each way over which the threshold cost is averaged
FOLDS = 5
# Offer a choice between two entries only where, out-of-fold, at least this share of
# such choices would contain an acceptable entry.
CLARIFY_PRECISION = 0.7
# Answer the likelier of two close entries (naming the other) instead of asking which is meant
# only where, out-of-fold, it is right at least this share of the time (of at least SURE_MIN),
# as the model must be to answer what the rule declines (SURE_RIGHT_PRECISION). At 0.8 the
# threshold sat inside a flat curve (0.76-0.82 at every sum) and jumped with each refit; a
# choice that contains the right entry is the careful reply until the model is that sure.
PAIR_PRECISION = 0.9
# With ANSWERABILITY=rule, the model declines the rule's answer only where, out-of-fold, at
# least this share of the answers it would decline are to a different question.
SURE_WRONG_PRECISION = 0.95
# ... and answers a question the rule declines only where at least this share of such answers
# are right (out of at least SURE_MIN questions).
SURE_RIGHT_PRECISION = 0.9
SURE_MIN = 10
MIN_QUESTIONS = 40  # fewer tuning questions than this: no answerability model is built


def tuning_questions(knowledge_dir: Path) -> list[tuple[str, list[str]]]:
    """(question, acceptable entry ids) of the tuning part of the labelled question sets."""
    items: list[tuple[str, list[str]]] = []
    for path in [knowledge_dir / "eval" / "questions.yaml", *realistic_files(knowledge_dir)]:
        if not path.is_file():
            continue
        for raw in yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or []:
            if not isinstance(raw, dict) or "q" not in raw:
                continue
            kind = raw.get("kind", "answer")
            if kind not in ("answer", "decline") or is_held_out(str(raw["q"])):
                continue
            items.append((str(raw["q"]), [str(i) for i in raw.get("ids") or []] if kind == "answer" else []))
    return items


def fold_of(question: str) -> int:
    """A question's fold, fixed by its text (so a rebuild fits the same model)."""
    return int(hashlib.sha1(question.strip().encode("utf-8")).hexdigest()[-4:], 16) % FOLDS


def search_out_of_fold(retriever, items: list[tuple[str, list[str]]],
                      fit_classifier: Callable[[list[tuple[str, list[str]]]], object] | None = None,
                      rule_answers: Callable[[object], bool] | None = None) -> list[tuple[object, str, bool]]:
    """Each tuning question searched as the bot would search it, with an entry classifier that
    did not learn it: (RetrievalResult, judgement label, whether the fixed rule answers).
    `fit_classifier(questions)`: an entry classifier fitted on the entries and those tuning
    questions; without it, the store's classifier is used for every question.
    `rule_answers(result)`: the fixed rule's decision; without it, the rule never answers."""
    judge, lexicon, embedder = retriever.judge, retriever.lexicon, retriever.embedder
    folds = [fold_of(question) for question, _ in items]
    classifiers = {k: fit_classifier([it for it, f in zip(items, folds) if f != k]) for k in range(FOLDS)} \
        if fit_classifier is not None else {}
    searched = []
    for n, (question, _) in enumerate(items):
        label = assess(normalise_query(question), judge, embedder.query_vector, lexicon.overrides).label
        result = retriever.search(question, k=5, entries=classifiers.get(folds[n]))
        searched.append((result, label, bool(result.hits and rule_answers and rule_answers(result))))
    return searched


def build_answerability(retriever, items: list[tuple[str, list[str]]],
                        fit_classifier: Callable[[list[tuple[str, list[str]]]], object] | None = None,
                        rule_answers: Callable[[object], bool] | None = None) -> Answerability | None:
    """The answerability model, fitted on the tuning questions searched out-of-fold
    (`search_out_of_fold`, which says what the two callables are)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    if len(items) < MIN_QUESTIONS:
        return None
    searched = search_out_of_fold(retriever, items, fit_classifier, rule_answers)
    rows, targets, question_of = [], [], []
    for n, ((result, label, _), (_, ids)) in enumerate(zip(searched, items)):
        for p, hit in enumerate(result.hits[:RANK_DEPTH]):
            rows.append(features(result, label, p))
            targets.append(hit.unit.id in ids)
            question_of.append(n)
    X, y = np.array(rows), np.array(targets, dtype=int)
    if len(set(y.tolist())) < 2:
        return None
    model = LogisticRegression(C=1.0, max_iter=3000)
    # Grouped by question, so a question's rows are never split between fit and test.
    oof = cross_val_predict(model, X, y, cv=GroupKFold(FOLDS), groups=question_of, method="predict_proba")[:, 1]
    model.fit(X, y)
    # The bot decides on retrieval's first match: each question's first row.
    in_order = _rows_of(question_of, len(items))
    first_p = np.array([oof[r[0]] if r else 0.0 for r in in_order])  # no match at all: declined
    first_right = np.array([bool(r) and bool(y[r[0]]) for r in in_order])
    first_rule = np.array([rule for _, _, rule in searched])  # the fixed rule decides on the first match
    answer_at, veto_at = _thresholds(first_p, first_right, np.array([bool(ids) for _, ids in items]), first_rule)
    sure_wrong_below = _sure_wrong_threshold(first_p, first_right, first_rule)
    sure_right_at = _sure_right_threshold(first_p, first_right, first_rule)
    answered = _answered(first_p, first_rule, answer_at, veto_at)
    clarify_at = _clarify_threshold(oof, y, in_order, answered)
    pair_at = _pair_threshold(oof, y, in_order, answered | ~first_rule, clarify_at)
    fitted_on = {"questions": len(items), "examples": int(len(y)), "out_of_fold": fit_classifier is not None,
                 "first_right": int(first_right.sum())}
    log.info("answerability answer_at=%.2f veto_at=%.2f clarify_at=%.2f pair_at=%.2f sure_wrong_below=%.2f "
             "sure_right_at=%.2f on %d questions", answer_at, veto_at, clarify_at, pair_at, sure_wrong_below,
             sure_right_at, len(items))
    return Answerability([float(w) for w in model.coef_[0]], float(model.intercept_[0]), answer_at, clarify_at,
                         fitted_on, veto_at, sure_wrong_below, sure_right_at, pair_at)


def _rows_of(question_of, questions: int) -> list[list[int]]:
    """Per question, its rows in retrieval's order."""
    rows: list[list[int]] = [[] for _ in range(questions)]
    for i, q in enumerate(question_of):
        rows[q].append(i)
    return rows


def _answered(top_p, rule, answer_at: float, veto_at: float):
    """Which questions get an answer: as Answerability.decide decides."""
    return (top_p >= answer_at) | (rule & (top_p >= veto_at))


def _thresholds(top_p, top_right, answerable, rule) -> tuple[float, float]:
    """(answer_at, veto_at) with the least cost: WRONG_COST per wrong answer, 1 per needless
    decline. Per question: the top entry's out-of-fold probability, whether it is right,
    whether any entry is, and whether the fixed rule answers.

    The cost is averaged over the neighbouring pairs (SMOOTHING grid steps each way) before
    the least is taken: the surface is flat and ragged near its minimum, so the raw least
    moved with the last digits of the probabilities (a fresh and an incremental ingest of the
    same knowledge chose 0.67/0.64 and 0.73/0.59). The middle of a good region is stable."""
    grid = np.round(np.arange(0.05, 1.0, 0.01), 2)
    n, h = len(grid), SMOOTHING
    cost = np.zeros((n, n))  # [answer_at, veto_at]
    for i, answer_at in enumerate(grid):
        for j, veto_at in enumerate(grid[:i + 1]):
            answered = _answered(top_p, rule, answer_at, veto_at)
            cost[i, j] = WRONG_COST * np.sum(answered & ~top_right) + np.sum(~answered & answerable)
        cost[i, i + 1:] = cost[i, i]  # a veto above answer_at decides as one at answer_at: full windows by the diagonal
    smoothed = np.full_like(cost, np.inf)
    for i in range(n):
        for j in range(i + 1):
            smoothed[i, j] = cost[max(0, i - h):i + h + 1, max(0, j - h):j + h + 1].mean()
    i, j = np.unravel_index(np.argmin(smoothed), smoothed.shape)  # ties: the lower pair, as before
    return float(grid[i]), float(grid[j])


def _sure_wrong_threshold(first_p, first_right, rule) -> float:
    """The highest probability below which, out-of-fold, at least SURE_WRONG_PRECISION of the
    fixed rule's answers are to a different question (or to one no entry answers): there the
    model may decline them even with ANSWERABILITY=rule. 0 when no such threshold exists."""
    best = 0.0
    for threshold in np.round(np.arange(0.01, 1.0, 0.01), 2):
        declined = rule & (first_p < threshold)
        if declined.any() and np.mean(~first_right[declined]) >= SURE_WRONG_PRECISION:
            best = float(threshold)
    return best


def _sure_right_threshold(first_p, first_right, rule) -> float:
    """The lowest probability from which, out-of-fold, at least SURE_RIGHT_PRECISION of the
    questions the fixed rule declines (at least SURE_MIN of them) are answered by the first
    match: there the model may answer them even with ANSWERABILITY=rule. 1 (never) otherwise."""
    for threshold in np.round(np.arange(0.5, 1.0, 0.01), 2):
        answered = ~rule & (first_p >= threshold)
        if answered.sum() >= SURE_MIN and np.mean(first_right[answered]) >= SURE_RIGHT_PRECISION:
            return float(threshold)
    return 1.0


def _pair_threshold(oof, y, in_order, settled, clarify_at: float) -> float:
    """The lowest sum of the first two probabilities from which, among the questions where a
    choice between them would be offered (not `settled`: answered, or declined by the rule), the
    likelier of the two is acceptable PAIR_PRECISION of the time. NEVER when no sum is."""
    offered = [r[:2] for q, r in enumerate(in_order)
               if len(r) >= 2 and not settled[q] and min(oof[r[0]], oof[r[1]]) >= clarify_at]
    for threshold in np.round(np.arange(0.5, 2.0, 0.05), 2):
        chosen = [max(pair, key=lambda row: oof[row]) for pair in offered if oof[pair[0]] + oof[pair[1]] >= threshold]
        if len(chosen) >= SURE_MIN and np.mean([y[row] for row in chosen]) >= PAIR_PRECISION:
            return float(threshold)
    return NEVER


def _clarify_threshold(oof, y, in_order, answered) -> float:
    """Among the questions not answered, the lowest probability both first entries must reach for
    a choice between them to contain an acceptable entry CLARIFY_PRECISION of the time."""
    pairs = [r[:2] for q, r in enumerate(in_order) if len(r) >= 2 and not answered[q]]
    for threshold in np.arange(0.10, 1.0, 0.01):
        offered = [r for r in pairs if min(oof[r[0]], oof[r[1]]) >= threshold]
        if offered and sum(1 for r in offered if y[r[0]] or y[r[1]]) / len(offered) >= CLARIFY_PRECISION:
            return float(round(threshold, 2))
    return 1.0  # never: no threshold made a choice between two entries reliable
