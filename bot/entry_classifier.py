"""Which entry is this question about? A classifier learned from the entries' own
paraphrased questions (and the tuning part of the labelled question sets).

Similarity retrieval ranks entries by how much a question resembles their text;
close entries ("只还最低还款算逾期吗" / "还款日当天几点截止") resemble each other too.
A linear model over the same two views as the judgement (sentence embedding and
hashed character n-grams and words) learns which words tell the entries apart.
Retrieval fuses it as a third leg, voting only for entries it recognises
(bot/retrieval.py); it is fitted at ingest for each version
(ingest/entry_classifier_build.py) and evaluated in docs/entry-classifier.md.

Questions that no entry answers are a class of their own (NONE_ID): "芝麻分怎么查" sounds like
the Sesame-score entry, and the questions people asked that it does not answer teach the
classifier what such near misses look like. Its score is evidence for answerability, never
a retrieval vote.
"""

from __future__ import annotations

import io

import numpy as np

from bot.judgement.models import linear_scores

NONE_ID = "(none)"  # the class of questions no entry answers


class EntryClassifier:
    def __init__(self, ids: list[str], dense: np.ndarray, ngram: np.ndarray, bias: np.ndarray) -> None:
        self.ids = list(ids)
        self.dense = np.asarray(dense, dtype=np.float32)  # (entries, dimension)
        self.ngram = np.asarray(ngram, dtype=np.float32)  # (entries, FEATURES)
        self.bias = np.asarray(bias, dtype=np.float32)    # (entries,)

    def scores(self, vector: np.ndarray, ngrams: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
        """Each entry's score for this question (higher: more likely the entry meant)."""
        values = linear_scores(self.dense, self.ngram, self.bias, np.asarray(vector, dtype=np.float32), ngrams)
        return {uid: float(v) for uid, v in zip(self.ids, values)}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, ids=np.array(self.ids), dense=self.dense.astype(np.float16),
                            ngram=self.ngram.astype(np.float16), bias=self.bias)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "EntryClassifier":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls([str(x) for x in arrays["ids"]], arrays["dense"], arrays["ngram"], arrays["bias"])
