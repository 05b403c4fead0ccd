"""The entry classifier: learned from entries' own paraphrases, it tells close entries apart,
survives publishing with the store version, and votes in retrieval only for entries it
recognises. Also the support entry's helpline line when it comes second."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bot.answer_text import hotline_line
from bot.embeddings import get_embedder
from bot.entry_classifier import EntryClassifier
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
    texts, labels = training_examples(ENTRIES, [("问一个", ["gone", "reuse"]), ("没有答案的问题", [])])
    assert texts[0] == ENTRIES[0].title and labels.count("minimum") == 4
    assert ("问一个", "reuse") in zip(texts, labels)  # the first acceptable entry that exists
    assert "没有答案的问题" not in texts


def test_the_classifier_survives_publishing(classifier):
    again = EntryClassifier.from_bytes(classifier.to_bytes())
    assert again.ids == classifier.ids
    assert _best(again, "最后还款日几点截止") == "cutoff"


def test_ingest_publishes_it_and_retrieval_loads_it(tmp_path):
    from tests.helpers_knowledge import prepared_store

    from bot.retrieval import Retriever
    from bot.store import open_store

    settings = prepared_store(tmp_path)
    store = open_store(settings)
    assert store.read_blob(store.require_manifest(), "entries")
    retriever = Retriever(settings)
    assert retriever._current_index().entries is not None
    assert retriever.search("花呗逾期了怎么办").hits  # searching with the third leg works


def test_it_votes_only_for_entries_it_recognises(tmp_path):
    from tests.helpers_knowledge import prepared_store

    from bot.retrieval import RRF_K, Retriever

    retriever = Retriever(prepared_store(tmp_path))
    index = retriever._current_index()
    question = "花呗逾期了会怎么样"
    ids = sorted(index.units)
    dimension = retriever.embedder.dimension

    def with_biases(biases: dict[str, float]) -> list[str]:
        bias = np.array([biases.get(uid, -1.0) for uid in ids])
        index.entries = EntryClassifier(ids, np.zeros((len(ids), dimension)), np.zeros((len(ids), FEATURES)), bias)
        return [h.unit.id for h in retriever.search(question, k=5).hits]

    index.entries = None
    plain = retriever.search(question, k=5).hits
    assert with_biases({}) == [h.unit.id for h in plain]  # recognises nothing: the other legs decide
    # Recognising a close second (one the other legs found) puts it first.
    second = next(h for h in plain[1:] if h.score + 1.0 / (RRF_K + 1) > plain[0].score)
    assert with_biases({second.unit.id: 2.0})[0] == second.unit.id
    # Recognising an entry neither leg found does not bring it in.
    absent = next(uid for uid in ids if uid not in {h.unit.id for h in retriever.search(question, k=len(ids)).hits})
    assert absent not in with_biases({absent: 5.0})


@pytest.mark.parametrize("body, line", [
    ("会焦虑太正常了。\n- 联系 95188 问问能不能分期。\n- 可以拨打心理援助热线 12356，找人聊聊。",
     "可以拨打心理援助热线 12356，找人聊聊。"),
    ("会焦虑太正常了。\n- 联系 95188 问问能不能分期。", "会焦虑太正常了。"),  # no helpline: its first line
])
def test_the_support_entry_second_still_gives_its_helpline(body, line):
    assert hotline_line(body) == line
