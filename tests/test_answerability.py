"""The answerability decision (ANSWERABILITY=model): the fixed rule's answer stands only when the
model finds it likely enough, the model may answer on its own when it is sure, and the model is
fitted on evidence that looks like a new customer's question (an entry classifier that never saw it)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bot.answerability import FEATURES, NEVER, Answerability, features
from bot.entry_classifier import NONE_ID
from bot.lexicon import Lexicon
from ingest.answerability_build import (FOLDS, SURE_RIGHT_PRECISION, SURE_WRONG_PRECISION, WRONG_COST,
                                        _pair_threshold, _sure_right_threshold, _sure_wrong_threshold, _thresholds,
                                        build_answerability, fold_of)


def _hit(uid: str, dense: float = 0.7, score: float = 0.03):
    return SimpleNamespace(unit=SimpleNamespace(id=uid, source_type="faq"), dense=dense, question_dense=dense,
                           lexical=1.0, dense_rank=1, lexical_rank=1, score=score)


def _result(*uids: str, entry_scores: dict[str, float] | None = None):
    return SimpleNamespace(hits=[_hit(u, score=0.03 - 0.001 * i) for i, u in enumerate(uids)],
                           entry_scores=entry_scores or {})


def _model_saying(probability: float, **thresholds) -> Answerability:
    """A model that gives every entry `probability`."""
    bias = math.log(probability / (1 - probability))
    return Answerability([0.0] * len(FEATURES), bias, **{"answer_at": 0.9, "clarify_at": 1.0, "veto_at": 0.4,
                                                          **thresholds})


@pytest.mark.parametrize("probability, rule_answers, action", [
    (0.3, True, "decline"),   # the rule would answer, the model finds the entry unlikely: vetoed
    (0.5, True, "answer"),    # likely enough: the rule's answer stands
    (0.5, False, "decline"),  # the rule declines and the model is not sure enough on its own
    (0.95, False, "answer"),  # the model is sure on its own
])
def test_the_rule_answers_only_what_the_model_finds_likely(probability, rule_answers, action):
    decision = _model_saying(probability).decide(_result("a", "b"), "domain", rule_answers)
    assert decision.action == action


def test_two_likely_entries_are_offered_as_a_choice_when_neither_is_sure():
    decision = _model_saying(0.5, clarify_at=0.45, veto_at=0.6).decide(_result("a", "b"), "domain", rule_answers=True)
    assert decision.action == "clarify"
    assert [h.unit.id for h in decision.options] == ["a", "b"]


def test_no_choice_is_offered_between_entries_that_are_not_relevant():
    """"你喜欢吃什么" is declined, not answered with a choice of two debt topics."""
    decision = _model_saying(0.5, clarify_at=0.45, veto_at=0.6).decide(_result("a", "b"), "domain", rule_answers=False)
    assert decision.action == "decline"


def _model_trusting_the_classifier() -> Answerability:
    """Likely exactly when the classifier names the entry first."""
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("entry_first")] = 4.0
    return Answerability(weights, -2.0, answer_at=0.8, clarify_at=1.0, veto_at=0.8)


def test_the_decision_is_about_retrievals_first_match_only():
    """A likely third entry never lets the bot answer with the first (reordering by the model
    was measured and dropped: docs/answerability-ranking.md)."""
    result = _result("a", "b", "c", entry_scores={"a": -0.5, "b": -0.2, "c": 0.4})  # the words name c
    decision = _model_trusting_the_classifier().decide(result, "domain")
    assert decision.action == "decline" and decision.probability < 0.5  # a's probability, not c's


@pytest.mark.parametrize("pair_at, action, first", [
    (0.95, "answer", "b"),   # together likely enough: the likelier (b) answers, a is named in a line
    (1.05, "clarify", "a"),  # not enough: the person is asked which is meant, in retrieval's order
])
def test_two_close_entries_are_answered_from_the_likelier_when_together_they_are_likely(pair_at, action, first):
    model = _model_trusting_the_classifier()  # a: 0.12, b (the classifier's first): 0.88
    model.answer_at, model.clarify_at, model.pair_at = 0.9, 0.1, pair_at
    decision = model.decide(_result("a", "b", entry_scores={"a": -0.5, "b": 0.4}), "domain", rule_answers=True)
    assert decision.action == action
    assert [h.unit.id for h in decision.options] == [first, "a" if first == "b" else "b"]


def test_a_store_fitted_before_pair_answers_never_makes_one():
    raw = _model_saying(0.5).to_bytes().decode("utf-8").replace('"pair_at": 3.0, ', "")
    assert '"pair_at"' not in raw and Answerability.from_bytes(raw.encode("utf-8")).pair_at > 2.0


def test_the_pair_threshold_is_where_the_likelier_of_two_is_mostly_right():
    # 20 questions offered a choice (not settled); the first two rows' out-of-fold probabilities.
    # Sum 1.2: the likelier right 9 times in 10; sum 0.6: 5 in 10.
    oof = np.array([0.9, 0.3] * 10 + [0.4, 0.2] * 10)
    y = np.array([1, 0] * 9 + [0, 1] + [1, 0, 0, 1] * 5)
    in_order = [[2 * q, 2 * q + 1] for q in range(20)]
    assert _pair_threshold(oof, y, in_order, np.zeros(20, dtype=bool), clarify_at=0.1) == pytest.approx(0.65)
    assert _pair_threshold(oof, y, in_order, np.ones(20, dtype=bool), clarify_at=0.1) == NEVER  # all settled


def test_the_classifiers_view_of_each_entry_is_evidence():
    result = _result("a", "b", entry_scores={"a": 1.0, "b": -0.5, "c": 0.2})
    named = dict(zip(FEATURES, features(result, "domain", 0)))
    other = dict(zip(FEATURES, features(result, "domain", 1)))
    assert (named["entry_score"], named["entry_first"], named["entry_margin"]) == (1.0, 1.0, 1.0 - 0.2)
    assert (other["entry_score"], other["entry_first"], other["entry_margin"]) == (-0.5, 0.0, -1.5)
    unknown = dict(zip(FEATURES, features(_result("a", "b"), "domain", 0)))  # a store without a classifier
    assert unknown["entry_first"] == 0.0


def test_looking_like_a_question_no_entry_answers_is_evidence_too():
    """The none class is compared with the entry (none_margin) and with the best entry of all
    (answerable_margin), and is never counted as another entry."""
    result = _result("a", "b", entry_scores={"a": 0.2, "b": 0.4, NONE_ID: 0.9})
    named = dict(zip(FEATURES, features(result, "domain", 0)))
    assert named["entry_margin"] == pytest.approx(0.2 - 0.4)  # b, not the none class
    assert named["none_margin"] == pytest.approx(0.2 - 0.9)
    assert named["answerable_margin"] == pytest.approx(0.4 - 0.9)


@pytest.mark.parametrize("probability, rule_answers, overruled", [
    (0.05, True, True),    # the rule answers, the model is nearly sure that is a different question
    (0.2, True, False),    # unlikely, but not that sure: the rule stands
    (0.9, False, True),    # the rule declines, the model is nearly sure the first match answers it
    (0.7, False, False),   # likely, but not that sure: the rule's decline stands
])
def test_with_the_rule_the_model_overrules_it_only_when_nearly_sure(probability, rule_answers, overruled):
    model = _model_saying(probability, sure_wrong_below=0.1, sure_right_at=0.85)
    assert model.overrules(_result("a", "b"), "domain", rule_answers) == overruled


def test_the_rules_overruling_thresholds_survive_publishing_and_older_stores_never_overrule():
    model = _model_saying(0.5, sure_wrong_below=0.1, sure_right_at=0.85)
    again = Answerability.from_bytes(model.to_bytes())
    assert (again.sure_wrong_below, again.sure_right_at) == (0.1, 0.85)
    older = model.to_bytes().decode("utf-8").replace('"sure_wrong_below": 0.1, "sure_right_at": 0.85, ', "")
    older_model = Answerability.from_bytes(older.encode("utf-8"))
    assert (older_model.sure_wrong_below, older_model.sure_right_at) == (0.0, 1.0)


def test_a_decline_of_the_rule_becomes_an_answer_only_where_nearly_all_such_answers_are_right():
    # Questions the rule declines: from 0.9 nine in ten right, at 0.8 half, below mostly wrong.
    first_p = np.array([0.95] * 10 + [0.9] * 10 + [0.8] * 10 + [0.3] * 10)
    right = np.array([True] * 9 + [False] + [True] * 9 + [False] + [True, False] * 5 + [False] * 10)
    threshold = _sure_right_threshold(first_p, right, np.zeros(40, dtype=bool))
    assert 0.8 < threshold <= 0.9
    assert SURE_RIGHT_PRECISION >= 0.9
    # Questions the rule answers are not counted; too few to tell: never.
    assert _sure_right_threshold(first_p, right, np.ones(40, dtype=bool)) == 1.0
    assert _sure_right_threshold(np.full(5, 0.99), np.ones(5, dtype=bool), np.zeros(5, dtype=bool)) == 1.0


def test_the_rule_is_overruled_only_where_nearly_all_such_answers_are_wrong():
    # Thirty answers of the rule: below 0.2 all wrong, at 0.25 two right in four, above right.
    first_p = np.array([0.05] * 10 + [0.15] * 6 + [0.25] * 4 + [0.6] * 10)
    right = np.array([False] * 16 + [True, True, False, False] + [True] * 10)
    threshold = _sure_wrong_threshold(first_p, right, np.ones(30, dtype=bool))
    assert 0.15 < threshold <= 0.25  # the 16 wrong answers, not the band with a right one in it
    assert SURE_WRONG_PRECISION >= 0.9
    # Answers the rule does not give are not counted, and no band that pure: never overruled.
    assert _sure_wrong_threshold(first_p, right, np.zeros(30, dtype=bool)) == 0.0
    assert _sure_wrong_threshold(np.full(4, 0.1), np.array([True, False, True, False]), np.ones(4, dtype=bool)) == 0.0


def test_a_model_from_an_older_store_without_a_veto_never_vetoes():
    model = _model_saying(0.3)
    raw = model.to_bytes().decode("utf-8").replace('"veto_at": 0.4, ', "")
    assert Answerability.from_bytes(raw.encode("utf-8")).veto_at == 1.0
    assert Answerability.from_bytes(model.to_bytes()).veto_at == 0.4


def test_the_thresholds_veto_the_rules_stretches_and_keep_its_good_answers():
    # Ten questions the rule answers: the model's likely ones are right, its unlikely ones wrong.
    top_p = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.3, 0.25, 0.2, 0.15, 0.1])
    right = top_p > 0.5
    answer_at, veto_at = _thresholds(top_p, right, right.copy(), np.ones(10, dtype=bool))
    assert 0.3 < veto_at <= 0.55  # the five stretches are declined, the five good answers kept
    answered = top_p >= veto_at
    assert (answered == right).all()


def test_a_wrong_answer_costs_more_than_a_needless_decline():
    # One question the rule answers rightly and two it answers wrongly, all at the same probability:
    # answering all three costs 2 x WRONG_COST, declining them costs 1, so they are declined.
    top_p, right = np.array([0.6, 0.6, 0.6]), np.array([True, False, False])
    assert WRONG_COST > 0.5
    answer_at, veto_at = _thresholds(top_p, right, np.array([True, False, False]), np.ones(3, dtype=bool))
    assert veto_at > 0.6 and answer_at > 0.6


class _Retriever:
    """Records which entry classifier each question was searched with."""

    judge = None
    lexicon = Lexicon()
    embedder = SimpleNamespace(query_vector=None)  # no judgement model: never called

    def __init__(self):
        self.searched_with: dict[str, object] = {}

    def search(self, question, k=5, entries=None):
        self.searched_with[question] = entries
        right = "a" if "甲" in question else "b"
        return _result(right, "a" if right == "b" else "b")


def test_each_tuning_question_is_searched_with_a_classifier_that_did_not_learn_it():
    items = [(f"问题{n}{'甲' if n % 2 else '乙'}", ["a"] if n % 2 else ["b"]) for n in range(60)]
    retriever = _Retriever()
    fitted = []

    def fit_classifier(questions):
        learned = frozenset(q for q, _ in questions)
        fitted.append(learned)
        return learned

    model = build_answerability(retriever, items, fit_classifier, rule_answers=lambda result: True)
    assert model is not None and model.fitted_on["out_of_fold"]
    assert len(fitted) == FOLDS
    for question, _ in items:
        learned = retriever.searched_with[question]
        assert question not in learned  # never its own answer key
        assert len(learned) > len(items) // 2  # but the other folds' questions
    assert len({fold_of(q) for q, _ in items}) == FOLDS
