"""The runtime judgement: what kind of message is this, and who is speaking.

A data-built model (models.py) gives a probability per label; per-label
offsets calibrated on the tuning messages at ingest make the costly mistakes
rarer (a missed crisis is the worst error, a victim lectured as an evader the
next). A few high-precision keyword rules from knowledge/lexicon.yaml override
the model; each has a positive and a negative test.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field

import numpy as np

from bot.judgement.features import message_features
from bot.judgement.labels import LABELS
from bot.judgement.models import MODELS, CrisisDetector
from bot.textnorm import has_domain_word, names_a_debt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judgement:
    label: str
    confidence: float = 1.0
    rule: str | None = None  # the lexicon override that decided, if any
    speaker: str | None = None  # "relative" | "identity_theft" | None (the borrower)
    # Not labelled a crisis, but close enough that the crisis lines come first anyway
    # (one line before the answer): the crisis detector calibrated at ingest flags it.
    crisis_risk: bool = False
    # The evasion words matched ("不想还", "躲催收") but the model hears a victim, someone
    # threatened or a relative: answered as that, with one line at the end that the bot
    # does not help anyone avoid repaying (safe for both readings).
    evasion_words: bool = False
    scores: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Overrides:
    """Compiled override patterns by name (see knowledge/lexicon.yaml, judgement_overrides)."""

    patterns: dict[str, re.Pattern] = field(default_factory=dict)

    def match(self, name: str, text: str) -> bool:
        pattern = self.patterns.get(name)
        return bool(pattern and pattern.search(text))


# The model's crisis label stands only at this probability; below it (and for any crisis
# only the offsets made), the crisis risk puts the lines first instead.
CRISIS_SURE = 0.5
# Labels the evasion words do not replace when the model itself chose them: read both ways.
EVASION_WORDS_YIELD_TO = ("victim", "threat", "relative")
# Replies that set the message's question aside (ask what is meant, chat, decline as off-topic)
# and the labels whose replies answer it: an offset alone does not move a message from the
# second kind to the first.
SETS_QUESTION_ASIDE = ("vague", "smalltalk", "out_of_scope")
ANSWERED_AS_ASKED = ("product", "domain", "distress", "victim", "relative", "threat")
# Labels the distress words may replace: never crisis, threat, evasion or relative.
DISTRESS_OVERRIDABLE = ("victim", "domain", "product", "vague", "smalltalk", "out_of_scope")


class Judge:
    def __init__(self, model, offsets: np.ndarray, overrides: Overrides | None = None,
                 crisis_detector: CrisisDetector | None = None, legacy_risk_offsets: np.ndarray | None = None) -> None:
        self.model = model
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.overrides = overrides or Overrides()
        self.crisis_detector = crisis_detector
        # A model published before the crisis detector (judgement-5) flagged the crisis risk
        # with a second set of offsets: still used until the next ingest replaces it.
        self.legacy_risk_offsets = legacy_risk_offsets

    # --- decision -------------------------------------------------------------------
    def decide(self, probabilities: np.ndarray, excluded: tuple[str, ...] = ()) -> int:
        """The label with the offsets applied; `excluded` labels are never chosen."""
        logp = np.log(np.maximum(probabilities, 1e-9)) + self.offsets
        logp[[LABELS.index(label) for label in excluded]] = -np.inf
        return int(np.argmax(logp))

    def at_risk(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray], probabilities: np.ndarray) -> bool:
        """Possibly a crisis (the crisis lines come first), whatever the label."""
        if self.crisis_detector is not None:
            return self.crisis_detector.flags(vector, ngrams)
        if self.legacy_risk_offsets is not None:
            logp = np.log(np.maximum(probabilities, 1e-9)) + self.legacy_risk_offsets
            return LABELS[int(np.argmax(logp))] == "crisis"
        return False

    def judge(self, normalised: str, vector: np.ndarray) -> Judgement:
        vector = np.asarray(vector, dtype=np.float32)
        features = message_features(normalised)
        probabilities = self.model.probabilities(vector, features)
        scores = {label: round(float(p), 4) for label, p in zip(LABELS, probabilities)}
        label = LABELS[self.decide(probabilities)]
        crisis = LABELS.index("crisis")
        if label == "crisis" and (int(np.argmax(probabilities)) != crisis or probabilities[crisis] < CRISIS_SURE or (
                self.crisis_detector is not None and not self.at_risk(vector, features, probabilities))):
            # A crisis label is the model's own call, and the crisis detector's too ("hb今天最后一天
            # 晚上12点前还就行吧" is a question to it); short of both, the crisis risk puts the lines
            # first and the message is answered as what it most likely is besides.
            label = LABELS[self.decide(probabilities, ("crisis",))]
            possible_crisis, excluded = True, ("crisis",)
        else:
            possible_crisis, excluded = False, ()
        if label == "relative" and self.overrides.patterns.get("someone_else") is not None \
                and not self.overrides.match("someone_else", normalised):
            # A relative names whom the debt is about; "欠了二十万网贷 彻底还不上了" is the borrower.
            excluded = ("relative", "crisis")
            label = LABELS[self.decide(probabilities, excluded)]
        # The model's own call among the labels still open, before the offsets.
        heard = LABELS[int(np.argmax(np.where(np.isin(LABELS, excluded), -np.inf, probabilities)))]
        if label in SETS_QUESTION_ASIDE and heard in ANSWERED_AS_ASKED:
            # The offsets guard the costly mistakes; they are not meant to turn a question the model hears
            # ("花呗最后一天几点截止": product 0.53, vague 0.27) into a reply that asks it back.
            # (ingest/judgement_build.py fits them without this step.)
            label = heard
        rule = None
        risk_from_override = False
        text = normalised
        if self.overrides.match("crisis", text):
            label, rule = "crisis", "crisis"
        speaker = None
        if self.overrides.match("identity_theft", text):
            speaker = "identity_theft"
            if label in ("evasion", "domain", "product", "vague"):
                # "有人冒用我的身份借了花呗" is a victim, whatever the model heard in 冒用.
                label, rule = "victim", rule or "identity_theft"
        elif label == "relative":
            speaker = "relative"
        if label in DISTRESS_OVERRIDABLE and self.overrides.match("distress", text):
            label, rule = "distress", "distress"
        if label == "crisis" and rule is None and self.overrides.match("out_of_scope", text) \
                and not has_domain_word(text):
            # "写一首诗" with the model hearing a crisis: answered as what it says it is, with the
            # crisis lines first all the same (a crisis risk, see answer.py).
            label, rule, risk_from_override = "out_of_scope", "out_of_scope", True
        evasion_words = False
        if label != "crisis" and speaker != "identity_theft" and self.overrides.match("evasion", text):
            if speaker == "relative" or (label in EVASION_WORDS_YIELD_TO and label == heard):
                # "有人发朋友圈说我是老赖": the model hears a victim in words an evader would use.
                evasion_words = True
            elif label in EVASION_WORDS_YIELD_TO and heard in EVASION_WORDS_YIELD_TO:
                # The model hears a threat, the victim offset made it a victim ("催收威胁我说不想还就
                # 上门打我"): someone wronged either way, and the model's own call is the reply.
                label, evasion_words = heard, True
            else:
                label, rule = "evasion", "evasion"
        elif label != "crisis" and self.overrides.match("out_of_scope", text) and not has_domain_word(text):
            label, rule = "out_of_scope", "out_of_scope"
        elif label == "out_of_scope" and names_a_debt(text):
            label = "product"  # names 花呗, 借呗, 征信...: about the product, not about something else
        risk = label != "crisis" and (possible_crisis or risk_from_override or self.at_risk(vector, features, probabilities))
        return Judgement(label, scores.get(label, 0.0), rule, speaker, risk, evasion_words, scores)

    # --- persistence (published with each store version) ------------------------------
    def to_bytes(self) -> bytes:
        arrays = {f"model_{k}": v for k, v in self.model.to_arrays().items()}
        buffer = io.BytesIO()
        if self.crisis_detector is not None:
            arrays.update({f"crisis_{k}": v for k, v in self.crisis_detector.to_arrays().items()})
        np.savez_compressed(buffer, kind=np.array(self.model.kind), labels=np.array(LABELS),
                            offsets=self.offsets, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, overrides: Overrides | None = None) -> "Judge":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            labels = tuple(str(x) for x in arrays["labels"])
            if labels != LABELS:
                raise ValueError(f"judgement labels {labels} differ from this program's {LABELS}: re-run ingest")
            kind = str(arrays["kind"])
            model_arrays = {k[len("model_"):]: arrays[k] for k in arrays.files if k.startswith("model_")}
            model = MODELS[kind].from_arrays(model_arrays)
            detector_arrays = {k[len("crisis_"):]: arrays[k] for k in arrays.files if k.startswith("crisis_")}
            detector = CrisisDetector.from_arrays(detector_arrays) if detector_arrays else None
            legacy = np.asarray(arrays["risk_offsets"], dtype=np.float64) \
                if detector is None and "risk_offsets" in arrays.files else None
            if legacy is not None:
                log.warning("the judgement model predates the crisis detector: re-run `python -m ingest`")
            return cls(model, arrays["offsets"], overrides, detector, legacy)

