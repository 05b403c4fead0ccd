"""`python -m bot eval`: retrieval and answer quality on a labelled question set.

Retrieval is measured separately from answers: recall@1/3/5 and MRR for the
dense leg alone, the lexical leg alone and the hybrid, over the `answer` items.
Answer checks then run every item through the dialogue engine (a fresh
conversation each) and check the reply's kind, its cited source and the facts
it must contain. `--embedding-model M` builds a temporary store with another
model so an operator can compare models on the same set before deploying one;
that store is built with M's prompts and the similarity thresholds calibrated
for M at ingest (bot/calibration.py), which the answers are then judged by.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.eval_answerability import answerability_blocks, realistic_files
from bot.eval_judgement import judgement_block
from bot.settings import Settings, get_settings
from bot.splits import is_held_out

DEFAULT_SET = Path("knowledge/eval/questions.yaml")
KS = (1, 3, 5)
TARGET_HYBRID_RECALL_AT_3 = 0.95


@dataclass
class EvalItem:
    q: str
    kind: str
    ids: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


def load_eval_set(path: Path) -> list[EvalItem]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    items = []
    for i, raw in enumerate(data):
        if not isinstance(raw, dict) or "q" not in raw or "kind" not in raw:
            raise ValueError(f"{path}: item {i + 1} needs at least 'q' and 'kind'")
        items.append(EvalItem(q=str(raw["q"]), kind=str(raw["kind"]), ids=list(raw.get("ids") or []),
                              facts=[str(f) for f in raw.get("facts") or []]))
    return items


def retrieval_metrics(retriever, items: list[EvalItem], mode: str) -> dict:
    hits_at = {k: 0 for k in KS}
    reciprocal = []
    misses = []
    scored = [it for it in items if it.kind == "answer" and it.ids]
    for item in scored:
        result = retriever.search(item.q, k=max(KS) * 2, mode=mode)
        ranked = [h.unit.id for h in result.hits]
        rank = next((i + 1 for i, uid in enumerate(ranked) if uid in item.ids), None)
        for k in KS:
            hits_at[k] += int(rank is not None and rank <= k)
        reciprocal.append(1.0 / rank if rank else 0.0)
        if rank is None or rank > 3:
            misses.append({"q": item.q, "expected": item.ids, "got": ranked[:3]})
    n = max(len(scored), 1)
    out = {f"recall@{k}": round(hits_at[k] / n, 4) for k in KS}
    out["mrr"] = round(sum(reciprocal) / n, 4)
    out["questions"] = len(scored)
    out["misses_at_3"] = misses
    return out


def answer_checks(engine, items: list[EvalItem]) -> dict:
    from bot.sessions import MemorySessionStore

    engine.sessions = MemorySessionStore()
    results = {"total": len(items), "kind_ok": 0, "source_ok": 0, "facts_ok": 0, "failures": []}
    latencies = []
    by_kind: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        started = time.perf_counter()
        reply = engine.handle(f"eval-{i}", item.q)
        latencies.append((time.perf_counter() - started) * 1000)
        kind_ok = reply.kind == item.kind
        cited = [s.id for s in reply.sources]
        source_ok = not item.ids or any(c in item.ids for c in cited)
        facts_ok = all(f in reply.text for f in item.facts)
        results["kind_ok"] += kind_ok
        results["source_ok"] += source_ok
        results["facts_ok"] += facts_ok
        by_kind.setdefault(item.kind, [0, 0])
        by_kind[item.kind][0] += kind_ok
        by_kind[item.kind][1] += 1
        if not (kind_ok and source_ok and facts_ok):
            results["failures"].append({"q": item.q, "expected_kind": item.kind, "kind": reply.kind,
                                        "expected_ids": item.ids, "cited": cited,
                                        "missing_facts": [f for f in item.facts if f not in reply.text]})
    n = max(len(items), 1)
    results["all_ok"] = round((len(items) - len(results["failures"])) / n, 4)
    results["kind_accuracy"] = round(results["kind_ok"] / n, 4)
    results["by_kind"] = {k: f"{ok}/{total}" for k, (ok, total) in sorted(by_kind.items())}
    results["latency_ms_median"] = round(statistics.median(latencies), 2) if latencies else None
    return results


def evaluate(settings: Settings, set_path: Path, embedding_model: str | None = None) -> dict:
    from bot.dialogue import build_engine
    from bot.sessions import MemorySessionStore

    items = load_eval_set(set_path)
    tmp = None
    if embedding_model:
        # Same knowledge, another model, a throwaway store: the deployed one is untouched.
        from ingest.service import IngestService

        tmp = tempfile.TemporaryDirectory(prefix="eval-store-")
        settings = settings.model_copy(update={"embedding_model": embedding_model,
                                               "chroma_path": Path(tmp.name) / "chroma",
                                               "chroma_host": None})
        started = time.perf_counter()
        IngestService(settings).run()
        ingest_s = time.perf_counter() - started
    try:
        engine = build_engine(settings, sessions=MemorySessionStore())
        retriever = engine.retriever
        report = {
            "set": str(set_path),
            "embedding_model": settings.embedding_model,
            "store_version": retriever.load().version,
            "prompts": {"query": retriever.embedder.query_prompt, "document": retriever.embedder.document_prompt},
            "thresholds": retriever.thresholds.as_dict(),
            "dense": retrieval_metrics(retriever, items, "dense"),
            "lexical": retrieval_metrics(retriever, items, "lexical"),
            "hybrid": retrieval_metrics(retriever, items, "hybrid"),
            "answers": answer_checks(engine, items),
        }
        # The same figures on each side of the fixed split (bot/splits.py): held-out is
        # what users will see; tuning is what rules and data may be changed from.
        report["splits"] = {}
        for side in ("tuning", "held_out"):
            part = [it for it in items if is_held_out(it.q) == (side == "held_out")]
            hybrid = retrieval_metrics(retriever, part, "hybrid")
            answers = answer_checks(engine, part)
            report["splits"][side] = {"questions": len(part), "hybrid_recall@3": hybrid["recall@3"],
                                      "hybrid_recall@1": hybrid["recall@1"], "answers_all_ok": answers["all_ok"],
                                      "kind_accuracy": answers["kind_accuracy"]}
        realistic = realistic_files(settings.knowledge_dir)
        if realistic:
            other = "model" if settings.answerability == "rule" else "rule"
            # The other way of deciding, on the same questions, for comparison.
            modes = [settings] + ([settings.model_copy(update={"answerability": other})]
                                  if other == "rule" or retriever.answerability is not None else [])
            blocks = answerability_blocks(engine, realistic, modes)
            report["answerability"] = blocks[0]
            if len(blocks) > 1:
                report["answerability"]["decided_by"] = settings.answerability
                report["answerability"]["alternative"] = {"decided_by": other, **{
                    k: blocks[1][k] for k in ("acceptable", "wrong_answer_rate", "needless_decline_rate")}}
        judgement_folder = Path(settings.knowledge_dir) / "judgement"
        if judgement_folder.is_dir():
            report["judgement"] = judgement_block(engine.answers, judgement_folder)
        if embedding_model:
            report["temporary_store_ingest_s"] = round(ingest_s, 2)
        report["targets"] = {"hybrid_recall@3": TARGET_HYBRID_RECALL_AT_3,
                             "met": report["hybrid"]["recall@3"] >= TARGET_HYBRID_RECALL_AT_3}
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_report(report: dict) -> str:
    t, prompts = report["thresholds"], report["prompts"]
    lines = [f"Evaluation set {report['set']} with embedding model {report['embedding_model']}",
             f"similarity thresholds ({t['basis']}): relevance {t['relevance']:.3f}, strong {t['strong']:.3f}, "
             f"exact {t['exact']:.3f}; prompts: query {prompts['query']!r}, document {prompts['document']!r}", "",
             "| retrieval | recall@1 | recall@3 | recall@5 | MRR |", "|---|---|---|---|---|"]
    for leg in ("dense", "lexical", "hybrid"):
        m = report[leg]
        lines.append(f"| {leg} | {m['recall@1']:.3f} | {m['recall@3']:.3f} | {m['recall@5']:.3f} | {m['mrr']:.3f} |")
    a = report["answers"]
    lines += ["", f"answers: {a['total']} messages; kind right {a['kind_ok']}, right source cited {a['source_ok']}, "
              f"facts present {a['facts_ok']}; all checks {a['all_ok']:.1%}; by kind {a['by_kind']}"]
    for side, figures in report.get("splits", {}).items():
        lines.append(f"{side}: {figures['questions']} questions, hybrid recall@3 {figures['hybrid_recall@3']:.3f}, "
                     f"all answer checks {figures['answers_all_ok']:.1%}")
    if "answerability" in report:
        a = report["answerability"]
        lines += ["", f"answerability (realistic questions, held-out {a['questions']}): acceptable {a['acceptable']:.3f}, "
                  f"wrong answers {a['wrong_answer_rate']:.3f}, needless declines {a['needless_decline_rate']:.3f}; "
                  f"tuning acceptable {a['tuning']['acceptable']:.3f}; goals {'met' if a['targets']['met'] else 'NOT met'} "
                  f"(acceptable >= {a['targets']['acceptable']}, wrong <= {a['targets']['wrong_answer_rate']})",
                  (f"with ANSWERABILITY={a['alternative']['decided_by']}: acceptable {a['alternative']['acceptable']:.3f}, "
                   f"wrong answers {a['alternative']['wrong_answer_rate']:.3f}, needless declines "
                   f"{a['alternative']['needless_decline_rate']:.3f}") if "alternative" in a else "",
                  "entries chosen for other questions (held-out): " + (", ".join(
                      f"{k} {v}" for k, v in a["catch_all"]["held_out"].items()) or "none")]
    if "judgement" in report:
        j = report["judgement"]
        h = j["held_out"]
        lines += ["", f"judgement (held-out, {h['messages']} messages): accuracy {h['accuracy']:.3f}, "
                  f"crisis recall {h['crisis_recall']:.3f} ({h['crisis_missed']} missed), "
                  f"victims answered as evaders {h['victim_as_evasion']}; tuning accuracy {j['tuning']['accuracy']:.3f}; "
                  f"goals {'met' if j['targets']['met'] else 'NOT met'} "
                  f"(accuracy >= {j['targets']['accuracy']}, crisis recall >= {j['targets']['crisis_recall']}, "
                  f"victim_as_evasion <= {j['targets']['victim_as_evasion']})"]
        lines.append("per label (held-out precision/recall): " + ", ".join(
            f"{k} {v['precision']}/{v['recall']}" for k, v in h["per_label"].items()))
    target = report["targets"]
    lines.append(f"target hybrid recall@3 >= {target['hybrid_recall@3']}: {'met' if target['met'] else 'MISSED'}")
    misses = report["hybrid"]["misses_at_3"]
    if misses:
        lines += ["", "hybrid misses (top 3):"]
        lines += [f"  {m['q']}  expected {m['expected']}  got {m['got']}" for m in misses]
    if a["failures"]:
        lines += ["", "answer check failures:"]
        lines += [f"  {f['q']}  expected {f['expected_kind']} {f['expected_ids']}  got {f['kind']} {f['cited']}"
                  + (f" missing {f['missing_facts']}" if f["missing_facts"] else "") for f in a["failures"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=None, help=f"labelled set (default {DEFAULT_SET})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--embedding-model", help="compare another model on a temporary store")
    args = parser.parse_args(argv)
    settings = get_settings()
    set_path = args.set or settings.knowledge_dir / "eval" / "questions.yaml"
    report = evaluate(settings, set_path, args.embedding_model)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report["targets"]["met"] else 1
