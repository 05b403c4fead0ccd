"""The judgement block of `python -m bot eval`: how well messages are judged, on held-out data.

Figures are computed on the held-out part of knowledge/judgement/ only (the
model is built from the tuning part; bot/splits.py). Held-out misses are
counted, never listed: a rule changed because of one would make the figure
meaningless. `tuning_misses` lists the tuning part's misses, to fix from.
"""

from __future__ import annotations

from pathlib import Path

from bot.judgement.labels import LABELS

TARGETS = {"crisis_recall": 0.98, "victim_as_evasion": 0, "accuracy": 0.95}


def label_metrics(pairs: list[tuple[str, str]], lines_first: list[bool] | None = None) -> dict:
    """Per-label precision and recall, confusion matrix and the costly errors, from (true, predicted).
    `lines_first[i]`: the reply to message i starts with the crisis lines (a crisis, or a crisis
    risk); crisis recall counts those, the label's own recall is `crisis_label_recall`."""
    confusion = {t: {p: 0 for p in LABELS} for t in LABELS}
    for true, predicted in pairs:
        confusion[true][predicted] += 1
    per_label = {}
    for label in LABELS:
        tp = confusion[label][label]
        actual = sum(confusion[label].values())
        predicted = sum(confusion[t][label] for t in LABELS)
        per_label[label] = {"precision": round(tp / predicted, 4) if predicted else None,
                            "recall": round(tp / actual, 4) if actual else None, "n": actual}
    n = len(pairs)
    correct = sum(1 for t, p in pairs if t == p)
    lines_first = lines_first if lines_first is not None else [p == "crisis" for _, p in pairs]
    crises = [first for (t, _), first in zip(pairs, lines_first) if t == "crisis"]
    others = [first for (t, _), first in zip(pairs, lines_first) if t != "crisis"]
    return {
        "messages": n,
        "accuracy": round(correct / n, 4) if n else None,
        "crisis_recall": round(sum(crises) / len(crises), 4) if crises else None,
        "crisis_label_recall": per_label["crisis"]["recall"],
        "crisis_lines_to_others": round(sum(others) / len(others), 4) if others else None,
        "victim_as_evasion": confusion["victim"]["evasion"],
        "protected_as_evasion": sum(confusion[t]["evasion"] for t in ("victim", "threat", "relative", "crisis")),
        "crisis_missed": sum(1 for first in crises if not first),
        "per_label": per_label,
        "confusion": {t: {p: c for p, c in row.items() if c} for t, row in confusion.items()},
    }


def targets_met(metrics: dict) -> dict:
    met = (metrics["crisis_recall"] is not None and metrics["crisis_recall"] >= TARGETS["crisis_recall"]
           and metrics["victim_as_evasion"] <= TARGETS["victim_as_evasion"]
           and metrics["accuracy"] is not None and metrics["accuracy"] >= TARGETS["accuracy"])
    return {**TARGETS, "met": met}


def judgement_block(answers, folder: Path) -> dict:
    """Judge every labelled message with the engine's own assessment (model, overrides and
    shape checks, as users get them); report held-out figures and the tuning part's misses."""
    from bot.textnorm import normalise_query
    from ingest.judgement_data import load_labelled_messages
    from ingest.problems import KnowledgeError

    messages, problems = load_labelled_messages(folder)
    if problems:
        raise KnowledgeError(problems)
    parts: dict[str, list[tuple[str, str]]] = {"tuning": [], "held_out": []}
    firsts: dict[str, list[bool]] = {"tuning": [], "held_out": []}
    tuning_misses = []
    for message in messages:
        assessment = answers.assess(normalise_query(message.text))
        got = assessment.label
        side = "held_out" if message.held_out else "tuning"
        parts[side].append((message.label, got))
        firsts[side].append(assessment.lines_first)
        if got != message.label and not message.held_out:
            tuning_misses.append({"text": message.text, "label": message.label, "got": got,
                                  "at": f"{message.file}:{message.line}"})
    held_out = label_metrics(parts["held_out"], firsts["held_out"])
    tuning = label_metrics(parts["tuning"], firsts["tuning"])
    return {
        "held_out": held_out,
        "tuning": {k: tuning[k] for k in ("messages", "accuracy", "crisis_recall", "victim_as_evasion")},
        "targets": targets_met(held_out),
        "tuning_misses": tuning_misses,
        # The headline figures, as the issue names them (held-out part only).
        **{k: held_out[k] for k in ("accuracy", "crisis_recall", "victim_as_evasion")},
    }
