"""/complaint: a complaint draft about abusive collection, built with the user one question at a time.

The draft states only what the user said, in their words; the rules it cites
and the channels it lists come from the knowledge base with their sources
(bot/flows/knowledge.py). Nothing the user did not say is asserted as fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.flows import knowledge, parse
from bot.flows import texts as t
from bot.flows.machine import Flow, Step
from bot.reply import Reply
from bot.textnorm import normalise_query


class ComplaintFlow(Flow):
    name = "complaint"
    steps = (
        Step("lender", t.Q_LENDER, t.LENDER_OPTIONS),
        Step("contact", t.Q_CONTACT, t.CONTACT_OPTIONS),
        Step("conduct", t.Q_CONDUCT, t.CONDUCT_OPTIONS, multi=True),
        Step("when", t.Q_WHEN),
        Step("evidence", t.Q_EVIDENCE, t.EVIDENCE_OPTIONS, multi=True, ends=(t.EVIDENCE_NONE_OPTION,)),
    )

    def compose(self, answers: Mapping[str, str], units: Mapping) -> Reply:
        draft = compose_draft(answers, units)
        entries = [c.entry for c in draft.rules] + [c.entry for _, c in draft.route]
        if draft.evidence_advice is not None:
            entries.append(draft.evidence_advice.entry)
        sources = [units[e].as_source(1.0) for e in dict.fromkeys(entries) if e in units]
        return Reply(draft.text, "draft", sources, [t.NEGOTIATE_OFFER])


@dataclass
class Draft:
    """The composed draft, with what it cites (for tests and the front ends)."""

    text: str
    rules: list[knowledge.Cited]
    route: list[tuple[str, knowledge.Cited]]
    evidence_advice: knowledge.Cited | None


def _field(name: str, value: str | None) -> str:
    return f"【{name}】{value if value else t.MISSING}"


def compose_draft(answers: Mapping[str, str], units: Mapping) -> Draft:
    lender = answers.get("lender", "")
    said = " ".join(answers.get(key, "") for key in ("conduct", "when"))
    normalised = normalise_query(said)
    conducts = parse.conduct(normalised)
    rules = [cited for cited in (knowledge.rule(units, c) for c in conducts) if cited is not None]
    evidence = answers.get("evidence", "")
    items = [] if parse.NO_EVIDENCE.match(evidence) or evidence == t.EVIDENCE_NONE_OPTION else parse.evidence_items(evidence)

    out = [t.COMPLAINT_DONE, "", t.DRAFT_HEAD, t.DRAFT_OPENING, "",
           _field(t.F_LENDER, lender), _field(t.F_CONTACT, answers.get("contact")),
           _field(t.F_CONDUCT, answers.get("conduct")), _field(t.F_WHEN, answers.get("when")),
           _field(t.F_EVIDENCE, "、".join(items) if items else (t.NO_EVIDENCE if evidence else "")), ""]
    if rules:
        out.append(t.RULES_HEAD)
        for number, cited in enumerate(rules, 1):
            out.append(f"{number}. {cited.text}")
            out.append(t.SOURCE_LINE.format(basis=cited.basis))
    else:
        out.append(t.RULES_NONE)
    out += ["", t.ASKS_HEAD]
    asks = [t.ASK_VERIFY]
    if "contacts" in conducts or "disclosure" in conducts:
        asks.append(t.ASK_FAMILY)
    if parse.contact_kind(normalise_query(answers.get("contact", "不知道"))) != "platform":
        asks.append(t.ASK_NAME)
    asks.append(t.ASK_REPLY)
    out += [f"{number}. {ask}" for number, ask in enumerate(asks, 1)]
    out += [t.DRAFT_END, ""]

    route = knowledge.channels(units)
    out.append(t.ROUTE_HEAD)
    alipay = bool(parse.ALIPAY.search(normalise_query(lender)))
    number = 0
    for step, cited in route:
        if step == "platform" and lender and not alipay:
            line = t.ROUTE_OTHER_PLATFORM.format(lender=lender)  # 95188 is Alipay's: not for another lender
        elif step == "platform" and not lender:
            line = t.ROUTE_IF_ALIPAY + cited.text
        else:
            line = cited.text
        number += 1
        out.append(f"{number}. {line}")
    if route:
        out.append(t.ROUTE_SOURCE.format(basis=route[0][1].basis))
    advice = None
    if items:
        out += ["", t.EVIDENCE_HEAD.format(items="、".join(items))]
        advice = knowledge.find_line(units, knowledge.EVIDENCE_ENTRY, r"原始记录")
        if advice is not None:
            out.append(advice.text)
    else:
        unit = units.get(knowledge.EVIDENCE_ENTRY)
        if unit is not None:
            advice = knowledge.Cited(unit.id, tuple(knowledge.lines(unit)), unit.basis)
            out += ["", t.EVIDENCE_NONE, *[f"- {knowledge.plain(line)}" for line in knowledge.lines(unit)[1:]]]
    out += ["", t.CLEARED]
    return Draft("\n".join(out), rules, route, advice)
