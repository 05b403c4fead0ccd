"""Turn knowledge units into chunks with stable, content-derived ids.

FAQ entries: one chunk for the title and answer, one for each paraphrased
question, so a user's wording matches the questions people really ask as well
as the answer text. Article sections: sentences grouped up to a size limit,
never split mid-sentence, with the section heading kept as metadata.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ingest.cleaning import split_sentences
from ingest.knowledge import KnowledgeUnit

ARTICLE_CHUNK_CHARS = 160


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str  # what is embedded and indexed for keyword search
    metadata: dict

    @property
    def unit_id(self) -> str:
        return self.metadata["unit_id"]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _chunk_id(unit_id: str, field: str, text: str) -> str:
    # Content-derived: the same text of the same unit always gets the same id,
    # so an unchanged chunk is recognised and its embedding reused.
    return f"{unit_id}#{field}-{_digest(text)}"


def _unit_metadata(unit: KnowledgeUnit) -> dict:
    return {
        "unit_id": unit.id,
        "unit_hash": unit.content_hash,
        "source_type": unit.source_type,
        "title": unit.title,
        "heading": unit.heading,
        "topic": unit.topic,
        "tags": ",".join(unit.tags),
        "sources": "\n".join(unit.sources),
        # The registry records behind `sources` (title, publisher, date, confidence, url):
        # what the bot shows as the source line and what decides hedged wording.
        "source_refs": json.dumps([r.shown() for r in unit.source_refs], ensure_ascii=False),
        "related": ",".join(unit.related),
        "reviewed": unit.reviewed,
        "file": unit.source_path or unit.file,
    }


def group_sentences(sentences: list[str], limit: int = ARTICLE_CHUNK_CHARS) -> list[str]:
    groups: list[str] = []
    current = ""
    for sentence in sentences:
        if current and len(current) + len(sentence) > limit:
            groups.append(current)
            current = ""
        current += sentence
    if current:
        groups.append(current)
    return groups


def chunk_unit(unit: KnowledgeUnit) -> list[Chunk]:
    base = _unit_metadata(unit)
    chunks: list[Chunk] = []
    if unit.source_type == "faq":
        answer_text = f"{unit.title}\n{unit.body}"
        chunks.append(Chunk(_chunk_id(unit.id, "answer", answer_text), answer_text,
                            {**base, "field": "answer", "body": unit.body, "position": 0}))
        seen = {unit.title}
        chunks.append(Chunk(_chunk_id(unit.id, "question", unit.title), unit.title,
                            {**base, "field": "question", "body": "", "position": 1}))
        for position, question in enumerate(unit.questions, start=2):
            if question in seen:
                continue
            seen.add(question)
            chunks.append(Chunk(_chunk_id(unit.id, "question", question), question,
                                {**base, "field": "question", "body": "", "position": position}))
        return chunks
    for position, group in enumerate(group_sentences(split_sentences(unit.body))):
        text = f"{unit.heading}\n{group}" if unit.heading else group
        chunks.append(Chunk(_chunk_id(unit.id, f"section{position}", text), text,
                            {**base, "field": "section", "body": group, "position": position}))
    return chunks


def chunk_units(units: list[KnowledgeUnit]) -> list[Chunk]:
    return [chunk for unit in units for chunk in chunk_unit(unit)]
