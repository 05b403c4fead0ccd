"""Answer, ask which of two entries is meant, or decline: a decision of its own.

Made from evidence retrieval already has about its best matches: the dense and
lexical legs' agreement, the match to the entry's own paraphrased questions
rather than its answer text, the margin to the runner-up, the judgement's
label, and the entry classifier's view (does the question's own wording name
this entry, by how much more than any other, and than the questions no entry answers). A small logistic model over
those features says how likely the top entry answers the question; it is
fitted at ingest on the tuning part of the labelled question sets
(ingest/answerability_build.py), and its thresholds are chosen there so that a
confident answer to a different question, which costs more than an honest
decline, is rare.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from bot.entry_classifier import NONE_ID

FEATURES = ("dense", "question_dense", "lexical_share", "both_legs_first", "score_margin", "dense_margin",
            "product_label", "domain_label", "entry_score", "entry_first", "entry_margin", "none_margin",
            "answerable_margin")
# How many of retrieval's best matches each tuning question gives the fit as examples
# (ingest/answerability_build.py; the bot decides on the first).
RANK_DEPTH = 5
NEVER = 3.0  # a threshold no probability (or sum of two) reaches
# An entry the classifier has no score for (a store without one) counts as not recognised.
NO_ENTRY_SCORE = -1.0


def features(result, label: str, position: int = 0) -> list[float]:
    """The evidence for hit `position` of a RetrievalResult answering the question."""
    hits = result.hits
    if len(hits) <= position:
        return [0.0] * len(FEATURES)
    hit = hits[position]
    others = [h for i, h in enumerate(hits) if i != position]
    best_lexical = max((h.lexical for h in hits), default=0.0) or 1.0
    next_score = max((h.score for h in others), default=0.0)
    next_dense = max((h.dense for h in others), default=0.0)
    scores = result.entry_scores
    own = scores.get(hit.unit.id, NO_ENTRY_SCORE)
    best_other = max((v for uid, v in scores.items() if uid not in (hit.unit.id, NONE_ID)), default=NO_ENTRY_SCORE)
    # How much more the entry is recognised than "a question no entry answers".
    none = scores.get(NONE_ID, NO_ENTRY_SCORE)
    best_entry = max((v for uid, v in scores.items() if uid != NONE_ID), default=NO_ENTRY_SCORE)
    return [
        hit.dense,
        hit.question_dense,
        hit.lexical / best_lexical,
        1.0 if hit.dense_rank == 1 and hit.lexical_rank == 1 else 0.0,
        (hit.score - next_score) / hit.score if hit.score else 0.0,
        hit.dense - next_dense,
        1.0 if label == "product" else 0.0,
        1.0 if label == "domain" else 0.0,
        own,
        1.0 if scores and own > best_other else 0.0,
        own - best_other,
        own - none,
        best_entry - none,  # some entry answers it, whichever (two close entries split the classifier)
    ]


@dataclass(frozen=True)
class Decision:
    action: str  # answer | clarify | decline
    probability: float = 0.0
    options: tuple = ()  # the two hits to choose between (clarify), or to answer from and name in a line


@dataclass
class Answerability:
    weights: list[float]
    bias: float
    answer_at: float  # answer when the top entry is at least this likely to be right
    clarify_at: float  # else offer the top two when each is at least this likely
    fitted_on: dict = field(default_factory=dict)
    # The fixed rule's answer (bot/answer.py) stands when the model gives it at least this:
    # the rule knows things the features don't (usage entries, stage words), the model
    # vetoes its stretches.
    veto_at: float = 1.0
    # With ANSWERABILITY=rule, the rule's answer is declined only below this, where the model
    # is nearly sure it answers a different question, and the rule's decline becomes an answer
    # from `sure_right_at`, where the model is nearly sure it answers it (a store fitted before
    # these existed: 0 and 1, never).
    sure_wrong_below: float = 0.0
    sure_right_at: float = 1.0
    # Where a choice between the first two would be offered, and their probabilities add up to
    # at least this, the likelier one is answered and the other named in one line: out-of-fold,
    # the likelier is then right most of the time and the person sees both (never: above 2).
    pair_at: float = NEVER

    def probability(self, values: list[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, values))
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def likelihood(self, result, label: str, position: int) -> float:
        return self.probability(features(result, label, position))

    def as_likely_as_first(self, result, label: str, hit) -> bool:
        """Is `hit` (one of result.hits) at least as likely to answer the question as the first match?"""
        return self.likelihood(result, label, result.hits.index(hit)) >= self.likelihood(result, label, 0)

    def overrules(self, result, label: str, rule_answers: bool) -> bool:
        """With ANSWERABILITY=rule: the model is nearly sure the rule is wrong about the first match."""
        if not result.hits:
            return False
        probability = self.likelihood(result, label, 0)
        return probability < self.sure_wrong_below if rule_answers else probability >= self.sure_right_at

    def decide(self, result, label: str, rule_answers: bool = False) -> Decision:
        if not result.hits:
            return Decision("decline")
        top = self.likelihood(result, label, 0)
        if top >= self.answer_at or (rule_answers and top >= self.veto_at):
            return Decision("answer", top)
        if len(result.hits) > 1:
            second = self.likelihood(result, label, 1)
            # A choice only between relevant entries (the fixed rule would answer): never two
            # debt topics offered for "你喜欢吃什么".
            if rule_answers and min(top, second) >= self.clarify_at and result.hits[1].unit.source_type == "faq":
                first, other = result.hits[0], result.hits[1]
                if top + second >= self.pair_at:
                    # options: the entry to answer from, then the one named in a line.
                    return Decision("answer", max(top, second), (first, other) if top >= second else (other, first))
                return Decision("clarify", top, (first, other))
        return Decision("decline", top)

    def to_bytes(self) -> bytes:
        return json.dumps({"features": FEATURES, "weights": self.weights, "bias": self.bias,
                           "answer_at": self.answer_at, "clarify_at": self.clarify_at, "veto_at": self.veto_at,
                           "sure_wrong_below": self.sure_wrong_below, "sure_right_at": self.sure_right_at,
                           "pair_at": self.pair_at,
                           "fitted_on": self.fitted_on},
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Answerability":
        raw = json.loads(data.decode("utf-8"))
        if tuple(raw["features"]) != FEATURES:
            raise ValueError("answerability features differ from this program's: re-run ingest")
        return cls(raw["weights"], raw["bias"], raw["answer_at"], raw["clarify_at"], raw.get("fitted_on", {}),
                   raw.get("veto_at", 1.0), raw.get("sure_wrong_below", 0.0), raw.get("sure_right_at", 1.0),
                   raw.get("pair_at", NEVER))
