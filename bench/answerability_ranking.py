"""Does letting the answerability model order the matches help, and where may it overrule the
fixed rule? Tuning questions only.

Every tuning question is searched as ingest searches it (an entry classifier fitted without
its fold, ingest/answerability_build.py). Then, for each round of realistic questions, the
model is fitted on the other rounds and the written questions and tested on that round's
tuning part: deciding on retrieval's first entry with the model fitted on the best two, or on
the best five (what the bot does), against ordering the best five by the model and deciding on
its first (dropped). Also: how often the first
entry is right among the answerable questions, in each order (out-of-fold); and, in
retrieval's order, the outcome when the model declines the rule's answers below a probability.
The held-out part is never read. Run: `.venv/bin/python bench/answerability_ranking.py`
(writes docs/answerability-ranking.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answerability import FEATURES, RANK_DEPTH, features  # noqa: E402
from bot.dialogue import build_engine  # noqa: E402
from bot.eval_answerability import realistic_files  # noqa: E402
from ingest.answerability_build import (  # noqa: E402
    FOLDS, _answered, _rows_of, _thresholds, search_out_of_fold, tuning_questions)
from ingest.entry_classifier_build import fit_entry_classifier, training_examples  # noqa: E402


def searched_out_of_fold(engine, items):
    """As ingest searches them (ingest/answerability_build.py search_out_of_fold)."""
    retriever = engine.answers.retriever
    units = list(retriever.units.values())
    vectors: dict = {}
    return search_out_of_fold(
        retriever, items,
        lambda questions: fit_entry_classifier(*training_examples(units, questions), retriever.embedder, vectors),
        engine.answers.fixed_rule_answers)


def _ranked_rows(question_of, probability, questions: int) -> list[list[int]]:
    """Per question, its rows by probability, best first (the ordering measured here)."""
    return [sorted(r, key=lambda i: -probability[i]) for r in _rows_of(question_of, questions)]


def rows_for(searched, items, depth):
    X, y, question = [], [], []
    for n, ((result, label, _), (_, ids)) in enumerate(zip(searched, items)):
        for p, hit in enumerate(result.hits[:depth]):
            X.append(features(result, label, p))
            y.append(hit.unit.id in ids)
            question.append(n)
    return np.array(X), np.array(y, dtype=int), np.array(question)


def held_round_figures(searched, items, source, depth, rank):
    from sklearn.linear_model import LogisticRegression

    X, y, question = rows_for(searched, items, depth)
    rule = np.array([r for _, _, r in searched])
    answerable = np.array([bool(ids) for _, ids in items])
    figures = {}
    for held in sorted({s for s in source if s != "questions.yaml"}):
        fit_rows = source[question] != held
        p = LogisticRegression(C=1.0, max_iter=3000).fit(X[fit_rows], y[fit_rows]).predict_proba(X)[:, 1]
        # Rows are in retrieval's order; ranked, the model's.
        ranked = _ranked_rows(list(question), p, len(items)) if rank else _rows_of(list(question), len(items))
        top_p = np.array([p[r[0]] if r else 0.0 for r in ranked])
        right = np.array([bool(y[r[0]]) if r else False for r in ranked])
        fitted = source != held
        answer_at, veto_at = _thresholds(top_p[fitted], right[fitted], answerable[fitted], rule[fitted])
        answered = _answered(top_p, rule, answer_at, veto_at)
        test = ~fitted
        acceptable = ((answered & right) | (~answered & ~answerable))[test].mean()
        wrong, needless = (answered & ~right)[test].mean(), (~answered & answerable)[test].mean()
        figures[held] = (acceptable, wrong, needless)
    return figures


def out_of_fold(searched, items):
    """(probability, acceptable, question) of every row of the best RANK_DEPTH matches, out-of-fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    X, y, question = rows_for(searched, items, RANK_DEPTH)
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=3000), X, y, cv=GroupKFold(FOLDS), groups=question,
                          method="predict_proba")[:, 1]
    return p, y, question


