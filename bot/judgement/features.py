"""Character n-grams of a normalised message, hashed into a fixed number of buckets.

The sentence embedding carries meaning; n-grams carry the exact words people
type (楼顶, 换号, 冒用) that a small multilingual model blurs. Both are cheap to
compute per message with numpy alone.
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

NGRAM_SIZES = (1, 2, 3)
BUCKETS = 1 << 14
_SPACES = re.compile(r"\s+")


def char_ngrams(normalised: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, weights): sublinear counts, L2-normalised."""
    text = _SPACES.sub(" ", normalised.strip())
    counts: dict[int, int] = {}
    for n in NGRAM_SIZES:
        for i in range(len(text) - n + 1):
            gram = text[i:i + n]
            if gram.strip() != gram or not gram:
                continue  # n-grams that start or end with a space add nothing
            bucket = zlib.crc32(f"{n}:{gram}".encode("utf-8")) % BUCKETS
            counts[bucket] = counts.get(bucket, 0) + 1
    if not counts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int32, count=len(counts))
    val = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
    val /= float(np.linalg.norm(val)) or 1.0
    return idx, val
