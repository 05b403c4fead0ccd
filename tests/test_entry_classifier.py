"""The entry classifier: learned from entries' own paraphrases, it tells close entries apart,
survives publishing with the store version, and votes in retrieval only for entries it
recognises. Also the support entry's helpline line when it comes second."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bot.answer_text import hotline_line
from bot.embeddings import get_embedder
from bot.entry_classifier import NONE_ID, EntryClassifier
from bot.judgement.features import FEATURES, message_features
from bot.settings import BUNDLED_EMBEDDING_MODEL
from bot.textnorm import normalise_query
from ingest.entry_classifier_build import fit_entry_classifier, training_examples


@dataclass
class _Entry:
    id: str
    title: str
    questions: tuple[str, ...]


ENTRIES = [
    _Entry("minimum", "花呗只还最低还款算不算逾期", ("只还最低还款算逾期吗", "还了最低额度会上征信吗", "最低还款有利息吗")),
    _Entry("cutoff", "还款日当天几点前还才不算逾期", ("还款日当天晚上还算逾期吗", "最后还款日几点截止", "半夜12点以后还来得及吗")),
    _Entry("reuse", "还清以后花呗多久能恢复使用", ("还完了花呗怎么还不能用", "逾期还清后多久能再用", "结清了额度什么时候恢复")),
]


@pytest.fixture(scope="module")
def classifier():
    texts, labels = training_examples(ENTRIES, [("hb只还了最低的那个 算不算逾期", ["minimum"])])
    return fit_entry_classifier(texts, labels, get_embedder(BUNDLED_EMBEDDING_MODEL))


def _best(classifier, text: str) -> str:
    normalised = normalise_query(text)
    vector = get_embedder(BUNDLED_EMBEDDING_MODEL).query_vector(normalised)
    scores = classifier.scores(vector, message_features(normalised))
    return max(scores, key=scores.get)


@pytest.mark.parametrize("question, entry", [
    ("这个月只还最低 会不会算逾期", "minimum"),
    ("还款日晚上11点还 算不算逾期", "cutoff"),
    ("花呗还清了咋还用不了", "reuse"),
])
def test_close_entries_are_told_apart_by_their_words(classifier, question, entry):
    assert _best(classifier, question) == entry


def test_training_takes_titles_paraphrases_and_tuning_questions_for_known_entries():
    texts, labels = training_examples(ENTRIES, [("问一个", ["gone", "reuse"]), ("没有答案的问题", []),
                                                ("只有删掉的条目", ["gone"])])
    assert texts[0] == ENTRIES[0].title and labels.count("minimum") == 4
    assert ("问一个", "reuse") in zip(texts, labels)  # the first acceptable entry that exists
    assert ("没有答案的问题", NONE_ID) in zip(texts, labels)  # nothing answers it: the none class
    assert "只有删掉的条目" not in texts  # its entry is gone: not evidence of anything


# Questions near an entry's topic that it does not answer (the none class learns these).
UNANSWERED = [("花呗额度怎么提高", []), ("怎么把花呗额度调低", []), ("花呗临时额度怎么申请", []),
              ("花呗最低还款是百分之几", []), ("最低还款比例是多少", [])]


def test_questions_no_entry_answers_are_recognised_as_such():
    """A near miss ("额度怎么提高" is not "额度会恢复吗") scores the none class above the entry
    it sounds like; the entry's own kind of question still scores the entry first."""
    texts, labels = training_examples(ENTRIES, UNANSWERED)
    model = fit_entry_classifier(texts, labels, get_embedder(BUNDLED_EMBEDDING_MODEL))
    assert _best(model, "hb额度咋提高啊") == NONE_ID
    assert _best(model, "还清了hb咋还用不了") == "reuse"


def test_retrieval_never_offers_the_none_class_as_an_entry(tmp_path):
    from tests.helpers_knowledge import make_settings, tiny_knowledge

    from bot.retrieval import Retriever
    from bot.splits import is_held_out
    from ingest.service import IngestService

    knowledge = tiny_knowledge(tmp_path / "knowledge")
    unanswered = ["花呗额度怎么提高", "怎么把花呗额度调低", "花呗临时额度怎么申请", "花呗怎么开通",
                  "借呗利率是多少", "花呗分期手续费多少", "芝麻分怎么查", "支付宝怎么改密码"]
    assert any(not is_held_out(q) for q in unanswered)  # some are tuning questions, learned from
    (knowledge / "eval").mkdir()
    (knowledge / "eval" / "realistic.yaml").write_text(
        "".join(f"- q: {q}\n  ids: []\n" for q in unanswered), encoding="utf-8")
    settings = make_settings(tmp_path, knowledge)
    IngestService(settings).run()
    retriever = Retriever(settings)
    assert NONE_ID in retriever._current_index().entries.ids
    result = retriever.search("花呗额度咋提高", k=5)
    assert NONE_ID in result.entry_scores
    assert result.hits and all(h.unit.id != NONE_ID for h in result.hits)
