"""knowledge/lexicon.yaml, read: the routes, topic names and override patterns the engine uses.

Ingest validates the file (ingest/lexicon_check.py) and publishes its text
with the store version; the bot reads it from there, so an edited lexicon and
the knowledge it names switch together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from bot.judgement.judge import Overrides

ROUTES = ("evasion", "threat", "identity_theft", "relative", "support", "crisis", "complaint")
TOPICS = ("crisis", "harassment", "disclaimer")
SPEAKERS = ("relative", "identity_theft")
OVERRIDES = ("crisis", "identity_theft", "distress", "evasion", "out_of_scope", "someone_else")


# Words that make a question about Alipay's own products, whatever other lender it names.
ALIPAY_WORDS = re.compile(r"花呗|借呗|支付宝|蚂蚁")


@dataclass(frozen=True)
class Lender:
    """Another lender than Alipay, and where its own rules can be asked."""

    name: str
    names: re.Pattern
    ask: str


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@dataclass(frozen=True)
class Lexicon:
    routes: dict[str, str] = field(default_factory=dict)
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    speakers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    overrides: Overrides = field(default_factory=Overrides)
    alipay_only: frozenset[str] = frozenset()
    lenders: tuple[Lender, ...] = ()
    # Entries that answer for one kind of lender only, and the words that name it.
    lender_entries: dict[str, re.Pattern] = field(default_factory=dict)
    text: str = ""  # the YAML it was read from (published with the version)

    @classmethod
    def from_yaml(cls, text: str) -> "Lexicon":
        data = yaml.safe_load(text) or {}
        routes = {str(k): str(v) for k, v in (data.get("routes") or {}).items()}
        topics = {str(k): tuple(_as_list(v)) for k, v in (data.get("topics") or {}).items()}
        speakers = {str(k): tuple(_as_list(v)) for k, v in (data.get("speakers") or {}).items()}
        patterns = {str(k): re.compile("|".join(f"(?:{p})" for p in _as_list(v)))
                    for k, v in (data.get("judgement_overrides") or {}).items() if v}
        alipay_only = frozenset(_as_list(data.get("alipay_only") or []))
        lenders = tuple(Lender(str(name), re.compile(str(spec["names"])), str(spec["ask"]))
                        for name, spec in (data.get("other_lenders") or {}).items())
        lender_entries = {str(k): re.compile("|".join(map(str, v)) if isinstance(v, list) else str(v))
                          for k, v in (data.get("lender_entries") or {}).items()}
        return cls(routes, topics, speakers, Overrides(patterns), alipay_only, lenders, lender_entries, text)

    def other_lender(self, normalised: str) -> Lender | None:
        """The other lender a message asks about, when it names no Alipay product."""
        if ALIPAY_WORDS.search(normalised):
            return None
        return next((lender for lender in self.lenders if lender.names.search(normalised)), None)

    def fits_lender(self, entry_id: str, normalised: str) -> bool:
        """False for an entry about one kind of lender when the message does not name it."""
        names = self.lender_entries.get(entry_id)
        return names is None or bool(names.search(normalised))

    def route(self, name: str) -> str | None:
        return self.routes.get(name)

    def topic(self, name: str) -> str | None:
        names = self.topics.get(name) or ()
        return names[0] if names else None

    def topics_of(self, name: str) -> tuple[str, ...]:
        return self.topics.get(name) or ()

    def speaker_entries(self, speaker: str) -> tuple[str, ...]:
        return self.speakers.get(speaker) or ()
