"""The answerability block of `python -m bot eval`: on realistic customer questions, does the
bot answer the question that was asked, or say honestly that it can't?

Each question of knowledge/eval/realistic*.yaml (one file per round of writing) lists the
entries that answer it acceptably
(`ids: []`: none does, and an honest decline is right). Every question goes through the
dialogue engine as its own conversation. Figures are on the held-out part (bot/splits.py);
the catch-all table is given for both parts, the tuning one to fix from.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from bot.splits import is_held_out
from bot.yamlnodes import SAFE_LOADER

TARGETS = {"acceptable": 0.90, "wrong_answer_rate": 0.03}
CATCH_ALL_LIMIT = 3  # an entry chosen wrongly more often than this is a defect to fix


def realistic_files(knowledge_dir: Path) -> list[Path]:
    return sorted((Path(knowledge_dir) / "eval").glob("realistic*.yaml"))


def load_realistic(paths: list[Path]) -> list[dict]:
    items = []
    for path in paths:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER) or []
        items += [{"q": str(item["q"]), "ids": list(item.get("ids") or [])} for item in data]
    return items


def judge_reply(reply, ids: list[str], titles: dict[str, str]) -> str:
    """acceptable | wrong | needless_decline | other, for one reply to a question labelled `ids`."""
    top = reply.sources[0].id if reply.sources else None
    if reply.kind == "answer":
        return "acceptable" if top in ids else "wrong"
    if reply.kind == "decline":
        return "acceptable" if not ids else "needless_decline"
    if reply.kind == "clarify" and ids:
        offered = set(reply.suggestions)
        return "acceptable" if any(titles.get(i) in offered for i in ids) else "other"
    return "other"


def answerability_blocks(engine, paths: list[Path], modes: list) -> list[dict]:
    """One block per answer-engine settings in `modes` (ANSWERABILITY=rule, =model). Each question
    is asked under each in turn, so its vector is encoded once, not once per mode."""
    from bot.sessions import MemorySessionStore

    engine.sessions = MemorySessionStore()
    kept = engine.answers.settings
    titles = {uid: unit.title for uid, unit in engine.retriever.units.items()}
    sides = [{"tuning": Counter(), "held_out": Counter()} for _ in modes]
    wrongly_chosen = [{"tuning": Counter(), "held_out": Counter()} for _ in modes]
    tuning_misses: list[list[dict]] = [[] for _ in modes]
    try:
        for i, item in enumerate(load_realistic(paths)):
            side = "held_out" if is_held_out(item["q"]) else "tuning"
            for m, settings in enumerate(modes):
                engine.answers.settings = settings
                reply = engine.handle(f"answerability-{m}-{i}", item["q"])
                outcome = judge_reply(reply, item["ids"], titles)
                sides[m][side][outcome] += 1
                sides[m][side]["total"] += 1
                if outcome == "wrong" and reply.sources:
                    wrongly_chosen[m][side][reply.sources[0].id] += 1
                if outcome != "acceptable" and side == "tuning":
                    tuning_misses[m].append({"q": item["q"], "ids": item["ids"], "kind": reply.kind,
                                             "got": [s.id for s in reply.sources[:1]], "outcome": outcome})
    finally:
        engine.answers.settings = kept
    return [_block(sides[m], wrongly_chosen[m], tuning_misses[m]) for m in range(len(modes))]


def _block(sides: dict[str, Counter], wrongly_chosen: dict[str, Counter], tuning_misses: list[dict]) -> dict:
    def figures(counts: Counter) -> dict:
        n = counts["total"] or 1
        return {"questions": counts["total"], "acceptable": round(counts["acceptable"] / n, 4),
                "wrong_answer_rate": round(counts["wrong"] / n, 4),
                "needless_decline_rate": round(counts["needless_decline"] / n, 4),
                "other_rate": round(counts["other"] / n, 4)}

    held_out = figures(sides["held_out"])
    return {
        **held_out,
        "tuning": figures(sides["tuning"]),
        "catch_all": {side: dict(c.most_common()) for side, c in wrongly_chosen.items()},
        "catch_all_over_limit": sorted(e for e, n in (wrongly_chosen["tuning"] + wrongly_chosen["held_out"]).items()
                                       if n > CATCH_ALL_LIMIT),
        "targets": {**TARGETS, "met": held_out["acceptable"] >= TARGETS["acceptable"]
                    and held_out["wrong_answer_rate"] <= TARGETS["wrong_answer_rate"]},
        "tuning_misses": tuning_misses,
    }
