"""Fit the entry classifier (bot/entry_classifier.py) at ingest, for the version being written.

Examples: every entry's title and paraphrased questions, and the tuning part of the
labelled question sets (a question with its first acceptable entry; a question no entry
answers, as the class NONE_ID). The held-out part is never seen, so `python -m bot eval`
still measures questions it did not learn.
"""

from __future__ import annotations

import numpy as np

from bot.entry_classifier import NONE_ID, EntryClassifier
from bot.judgement.features import FEATURES, message_features
from bot.textnorm import normalise_query

# Bump when the examples or the fitting change: the next ingest fits the classifier again.
ENTRY_CLASSIFIER_FORMAT = "entries-3"  # 2: article sections by heading; 3: the none class
ENTRY_C = 1.0  # LinearSVC's default


def training_examples(units, questions: list[tuple[str, list[str]]]) -> tuple[list[str], list[str]]:
    """(texts, entry ids): titles and paraphrases of `units`, then `questions` (text, acceptable ids),
    those no entry answers (no ids) labelled NONE_ID."""
    texts, labels = [], []
    known = {u.id for u in units}
    for unit in units:
        # Article sections share the article's title: their headings tell them apart.
        names = (f"{unit.title} {unit.heading}", unit.heading) if getattr(unit, "heading", "") else (unit.title,)
        for text in (*names, *unit.questions):
            if text:
                texts.append(text)
                labels.append(unit.id)
    for text, ids in questions:
        first = next((i for i in ids if i in known), None) if ids else NONE_ID
        if first is not None:
            texts.append(text)
            labels.append(first)
    return texts, labels


def fit_entry_classifier(texts: list[str], labels: list[str], embedder,
                         vectors_of: dict[str, np.ndarray] | None = None) -> EntryClassifier | None:
    """`vectors_of`: normalised text -> vector, filled and reused across fits (ingest fits the
    classifier once on everything and once per answerability fold, on the same texts)."""
    from sklearn.svm import LinearSVC

    from ingest.judgement_build import DENSE_SCALE, class_weights, design_matrix, embed_by_length

    ids = sorted(set(labels))
    if len(ids) < 2:
        return None
    normalised = [normalise_query(t) for t in texts]
    vectors_of = {} if vectors_of is None else vectors_of
    missing = [t for t in dict.fromkeys(normalised) if t not in vectors_of]
    vectors_of.update(zip(missing, embed_by_length(missing, embedder)))
    vectors = np.stack([vectors_of[t] for t in normalised])
    design = design_matrix(vectors, [message_features(t) for t in normalised])
    position = {uid: i for i, uid in enumerate(ids)}
    y = np.array([position[label] for label in labels])
    clf = LinearSVC(C=ENTRY_C, random_state=0).fit(design, y)
    coef, intercept = class_weights(clf)
    dim = vectors.shape[1]
    assert coef.shape[1] == dim + FEATURES
    return EntryClassifier(ids, coef[:, :dim] * DENSE_SCALE, coef[:, dim:], intercept)
