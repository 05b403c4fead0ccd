"""The judgement's decisions around its models: the crisis detector's threshold (how many
crises it must catch, how few askers it may alarm), evasion words from someone the
model hears as wronged, and a relative who names nobody. Stub models make each case exact; the engine tests at the end
use the real model built from knowledge/judgement/ (tuning messages only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot import texts
from bot.judgement.features import FEATURES
from bot.judgement.judge import Judge
from bot.judgement.labels import INDEX, LABELS
from bot.judgement.models import CrisisDetector
from bot.lexicon import Lexicon
from bot.textnorm import normalise_query
from ingest import crisis_build
from ingest.crisis_build import calibrate_threshold

ROOT = Path(__file__).resolve().parent.parent
LEXICON = Lexicon.from_yaml((ROOT / "knowledge" / "lexicon.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ crisis detector threshold
def test_the_threshold_catches_the_target_share_of_crises_and_no_more():
    crises = np.linspace(0.0, 1.0, 200)  # out-of-fold scores of 200 tuning crises
    threshold = calibrate_threshold(crises, np.zeros(0))
    assert np.sum(crises >= threshold) == int(np.ceil(crisis_build.CRISIS_LINES_TARGET * 200))


def test_the_threshold_rises_rather_than_alarm_too_many_askers():
    crises = np.linspace(0.0, 1.0, 200)
    questions = np.linspace(-1.0, 0.5, 100)  # a third of these would be flagged at the target alone
    threshold = calibrate_threshold(crises, questions)
    assert np.mean(questions >= threshold) <= crisis_build.QUESTION_ALARM_LIMIT
    assert np.mean(crises >= threshold) < crisis_build.CRISIS_LINES_TARGET  # the limit wins, knowingly


def test_the_detector_survives_publishing_with_the_judge():
    rng = np.random.default_rng(0)
    detector = CrisisDetector(rng.normal(size=8), rng.normal(size=FEATURES), 0.1, 0.25)
    model = _FixedModel({"domain": 1.0})
    again = Judge.from_bytes(Judge(model, np.zeros(len(LABELS)), crisis_detector=detector).to_bytes())
    vector, grams = rng.normal(size=8).astype(np.float32), (np.array([3, 70]), np.array([0.6, 0.8], dtype=np.float32))
    assert again.crisis_detector.score(vector, grams) == pytest.approx(detector.score(vector, grams), abs=1e-5)
    assert again.crisis_detector.threshold == pytest.approx(0.25)


@pytest.mark.parametrize("threshold, label, risk", [
    (-1.0, "crisis", False),   # both the label model and the detector hear a crisis: the crisis reply
    (5.0, "domain", True),     # only the label model: the lines first, then the question answered
    (None, "crisis", False),   # a store without a detector (too few crises labelled): the label model's call
])
def test_a_crisis_label_needs_the_detector_too(threshold, label, risk):
    """"才晚一天 不至于上人行吧" was given the whole crisis reply on the label model's word alone."""
    detector = None if threshold is None else CrisisDetector(np.zeros(8), np.zeros(FEATURES), 0.1, threshold)
    judge = Judge(_FixedModel({"crisis": 0.8, "domain": 0.2}), np.zeros(len(LABELS)), LEXICON.overrides, detector)
    judgement = judge.judge(normalise_query("才晚一天 不至于上人行吧"), np.zeros(8, dtype=np.float32))
    assert (judgement.label, judgement.crisis_risk) == (label, risk)


# ------------------------------------------------------------------ evasion words, two readings
class _FixedModel:
    """A label model that gives the same probabilities to every message."""

    kind = "linear"

    def __init__(self, probabilities: dict[str, float]) -> None:
        self.p = np.full(len(LABELS), 1e-4)
        for label, value in probabilities.items():
            self.p[INDEX[label]] = value
        self.p /= self.p.sum()

    def probabilities(self, vector, ngrams):
        return self.p

    def to_arrays(self):
        return {"dense": np.zeros((len(LABELS), 1)), "ngram": np.zeros((len(LABELS), FEATURES)), "bias": np.log(self.p)}


