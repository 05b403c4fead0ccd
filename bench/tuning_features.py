"""The tuning part of knowledge/judgement/, featurised as ingest does, for the benchmarks
that study the judgement models without looking at the held-out part."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.embeddings import BundledUSEEmbedder  # noqa: E402
from ingest.judgement_build import featurise  # noqa: E402
from ingest.judgement_data import load_labelled_messages  # noqa: E402


def tuning_features():
    """(messages, embeddings, hashed features, label indices) of the tuning messages; exits
    naming each problem when a labelled file is broken."""
    messages, problems = load_labelled_messages(ROOT / "knowledge" / "judgement")
    if problems:
        raise SystemExit("\n".join(map(str, problems)))
    tuning = [m for m in messages if not m.held_out]
    return (tuning, *featurise(tuning, BundledUSEEmbedder()))
