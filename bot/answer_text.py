"""Lines an answer's text gets from data rather than from each entry's prose."""

from __future__ import annotations

import re

from bot import texts


def closing_note(body: str, units: list, disclaimer_topics=()) -> str:
    """The closing line an answer gets from data, not from each entry's prose: the legal
    disclaimer when the first entry is about law or fees, and hedged wording ("来自公开报道")
    when any entry rests on a source the registry marks `secondary` (knowledge/sources.yaml).
    Both together make one line."""
    if not units:
        return body
    hedged = any(u.hedged for u in units)
    if units[0].topic in disclaimer_topics and "不构成法律意见" not in body:
        note = texts.ANSWER_DISCLAIMER_HEDGED if hedged else texts.ANSWER_DISCLAIMER
    elif hedged and texts.HEDGED_NOTE not in body and texts.ANSWER_DISCLAIMER_HEDGED not in body:
        note = texts.HEDGED_NOTE
    else:
        return body
    return f"{body}\n\n{note}"


def first_line(text: str) -> str:
    """An entry's direct first sentence (its answers are written to start with one)."""
    return text.strip().split("\n", 1)[0].strip()


def hotline_line(text: str) -> str:
    """The entry's first line that gives a helpline's number ("心理援助热线 12356"), else its
    first line: what an upset person most needs from the support entry when it comes second."""
    for line in text.strip().split("\n"):
        if re.search(r"热线\D{0,6}\d{3,}|hotline\D{0,6}\d{3,}", line, re.I):
            return line.strip().lstrip("-").strip()
    return first_line(text)


def follow_up_titles(hit, others: list, units: dict, limit: int = 3) -> list[str]:
    """Follow-ups offered under an answer: the entry's own related entries first, then other
    close matches (FAQ entries only, never the one answered)."""
    picked: list[str] = []
    seen = {hit.unit.id}
    candidates = [units[r] for r in hit.unit.related if r in units] + [h.unit for h in others]
    for unit in candidates:
        if unit.id in seen or unit.source_type != "faq":
            continue
        seen.add(unit.id)
        picked.append(unit.title)
        if len(picked) == limit:
            break
    return picked