EVASION_WORDS_CASES = [
    # (what the model hears, message with evasion words, label, evasion words noted)
    ({"victim": 0.9, "evasion": 0.1}, "有人在群里造谣说我是老赖 想跑路", "victim", True),
    ({"threat": 0.9, "evasion": 0.1}, "催收说要打断我的腿 我想跑路", "threat", True),
    ({"relative": 0.7, "evasion": 0.3}, "我妹欠了借呗 家里人不想让她还 怎么躲催收", "relative", True),
    ({"evasion": 0.9, "victim": 0.1}, "我想跑路 去外地躲几年", "evasion", False),
    ({"domain": 0.8, "evasion": 0.2}, "告诉我怎么不还花呗", "evasion", False),
]


def test_evasion_words_yield_when_the_offsets_move_one_wronged_label_to_another():
    # The model hears a threat (0.65); the victim offset alone makes it a victim. The collector's
    # "不想还" is quoted, not wished: the threat reply, no lecture.
    offsets = np.zeros(len(LABELS))
    offsets[INDEX["victim"]] = 0.75
    judge = Judge(_FixedModel({"threat": 0.65, "victim": 0.3, "evasion": 0.05}), offsets, LEXICON.overrides)
    judgement = judge.judge(normalise_query("催收威胁我说不想还就上门打我"), np.zeros(8, dtype=np.float32))
    assert (judgement.label, judgement.evasion_words) == ("threat", True)


def test_evasion_words_win_when_only_the_offsets_made_it_a_victim():
    # The model itself hears an evader (0.6); the evasion offset alone turns it into a victim.
    offsets = np.zeros(len(LABELS))
    offsets[INDEX["evasion"]] = -4.0
    judge = Judge(_FixedModel({"evasion": 0.6, "victim": 0.4}), offsets, LEXICON.overrides)
    judgement = judge.judge(normalise_query("我想跑路 去外地躲几年"), np.zeros(8, dtype=np.float32))
    assert (judgement.label, judgement.rule, judgement.evasion_words) == ("evasion", "evasion", False)


def test_a_store_from_before_the_detector_still_flags_a_crisis_risk():
    import io

    model = _FixedModel({"crisis": 0.2, "domain": 0.8})
    risk = np.zeros(len(LABELS))
    risk[INDEX["crisis"]] = 2.0  # the old second crisis offset
    buffer = io.BytesIO()
    np.savez_compressed(buffer, kind=np.array("linear"), labels=np.array(LABELS), offsets=np.zeros(len(LABELS)),
                        risk_offsets=risk, **{f"model_{k}": v for k, v in model.to_arrays().items()})
    old = Judge.from_bytes(buffer.getvalue())
    assert old.crisis_detector is None
    assert old.judge("借呗还不上", np.zeros(1, dtype=np.float32)).crisis_risk


@pytest.mark.parametrize("heard, message, label, both", EVASION_WORDS_CASES)
def test_evasion_words_yield_only_to_a_victim_relative_or_threat_the_model_hears(heard, message, label, both):
    assert LEXICON.overrides.match("evasion", normalise_query(message))
    judge = Judge(_FixedModel(heard), np.zeros(len(LABELS)), LEXICON.overrides)
    judgement = judge.judge(normalise_query(message), np.zeros(8, dtype=np.float32))
    assert (judgement.label, judgement.evasion_words) == (label, both)


# ------------------------------------------------------------------ offsets don't set a question aside
@pytest.mark.parametrize("heard, label", [
    ({"product": 0.53, "vague": 0.27, "distress": 0.2}, "product"),    # the offsets alone made it vague
    ({"domain": 0.6, "smalltalk": 0.26, "vague": 0.14}, "domain"),
    ({"distress": 0.41, "vague": 0.3, "product": 0.29}, "distress"),
    # what the model itself hears stands
    ({"vague": 0.5, "product": 0.3, "domain": 0.2}, "vague"),
    ({"smalltalk": 0.45, "domain": 0.35, "vague": 0.2}, "smalltalk"),
    # an evader is not answered as asked because an offset moved them
    ({"evasion": 0.5, "vague": 0.3, "domain": 0.2}, "vague"),
    # the crisis fallback (below CRISIS_SURE: the crisis lines first) and a relative who names nobody
    # are answered as the model's own call among the labels left
    ({"crisis": 0.45, "product": 0.35, "vague": 0.2}, "product"),
    ({"product": 0.5, "relative": 0.3, "vague": 0.2}, "product"),
])
def test_an_offset_alone_never_turns_a_question_into_a_reply_that_asks_it_back(heard, label):
    offsets = np.zeros(len(LABELS))
    for name, value in {"product": -1.75, "domain": -1.25, "distress": -1.5, "evasion": -4.0, "vague": -0.5,
                        "smalltalk": -0.25, "relative": -0.25}.items():
        offsets[INDEX[name]] = value
    judge = Judge(_FixedModel(heard), offsets, LEXICON.overrides)
    assert judge.judge(normalise_query("花呗那个事情问一下"), np.zeros(8, dtype=np.float32)).label == label


