"""What kind of message the bot got: the labels of knowledge/judgement/*.yaml."""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "crisis",        # the writer may harm themselves: crisis lines first
    "threat",        # a collector threatens harm: police (110) and complaint first
    "victim",        # harassment, fake legal papers, identity theft, scams: help, never a lecture
    "evasion",       # wants to avoid paying or being found: no tactics, honest consequences
    "relative",      # not the borrower: a relative, friend or contact asking
    "distress",      # upset without danger: support first, then the practical answer
    "product",       # how the product works (reuse, limits, due-day rules): the app and 95188
    "domain",        # the borrower's own question about overdue debt
    "out_of_scope",  # nothing to do with debt trouble
    "smalltalk",     # greetings, thanks, who are you
    "vague",         # too broad to answer without guessing
)
INDEX = {label: i for i, label in enumerate(LABELS)}
