"""What a draft may cite: lines taken verbatim from knowledge entries, each with the entry's sources.

A draft never states a rule, a number or a phone number of its own. Each kind
of conduct names the entry that states the rule it breaks, and a cue that
picks the line stating it; the line is quoted as the entry has it, with the
entry's documents from the source registry (`Unit.basis`). An entry missing
from the store, or a cue no longer found in it, means the rule is not cited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# conduct (bot/flows/parse.py) -> (knowledge entry id, cue that finds the rule's line in its answer)
CONDUCT_RULES: dict[str, tuple[str, str]] = {
    "night": ("boundaries-hours", r"禁止.*22点"),
    "volume": ("boundaries-call-limits", r"次数"),
    "abuse": ("boundaries-threats-insults", r"禁止"),
    "contacts": ("collection-contacts", r"只向你本人|不能向家人"),
    "disclosure": ("boundaries-disclosure", r"禁止"),
    "fake_legal": ("boundaries-forbidden", r"法律文书"),
    "personal_account": ("scams-personal-account", r"禁止"),
}
# Where to send a complaint, in order: the entry listing the channels, and a cue per step.
CHANNELS_ENTRY = "complaints-channels"
CHANNEL_STEPS = (("platform", r"95188"), ("regulator", r"12378"), ("police", r"110"))
EVIDENCE_ENTRY = "complaints-evidence"
# The negotiation script: where to call, what to prepare, what the answer depends on.
HOW_TO_ASK_ENTRY = "repayment-how-to-ask"
PREPARE_ENTRY = "repayment-what-to-prepare"
CANNOT_PAY_ENTRY = "repayment-cannot-pay"
PERSONAL_ACCOUNT_ENTRY = "scams-personal-account"
# Listed as sources of every script: its shape (what to say, what to note), the relief request,
# and the warning about paid agents follow these entries.
SCRIPT_ENTRIES = ("repayment-what-to-say", "fees-interest-relief", "scams-debt-agents")

_BULLET = re.compile(r"^\s*[-•*]\s*")


@dataclass(frozen=True)
class Cited:
    """A line quoted from a knowledge entry, and what the entry rests on."""

    entry: str
    parts: tuple[str, ...]  # verbatim pieces of the entry's answer
    basis: str

    @property
    def text(self) -> str:
        joined = "".join(self.parts)
        return joined if joined.endswith(("。", "）", "：", "！")) else joined + "。"


def lines(unit) -> list[str]:
    return [line.strip() for line in unit.body.strip().split("\n") if line.strip()]


def plain(line: str) -> str:
    return _BULLET.sub("", line).strip()


def find_line(units: Mapping, entry: str, cue: str) -> Cited | None:
    """The first sentence of `entry`'s answer matching `cue`, bullet mark removed."""
    unit = units.get(entry)
    if unit is None:
        return None
    for line in lines(unit):
        if re.search(cue, line):
            # Only the sentence that says it: "不要转。还款只通过…官方还款渠道进行。" -> its second sentence.
            sentence = next(s for s in re.findall(r"[^。]+。?", plain(line)) if re.search(cue, s))
            return Cited(entry, (sentence,), unit.basis)
    return None


def rule(units: Mapping, conduct: str) -> Cited | None:
    """The rule a kind of conduct breaks, as the entry states it.

    A bullet is quoted with the line that introduces it ("…规范明确禁止这些做法："), so the
    quote says what the bullet is; a line that introduces a list is quoted with its bullets
    (the call limits); the sentence is cut where it turns to the reader ("你不需要忍着")."""
    entry, cue = CONDUCT_RULES[conduct]
    unit = units.get(entry)
    if unit is None:
        return None
    body = lines(unit)
    for index, line in enumerate(body):
        match = re.search(cue, line)
        if not match:
            continue
        if _BULLET.match(line):
            header = next((h for h in reversed(body[:index]) if not _BULLET.match(h) and h.endswith("：")), "")
            return Cited(entry, (header, plain(line)) if header else (plain(line),), unit.basis)
        sentences = re.findall(r"[^。]+。?", line)
        sentence = next(s for s in sentences if re.search(cue, s))
        if sentence.endswith("："):
            bullets = []
            for follower in body[index + 1:]:
                if not _BULLET.match(follower):
                    break
                bullets.append(plain(follower))
            return Cited(entry, (sentence, *bullets), unit.basis)
        return Cited(entry, (_cut_at_reader(sentence),), unit.basis)
    return None


def _cut_at_reader(sentence: str) -> str:
    """"威胁、恐吓、侮辱都是催收规范明确禁止的，你不需要忍着。" -> "…明确禁止的" (Cited.text ends it)."""
    clauses = sentence.split("，")
    while len(clauses) > 1 and clauses[-1].startswith("你"):
        clauses.pop()
    return "，".join(clauses)


def channels(units: Mapping) -> list[tuple[str, Cited]]:
    """Where to send a complaint, in order, each step a line of the channels entry."""
    found = []
    for step, cue in CHANNEL_STEPS:
        cited = find_line(units, CHANNELS_ENTRY, cue)
        if cited is not None:
            found.append((step, cited))
    return found