# ------------------------------------------------------------------ off-topic, unless a debt is named
@pytest.mark.parametrize("message, label", [
    ("花呗在拼多多上能用吗", "product"),          # names the product: about the product
    ("借呗的额度在哪里看", "product"),
    ("支付宝人工客服电话多少", "product"),        # Alipay's own service
    ("老板拖欠工资三个月 怎么起诉他", "out_of_scope"),
    ("信用卡怎么办理 哪家银行好批", "out_of_scope"),
])
def test_an_off_topic_call_stands_unless_the_message_names_a_debt(message, label):
    judge = Judge(_FixedModel({"out_of_scope": 0.6, "product": 0.4}), np.zeros(len(LABELS)), LEXICON.overrides)
    assert judge.judge(normalise_query(message), np.zeros(8, dtype=np.float32)).label == label


# ------------------------------------------------------------------ a relative names someone
@pytest.mark.parametrize("message, label, speaker", [
    ("我儿子欠了花呗 催收天天打给我", "relative", "relative"),
    ("同事的借呗逾期了 为啥打我电话", "relative", "relative"),
    ("我不是借款人 怎么让他们别再打了", "relative", "relative"),
    ("i'm just the emergency contact, how do i make them stop", "relative", "relative"),
    ("my brother's loan collectors keep calling me", "relative", "relative"),
    # nobody else named: the borrower, whatever the model heard
    ("欠了二十万网贷 彻底还不上了", "domain", None),
    ("这个月工资没发 借呗要逾期了 怎么跟他们说", "domain", None),
    ("i have no income and owe huabei and jiebei, what can i do", "domain", None),
])
def test_the_relative_label_needs_someone_else_named(message, label, speaker):
    judge = Judge(_FixedModel({"relative": 0.6, "domain": 0.4}), np.zeros(len(LABELS)), LEXICON.overrides)
    judgement = judge.judge(normalise_query(message), np.zeros(8, dtype=np.float32))
    assert (judgement.label, judgement.speaker) == (label, speaker)


def test_a_victim_in_evaders_words_gets_help_first_and_one_line_for_the_other_reading(engine):
    # A tuning message: "老赖" is what others call this person, not what they want to be.
    reply = engine.handle("victim-words", "有人用我的头像和名字发朋友圈说我是老赖 他们怎么拿到我的照片的")
    assert reply.kind == "answer"
    assert not reply.text.startswith(texts.EVASION_PREFACE.strip()[:10])
    assert reply.text.rstrip().endswith(texts.NO_EVASION_HELP_LINE)


def test_a_threatened_person_in_evaders_words_gets_no_lecture(engine):
    reply = engine.handle("threat-words", "催收威胁我说不想还就上门打我")
    assert "110" in reply.text
    assert texts.NO_EVASION_HELP_LINE not in reply.text and texts.EVASION_PREFACE.strip()[:10] not in reply.text


def test_an_evader_still_gets_the_plain_refusal(engine):
    reply = engine.handle("evader", "我想跑路 去外地躲几年 怎么才能让催收找不到")
    assert reply.text.startswith(texts.EVASION_PREFACE.strip()[:10])
    assert texts.NO_EVASION_HELP_LINE not in reply.text


def test_a_thumbs_up_is_a_friendly_word_and_tears_get_support(engine):
    thumbs = engine.handle("emoji-ok", "👍")
    assert thumbs.kind == "clarify" and thumbs.text.startswith("好的")
    tears = engine.handle("emoji-sad", "😭😭😭")
    assert tears.kind == "clarify" and "12356" in tears.text and "发生了什么" in tears.text
    assert not tears.text.startswith("好的")
