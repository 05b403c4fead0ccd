"""The contract between the engine and every front end: one Reply per user message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

ReplyKind = Literal["answer", "decline", "crisis", "clarify", "notice", "draft"]
# answer:  grounded in the knowledge base, with sources
# decline: out of scope; says kindly what the bot can help with
# crisis:  self-harm wording; crisis hotlines first
# clarify: too vague (or unusable input); one short question back, with options
# notice:  replies to commands such as /reset and /forget
# draft:   the result of a guided flow (/complaint, /negotiate): a text for the user to edit and
#          send, citing only knowledge entries (its sources); Telegram also sends it as a .txt file


SECONDARY_LABEL = "公开资料"  # shown after a source the registry marks `secondary`
UNDATED = {"", "未注明"}


@dataclass(frozen=True)
class SourceRef:
    """One document from the source registry (knowledge/sources.yaml) that an entry rests on."""

    id: str
    title: str
    publisher: str = ""
    date: str = ""
    confidence: str = "confirmed"  # confirmed | secondary
    url: str = ""

    @property
    def secondary(self) -> bool:
        return self.confidence == "secondary"

    def compact(self) -> str:
        """`《征信业管理条例》（国务院，2013-01-21）`; a secondary source also says 公开资料."""
        parts = [p for p in (self.publisher, self.date) if p and p not in UNDATED]
        if self.secondary and not any(SECONDARY_LABEL in p for p in parts):
            parts.append(SECONDARY_LABEL)
        return f"{self.title}（{'，'.join(parts)}）" if parts else self.title

    @classmethod
    def from_dict(cls, data: dict) -> "SourceRef":
        return cls(**{k: str(data.get(k) or "") for k in ("id", "title", "publisher", "date", "url")},
                   confidence=str(data.get("confidence") or "confirmed"))


def basis_text(refs: tuple[SourceRef, ...] | list[SourceRef], fallback: tuple[str, ...] = ()) -> str:
    """What an entry rests on, compactly: its registry documents, or its raw source lines."""
    return "；".join(ref.compact() for ref in refs) if refs else "；".join(fallback)


@dataclass(frozen=True)
class Source:
    id: str  # knowledge unit id (FAQ entry id or article section id)
    title: str  # what users see: the entry title, or article title + section
    score: float
    basis: str = ""  # what the entry rests on, compactly: "title（publisher，date）；..."
    # The registry documents behind `basis` (id, title, publisher, date, confidence, url),
    # and whether any of them is secondary (the answer then carries a hedging line).
    refs: tuple[SourceRef, ...] = ()
    hedged: bool = False


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
            source["refs"] = list(source["refs"])  # JSON-shaped, as a front end reads it back
        return data
