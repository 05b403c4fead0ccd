"""The contract between the engine and every front end: one Reply per user message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

ReplyKind = Literal["answer", "decline", "crisis", "clarify", "notice"]
# answer:  grounded in the knowledge base, with sources
# decline: out of scope; says kindly what the bot can help with
# crisis:  self-harm wording; crisis hotlines first
# clarify: too vague (or unusable input); one short question back, with options
# notice:  replies to commands such as /reset and /forget


@dataclass(frozen=True)
class Source:
    id: str  # knowledge unit id (FAQ entry id or article section id)
    title: str  # what users see: the entry title, or article title + section
    score: float
    basis: str = ""  # what the entry itself rests on (article section / named document)


@dataclass
class Reply:
    text: str  # plain text; front ends format it
    kind: ReplyKind
    sources: list[Source] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)  # follow-ups or clarification options
    latency_ms: float = 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["latency_ms"] = round(self.latency_ms, 2)
        for source in data["sources"]:
            source["score"] = round(source["score"], 4)
        return data
