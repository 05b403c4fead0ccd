"""The surface views of a normalised message, hashed into fixed-size bucket spaces.

The sentence embedding carries meaning; the surface views carry the exact words
people type (楼顶, 换号, 冒用) that a small multilingual model blurs:
- character 1-3 grams, robust to typos and unsegmented run-ons;
- jieba words and word pairs, which keep apart what characters share
  (我 / 我妈, 还 as "repay" / 还 as "still").
Each view is L2-normalised on its own, in its own half of the feature space,
so neither drowns the other. numpy and jieba only: cheap per message.
"""

from __future__ import annotations

import math
import re
import zlib
from functools import lru_cache

import numpy as np

from bot.textnorm import segment

NGRAM_SIZES = (1, 2, 3)
BUCKETS = 1 << 14  # per view
FEATURES = 2 * BUCKETS  # character grams in [0, BUCKETS), word grams in [BUCKETS, FEATURES)
_SPACES = re.compile(r"\s+")
_EMPTY = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))


def _hashed(counts: dict[int, int], offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Sublinear counts, L2-normalised, as (indices, weights)."""
    if not counts:
        return _EMPTY
    idx = np.fromiter((b + offset for b in counts), dtype=np.int32, count=len(counts))
    val = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
    val /= float(np.linalg.norm(val)) or 1.0
    return idx, val


def _bucket(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) % BUCKETS


def char_ngrams(normalised: str) -> tuple[np.ndarray, np.ndarray]:
    text = _SPACES.sub(" ", normalised.strip())
    counts: dict[int, int] = {}
    for n in NGRAM_SIZES:
        for i in range(len(text) - n + 1):
            gram = text[i:i + n]
            if gram.strip() != gram or not gram:
                continue  # n-grams that start or end with a space add nothing
            bucket = _bucket(f"{n}:{gram}")
            counts[bucket] = counts.get(bucket, 0) + 1
    return _hashed(counts, 0)


def word_grams(normalised: str) -> tuple[np.ndarray, np.ndarray]:
    words = segment(normalised)
    counts: dict[int, int] = {}
    for gram in [*words, *(f"{a}|{b}" for a, b in zip(words, words[1:]))]:
        bucket = _bucket(f"w:{gram}")
        counts[bucket] = counts.get(bucket, 0) + 1
    return _hashed(counts, BUCKETS)


@lru_cache(maxsize=256)
def message_features(normalised: str) -> tuple[np.ndarray, np.ndarray]:
    """Both surface views of one message, as sparse (indices, weights) over FEATURES.
    Kept for recent messages (read-only): the judgement and the entry classifier's
    retrieval leg ask for the same message in one turn."""
    chars, words = char_ngrams(normalised), word_grams(normalised)
    idx, val = np.concatenate([chars[0], words[0]]), np.concatenate([chars[1], words[1]])
    idx.setflags(write=False)
    val.setflags(write=False)
    return idx, val
