"""Benchmarks of the default configuration; prints figures and writes docs/benchmarks.md.

    python bench/run_all.py            (or `make bench`)

Measures, each in a fresh temporary store so the deployed one is untouched:
full ingest time and chunks/s, no-change re-ingest, cold start of
`python -m bot ask`, warm answer latency (message to reply text, median/p95),
resident memory, retrieval quality, and the Telegram load benchmark when its
script is present.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"median_ms": 20, "p95_ms": 30, "cold_start_s": 2.0, "rss_mb": 400, "full_ingest_s": 10, "reingest_s": 2,
           "recall@3": 0.95}
# Message to reply text, many kinds of question; repeated to get stable percentiles.
QUESTIONS = [
    "花呗逾期一个月会怎么催收", "只还一点点会不会催得更凶", "催收骚扰我去哪投诉", "hb逾期了会上征信吗",
    "借唄逾期會不會被起訴", "How do I complain about a debt collector harassing me?", "催收打电话给我爸妈怎么办",
    "逾期费用怎么算", "征信记录多久能消", "有人冒充支付宝让我转账到个人账户", "今天天气怎么样", "怎么办",
    "我不想活了", "怎么躲催收", "能不能跟平台协商分期", "催收说要起诉我是真的吗",
]


def run(cmd, env, **kw):
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, **kw)


def quality_section(evaluation: dict) -> list[str]:
    """Tuning and held-out figures side by side (bot/splits.py): held-out is what users will see."""
    lines = ["## Quality: tuning and held-out parts", "",
             "Rules and data change only because of tuning misses; the held-out part predicts what users see.", "",
             "| measure | tuning | held-out | goal |", "|---|---|---|---|"]
    splits = evaluation.get("splits", {})
    if splits:
        t, h = splits["tuning"], splits["held_out"]
        lines.append(f"| written questions (knowledge/eval/questions.yaml): hybrid recall@3 | "
                     f"{t['hybrid_recall@3']:.3f} ({t['questions']}) | {h['hybrid_recall@3']:.3f} ({h['questions']}) | ≥ 0.95 |")
        lines.append(f"| written questions: all answer checks | {t['answers_all_ok']:.3f} | {h['answers_all_ok']:.3f} | |")
    j = evaluation.get("judgement")
    if j:
        h = j["held_out"]
        lines += [
            f"| judgement: label accuracy ({j['tuning']['messages']} / {h['messages']} messages) | "
            f"{j['tuning']['accuracy']:.3f} | {h['accuracy']:.3f} | ≥ {j['targets']['accuracy']} |",
            f"| judgement: crisis lines first, share of crises | {j['tuning']['crisis_recall']:.3f} | "
            f"{h['crisis_recall']:.3f} ({h['crisis_missed']} missed) | ≥ {j['targets']['crisis_recall']} |",
            f"| judgement: crisis label recall | | {h['crisis_label_recall']:.3f} | |",
            f"| judgement: crisis lines before replies to non-crisis messages | | {h['crisis_lines_to_others']:.3f} | |",
            f"| judgement: victims answered as evaders | {j['tuning']['victim_as_evasion']} | "
            f"{h['victim_as_evasion']} | 0 |",
        ]
    a = evaluation.get("answerability")
    if a:
        lines += [
            f"| realistic questions ({a['tuning']['questions']} / {a['questions']}): acceptable | "
            f"{a['tuning']['acceptable']:.3f} | {a['acceptable']:.3f} | ≥ 0.90 |",
            f"| realistic questions: wrong answers | {a['tuning']['wrong_answer_rate']:.3f} | "
            f"{a['wrong_answer_rate']:.3f} | ≤ 0.03 |",
            f"| realistic questions: needless declines | {a['tuning']['needless_decline_rate']:.3f} | "
            f"{a['needless_decline_rate']:.3f} | |",
        ]
        if "alternative" in a:
            alt = a["alternative"]
            lines.append(f"| same, with ANSWERABILITY={alt['decided_by']}: acceptable / wrong / needless declines | | "
                         f"{alt['acceptable']:.3f} / {alt['wrong_answer_rate']:.3f} / {alt['needless_decline_rate']:.3f} | |")
        over = ", ".join(a.get("catch_all_over_limit") or []) or "none"
        lines += ["", f"Entries chosen for another question more than 3 times (both parts): {over}."]
    if j:
        lines += ["", "Judgement per label, held-out (precision / recall): " + ", ".join(
            f"{k} {v['precision']}/{v['recall']}" for k, v in j["held_out"]["per_label"].items()) + "."]
    return lines + [""]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    env = os.environ.copy()
    env.update(DATA_DIR=str(work), CHROMA_PATH=str(work / "chroma"), SESSION_DB=str(work / "s.sqlite3"),
               ANONYMIZED_TELEMETRY="False", LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")
    env.pop("CHROMA_HOST", None)
    env.pop("EMBEDDING_MODEL", None)
    py = sys.executable
    results: dict = {}

    # Ingest: full, then no change (each a whole `python -m ingest` process, as an operator runs it).
    t = time.perf_counter()
    full = run([py, "-m", "ingest", "--json"], env)
    results["full_ingest_s"] = time.perf_counter() - t
    report = json.loads(full.stdout.strip().splitlines()[-1])
    results["chunks"] = report["chunks"]
    results["ingest_inner_s"] = report["duration_s"]
    t = time.perf_counter()
    again = json.loads(run([py, "-m", "ingest", "--json"], env).stdout.strip().splitlines()[-1])
    results["reingest_s"] = time.perf_counter() - t
    results["reingest_changed"] = again["changed"]

    # Cold start: a whole `python -m bot ask` process, best and median of 5.
    colds = []
    for _ in range(5):
        t = time.perf_counter()
        out = run([py, "-m", "bot", "ask", "--json", "花呗逾期一个月会怎么催收"], env)
        colds.append(time.perf_counter() - t)
        assert out.returncode == 0, out.stderr
    results["cold_start_s"] = statistics.median(colds)
    results["cold_start_best_s"] = min(colds)

    # Warm latency and memory, in one process with the default engine.
    probe = r'''
import json, resource, statistics, sys, time
from bot.dialogue import build_engine
questions = json.loads(sys.argv[1])
engine = build_engine()
for q in questions: engine.handle("warm-up", q)
lat = []
for i in range(20):
    for j, q in enumerate(questions):
        t = time.perf_counter(); engine.handle(f"c{i}-{j}", q); lat.append((time.perf_counter() - t) * 1000)
lat.sort()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n": len(lat), "median_ms": statistics.median(lat), "p95_ms": lat[int(len(lat) * 0.95) - 1],
                  "max_ms": lat[-1], "rss_mb": rss, "torch_imported": "torch" in sys.modules}))
'''
    warm = run([py, "-c", probe, json.dumps(QUESTIONS, ensure_ascii=False)], env)
    assert warm.returncode == 0, warm.stderr
    results.update(json.loads(warm.stdout.strip().splitlines()[-1]))

    # Retrieval quality on the labelled set.
    ev = run([py, "-m", "bot", "eval", "--json"], env)
    evaluation = json.loads(ev.stdout.strip().splitlines()[-1])
    for leg in ("dense", "lexical", "hybrid"):
        results[f"{leg}_recall@3"] = evaluation[leg]["recall@3"]
        results[f"{leg}_mrr"] = evaluation[leg]["mrr"]
    results["kind_accuracy"] = evaluation["answers"]["kind_accuracy"]
    results["questions"] = evaluation["hybrid"]["questions"]
    quality = quality_section(evaluation)

    telegram_note = ""
    load_script = ROOT / "bench" / "telegram_load.py"
    if load_script.exists():
        tl = run([py, str(load_script)], env, timeout=900)
        telegram_note = ("\n".join(l for l in tl.stdout.strip().splitlines() if not l.startswith("written:"))
                         if tl.returncode == 0 else f"telegram load benchmark failed:\n{tl.stderr[-2000:]}")

    def verdict(ok: bool) -> str:
        return "met" if ok else "**MISSED**"

    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`bench/run_all.py`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "default configuration (bundled USE multilingual model, embedded Chroma).",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
        f"| full ingest (`python -m ingest`, whole process) | {results['full_ingest_s']:.2f} s "
        f"({results['chunks']} chunks, {results['chunks'] / results['ingest_inner_s']:.0f} chunks/s inside the run) "
        f"| ≤ {TARGETS['full_ingest_s']} s | {verdict(results['full_ingest_s'] <= TARGETS['full_ingest_s'])} |",
        f"| no-change re-ingest (whole process) | {results['reingest_s']:.2f} s (changed: {results['reingest_changed']}) "
        f"| ≤ {TARGETS['reingest_s']} s | {verdict(results['reingest_s'] <= TARGETS['reingest_s'])} |",
        f"| cold start `python -m bot ask` (median of 5; best) | {results['cold_start_s']:.2f} s; "
        f"{results['cold_start_best_s']:.2f} s | ≤ {TARGETS['cold_start_s']} s "
        f"| {verdict(results['cold_start_s'] <= TARGETS['cold_start_s'])} |",
        f"| warm answer latency, message to reply text ({results['n']} messages) | median {results['median_ms']:.1f} ms, "
        f"p95 {results['p95_ms']:.1f} ms, max {results['max_ms']:.1f} ms | ≤ {TARGETS['median_ms']} / "
        f"{TARGETS['p95_ms']} ms | {verdict(results['median_ms'] <= TARGETS['median_ms'] and results['p95_ms'] <= TARGETS['p95_ms'])} |",
        f"| resident memory (max RSS, warm engine) | {results['rss_mb']:.0f} MB (torch imported: "
        f"{results['torch_imported']}) | ≤ {TARGETS['rss_mb']} MB | {verdict(results['rss_mb'] <= TARGETS['rss_mb'])} |",
        f"| hybrid recall@3 ({results['questions']} labelled questions) | {results['hybrid_recall@3']:.3f} "
        f"(dense {results['dense_recall@3']:.3f}, lexical {results['lexical_recall@3']:.3f}) | ≥ {TARGETS['recall@3']} "
        f"| {verdict(results['hybrid_recall@3'] >= TARGETS['recall@3'])} |",
        f"| reply kind right (all labelled messages) | {results['kind_accuracy']:.3f} | | |",
        "",
    ]
    lines += quality
    if telegram_note:
        lines += ["## Telegram load", "", telegram_note, ""]
    text = "\n".join(lines)
    print(text)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
