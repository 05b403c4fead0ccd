"""/negotiate: a script for the call to the lender's customer service, built with the user.

Requests are phrased as requests ("能不能…"), the hardship in the user's own
words; where to call and what to prepare are lines of knowledge entries. It
never suggests paying less than agreed, paying anyone but the lender, or
paying an agent.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.flows import knowledge, parse
from bot.flows import texts as t
from bot.flows.machine import Flow, Step
from bot.reply import Reply
from bot.textnorm import normalise_query, parse_overdue

PRODUCT_WORDS = ("花呗", "借呗", "网商贷", "信用卡", "白条", "美团", "微粒贷")


class NegotiationFlow(Flow):
    name = "negotiation"
    steps = (
        Step("product", t.Q_PRODUCT, t.PRODUCT_OPTIONS),
        Step("overdue", t.Q_OVERDUE, t.OVERDUE_OPTIONS),
        Step("amount", t.Q_AMOUNT),
        Step("reason", t.Q_REASON, t.REASON_OPTIONS),
        Step("monthly", t.Q_MONTHLY),
    )

    def compose(self, answers: Mapping[str, str], units: Mapping) -> Reply:
        text, cited = compose_script(answers, units)
        entries = [c.entry for c in cited] + [e for e in knowledge.SCRIPT_ENTRIES if e in units]
        sources = [units[e].as_source(1.0) for e in dict.fromkeys(entries) if e in units]
        return Reply(text, "draft", sources, [t.COMPLAINT_OFFER])


def product_of(answer: str) -> str:
    normalised = normalise_query(answer)
    return next((word for word in PRODUCT_WORDS if word in normalised), answer.strip()[:20])


def compose_script(answers: Mapping[str, str], units: Mapping) -> tuple[str, list[knowledge.Cited]]:
    cited: list[knowledge.Cited] = []
    product = product_of(answers["product"]) if answers.get("product") else ""
    alipay = not product or bool(parse.ALIPAY.search(product))
    overdue = parse_overdue(normalise_query(answers.get("overdue", "")), bare=True)
    amount = parse.parse_amount(normalise_query(answers["amount"])) if answers.get("amount") else None
    monthly = parse.parse_amount(normalise_query(answers["monthly"])) if answers.get("monthly") else None

    out = [t.NEGOTIATE_DONE, "", t.SCRIPT_HEAD + (product or "")]
    where = knowledge.find_line(units, knowledge.HOW_TO_ASK_ENTRY, r"95188") if alipay else None
    if where is not None:
        cited.append(where)
        out.append(t.S_WHERE + where.text)
    elif product:
        out.append(t.S_WHERE + t.S_WHERE_OTHER.format(product=product))
    out += ["", t.S_OPEN, t.S_OPEN_LINE.format(
        product=product or "借款",
        overdue=t.S_OVERDUE.format(duration=overdue[0]) if overdue else t.S_OVERDUE_UNKNOWN,
        amount=t.S_AMOUNT.format(amount=parse.money(amount)) if amount else "")]

    out += ["", t.S_HARDSHIP, t.S_HARDSHIP_LINE.format(reason=answers.get("reason") or t.S_REASON_MISSING)]
    prepare = [c for c in (knowledge.find_line(units, knowledge.PREPARE_ENTRY, cue) for cue in (r"困难证明", r"收入情况"))
               if c is not None]
    if prepare:
        cited += prepare
        out.append(t.S_PREPARE)
        out += [f"- {c.text}" for c in prepare]

    out += ["", t.S_ASK]
    if monthly == 0:
        out += [f"- {t.S_ASK_EXTENSION_FIRST}"]
    elif monthly:
        out += [f"- {t.S_ASK_INSTALMENTS.format(monthly=parse.money(monthly))}", f"- {t.S_ASK_EXTENSION}"]
    else:
        out += [f"- {t.S_ASK_INSTALMENTS_OPEN}", f"- {t.S_ASK_EXTENSION}"]
    out.append(f"- {t.S_ASK_RELIEF}")
    answer_depends = knowledge.find_line(units, knowledge.HOW_TO_ASK_ENTRY, r"以客服答复为准")
    if answer_depends is not None:
        cited.append(answer_depends)
        out.append(answer_depends.text)
    if monthly is None:
        budget = knowledge.find_line(units, knowledge.CANNOT_PAY_ENTRY, r"每月还能拿出多少")
        if budget is not None:
            cited.append(budget)
            out.append(t.S_MONTHLY_UNKNOWN + budget.text)

    out += ["", t.S_RECORD, *[f"- {item}" for item in t.S_RECORD_ITEMS]]
    out += ["", t.S_CONFIRM, t.S_CONFIRM_LINE]
    out += ["", t.S_DONT, f"- {t.S_DONT_PROMISE}"]
    official = knowledge.find_line(units, knowledge.PERSONAL_ACCOUNT_ENTRY, r"官方还款渠道") if alipay else None
    if official is not None:
        cited.append(official)
    out.append(f"- {t.S_DONT_PERSONAL}" + (official.text if official else ""))
    out.append(f"- {t.S_DONT_AGENT}")
    out += ["", t.CLEARED]
    return "\n".join(out), cited