def first_right(p, y, question, items):
    ranked = _ranked_rows(list(question), p, len(items))
    answerable = [n for n, (_, ids) in enumerate(items) if ids and ranked[n]]
    in_retrieval_order = np.mean([y[min(ranked[n])] for n in answerable])  # rows are in retrieval's order
    in_model_order = np.mean([y[ranked[n][0]] for n in answerable])
    return len(answerable), in_retrieval_order, in_model_order


def rule_overruled(p, y, question, searched, items, source):
    """Rows: (threshold, precision of the declines, figures for all / written / realistic)."""
    first = {}
    for i, q in enumerate(question):
        first.setdefault(q, i)
    n = len(items)
    first_p = np.array([p[first[q]] if q in first else 0.0 for q in range(n)])
    right = np.array([bool(y[first[q]]) if q in first else False for q in range(n)])
    rule = np.array([r for _, _, r in searched])
    answerable = np.array([bool(ids) for _, ids in items])
    written = source == "questions.yaml"
    rows = []
    for threshold in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        answered = rule & (first_p >= threshold)
        declined = rule & ~answered
        precision = np.mean(~right[declined]) if declined.any() else float("nan")

        def figures(mask):
            k = mask.sum()
            acceptable = (((answered & right) | (~answered & ~answerable)) & mask).sum() / k
            return f"{acceptable:.3f} / {(answered & ~right & mask).sum() / k:.3f} / {(~answered & answerable & mask).sum() / k:.3f}"

        rows.append(f"| {threshold:.2f} | {precision:.2f} | {figures(np.ones(n, dtype=bool))} | {figures(written)} | "
                    f"{figures(~written)} |")
    return rows


def main() -> int:
    engine = build_engine()
    knowledge = Path(engine.answers.settings.knowledge_dir)
    items = tuning_questions(knowledge)
    where = {}
    for path in [knowledge / "eval" / "questions.yaml", *realistic_files(knowledge)]:
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if isinstance(raw, dict) and "q" in raw:
                where.setdefault(str(raw["q"]), path.name)
    source = np.array([where[q] for q, _ in items])
    searched = searched_out_of_fold(engine, items)
    lines = ["# Answerability: the model ordering the matches (tuning questions only)", "",
             "Generated by `python bench/answerability_ranking.py`. The model is fitted on the other rounds",
             "and the written questions, and tested on one round's tuning part; acceptable / wrong answers /",
             f"needless declines, and the cost (2 × wrong + needless). Features: {len(FEATURES)}.", "",
             "| round tested | fitted on the best two, retrieval's first | on the best five, retrieval's first "
             "(the bot) | on the best five, the model's first |", "| --- | --- | --- | --- |"]
    before = held_round_figures(searched, items, source, 2, rank=False)
    shipped = held_round_figures(searched, items, source, RANK_DEPTH, rank=False)
    after = held_round_figures(searched, items, source, RANK_DEPTH, rank=True)

    def cell(f):
        return f"{f[0]:.3f} / {f[1]:.3f} / {f[2]:.3f} (cost {2 * f[1] + f[2]:.3f})"

    for held in before:
        lines.append(f"| {held} ({int((source == held).sum())} questions) | {cell(before[held])} | {cell(shipped[held])} "
                     f"| {cell(after[held])} |")
    p, y, question = out_of_fold(searched, items)
    n, retrieval_order, model_order = first_right(p, y, question, items)
    lines += ["", f"First entry right among {n} answerable tuning questions (out-of-fold): "
                  f"{retrieval_order:.3f} in retrieval's order, {model_order:.3f} in the model's order.", ""]
    lines += ["## With the rule: the model declines its answers below a probability", "",
              "Out-of-fold, retrieval's order; acceptable / wrong / needless declines. The store uses the highest",
              "threshold whose declines are at least 95 % wrong answers (ingest/answerability_build.py).", "",
              "| declined below | share of the declined that were wrong | all | written | realistic |",
              "| --- | --- | --- | --- | --- |", *rule_overruled(p, y, question, searched, items, source), ""]
    (ROOT / "docs" / "answerability-ranking.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
