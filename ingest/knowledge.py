"""Load and validate knowledge/: FAQ YAML files and cleaned article Markdown.

Every problem is reported with its file and line, all of them at once, so an
operator can fix a broken file in one pass. Nothing is written when any exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ingest.cleaning import clean_text, find_mangled_text
from ingest.problems import KnowledgeError, Problem
from ingest.yamlfile import compose_file, mapping_fields
from ingest.yamlfile import node_line as _node_line, scalar_text as _scalar_text, string_list as _string_list

FAQ_FIELDS_REQUIRED = ("id", "title", "topic", "questions", "answer", "sources", "reviewed")
FAQ_FIELDS_OPTIONAL = ("tags", "related")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")
# The source registry: every document an entry may cite, once (knowledge/sources.yaml).
SOURCES_FILE = "sources.yaml"
SOURCE_FIELDS_REQUIRED = ("id", "title", "publisher", "date", "confidence")
SOURCE_FIELDS_OPTIONAL = ("url", "note")
CONFIDENCE_LEVELS = ("confirmed", "secondary")


@dataclass(frozen=True)
class KnowledgeUnit:
    """One FAQ entry or one article section: the unit that is added, updated or removed."""

    id: str
    source_type: str  # "faq" | "article"
    title: str
    body: str  # FAQ answer, or the section's text
    file: str
    line: int
    topic: str = ""
    heading: str = ""
    questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # source registry ids
    related: tuple[str, ...] = ()
    reviewed: str = ""
    # The registry records `sources` names, resolved by load_knowledge().
    source_refs: tuple["SourceRecord", ...] = ()
    # The file relative to the knowledge folder ("faq/collection.yaml"): unlike
    # `file` (shown to the operator, relative to the working directory) it does
    # not depend on where ingest runs from, so it is what identifies the unit.
    source_path: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def content_hash(self) -> str:
        payload = {
            k: getattr(self, k)
            for k in ("id", "source_type", "title", "body", "topic", "heading", "questions",
                      "tags", "sources", "related", "reviewed")
        }
        payload["file"] = self.source_path or self.file
        if self.source_refs:  # a registry edit (a corrected title or date) updates the unit
            payload["source_refs"] = [r.shown() for r in self.source_refs]
        return hashlib.sha1(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SourceRecord:
    """One document in the source registry."""

    id: str
    title: str
    publisher: str
    date: str
    confidence: str  # confirmed | secondary
    url: str = ""
    line: int = 0

    def shown(self) -> dict:
        """What the bot receives (and shows) about the source: everything but the line."""
        return {"id": self.id, "title": self.title, "publisher": self.publisher, "date": self.date,
                "confidence": self.confidence, "url": self.url}


# --------------------------------------------------------------------------- FAQ
def load_faq_file(path: Path, display: str) -> tuple[list[KnowledgeUnit], list[Problem]]:
    """Parse one FAQ file into units, keeping the line of every entry and field."""
    problems: list[Problem] = []
    units: list[KnowledgeUnit] = []
    root, problems = compose_file(path, display)
    if problems:
        return [], problems
    if root is None:
        return [], [Problem(display, 1, "the file is empty; expected a list of FAQ entries")]
    if not isinstance(root, yaml.SequenceNode):
        return [], [Problem(display, _node_line(root), "expected a list of FAQ entries (each starting with '- id: ...')")]

    for entry in root.value:
        line = _node_line(entry)
        if not isinstance(entry, yaml.MappingNode):
            problems.append(Problem(display, line, "each FAQ entry must be a mapping with id, title, questions, answer, ..."))
            continue
        fields = mapping_fields(entry, display, "entry", problems)
        entry_id = _scalar_text(fields["id"]) if "id" in fields else None
        label = f"entry '{entry_id}'" if entry_id else "entry"
        entry_problems: list[Problem] = []

        for key in fields:
            if key not in FAQ_FIELDS_REQUIRED and key not in FAQ_FIELDS_OPTIONAL:
                allowed = ", ".join(FAQ_FIELDS_REQUIRED + FAQ_FIELDS_OPTIONAL)
                entry_problems.append(Problem(display, _node_line(fields[key]), f"{label}: unknown field '{key}' (allowed: {allowed})"))
        for key in FAQ_FIELDS_REQUIRED:
            if key not in fields:
                entry_problems.append(Problem(display, line, f"{label}: missing field '{key}'"))

        def scalar(key: str) -> str:
            node = fields.get(key)
            if node is None:
                return ""
            value = _scalar_text(node)
            if value is None:
                entry_problems.append(Problem(display, _node_line(node), f"{label}: '{key}' must be text"))
                return ""
            return clean_text(value)

        def strings(key: str) -> list[str]:
            node = fields.get(key)
            if node is None:
                return []
            values = _string_list(node)
            if values is None:
                entry_problems.append(Problem(display, _node_line(node), f"{label}: '{key}' must be a list of text items"))
                return []
            return [clean_text(v) for v in values]

        entry_id = scalar("id")
        if "id" in fields and not ID_PATTERN.match(entry_id):
            entry_problems.append(Problem(display, _node_line(fields["id"]),
                                          f"entry id '{entry_id}' must be lower-case letters, digits and '-'"))
        title, topic, answer = scalar("title"), scalar("topic"), scalar("answer")
        questions, sources = strings("questions"), strings("sources")
        tags, related = strings("tags"), strings("related")
        reviewed_node = fields.get("reviewed")
        reviewed = ""
        if reviewed_node is not None:
            reviewed = str(reviewed_node.value).strip()
            try:
                dt.date.fromisoformat(reviewed)
            except ValueError:
                entry_problems.append(Problem(display, _node_line(reviewed_node),
                                              f"{label}: 'reviewed' must be a date like 2026-11-28, got '{reviewed}'"))
        for key, value in (("title", title), ("answer", answer), ("topic", topic)):
            if key in fields and not value and _scalar_text(fields[key]) is not None:
                entry_problems.append(Problem(display, _node_line(fields[key]), f"{label}: '{key}' is empty"))
        for key, values in (("questions", questions), ("sources", sources)):
            if key in fields and not [v for v in values if v]:
                entry_problems.append(Problem(display, _node_line(fields[key]), f"{label}: '{key}' needs at least one item"))
        for key in ("title", "answer"):
            if key in fields:
                for fragment in find_mangled_text(scalar(key)):
                    entry_problems.append(Problem(display, _node_line(fields[key]),
                                                  f"{label}: '{key}' contains broken text {fragment!r}"))

        problems.extend(entry_problems)
        if entry_problems:
            continue
        # Each source id keeps its own line, so an unknown one is reported where it is written.
        source_lines = {}
        for item in fields["sources"].value:
            source_lines.setdefault(clean_text(str(item.value)), _node_line(item))
        units.append(KnowledgeUnit(
            id=entry_id, source_type="faq", title=title, body=answer, file=display, line=line,
            topic=topic, questions=tuple(q for q in questions if q), tags=tuple(tags),
            sources=tuple(s for s in sources if s), related=tuple(related), reviewed=reviewed,
            extra={"source_lines": source_lines},
        ))
    return units, problems


# ---------------------------------------------------------------------- articles
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def load_article_file(path: Path, display: str) -> tuple[list[KnowledgeUnit], list[Problem]]:
    """A cleaned article in Markdown: YAML front matter, then `## heading` sections."""
    try:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        return [], [Problem(display, 1, f"not UTF-8 text ({exc.reason})")]
    meta: dict = {}
    body_start_line = 1
    match = FRONT_MATTER.match(text)
    if match:
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.MarkedYAMLError as exc:
            line = (exc.problem_mark.line + 2) if exc.problem_mark else 1
            return [], [Problem(display, line, f"invalid front matter: {exc.problem}")]
        body_start_line = match.group(0).count("\n") + 1
        text = text[match.end():]
    if not isinstance(meta, dict):
        return [], [Problem(display, 1, "front matter must be a mapping (title: ..., source: ...)")]
    if meta.get("ingest") is False:
        return [], []  # kept for the record, deliberately not indexed (e.g. unverified comments)
    title = str(meta.get("title") or "").strip()
    if not title:
        return [], [Problem(display, 1, "article front matter needs a 'title'")]
    source = str(meta.get("source") or "").strip()  # a source registry id
    source_line = next((i for i, raw in enumerate(match.group(1).split("\n"), start=2)
                        if raw.startswith("source:")), 1) if match else 1

    problems: list[Problem] = []
    sections: list[tuple[str, int, list[str]]] = []
    heading, heading_line, lines = "", body_start_line, []
    for offset, raw in enumerate(text.split("\n")):
        line_no = body_start_line + offset
        if raw.startswith("# ") and not raw.startswith("## "):
            continue  # the document title repeats the front matter
        if raw.startswith("## "):
            if heading or any(l.strip() for l in lines):
                sections.append((heading, heading_line, lines))
            heading, heading_line, lines = raw[3:].strip(), line_no, []
            continue
        for fragment in find_mangled_text(raw):
            problems.append(Problem(display, line_no, f"broken text {fragment!r}: repair it or mark it [原文此处有缺字]"))
        lines.append(raw)
    sections.append((heading, heading_line, lines))

    units = []
    stem = path.stem
    seen: dict[str, int] = {}
    for heading, line_no, body_lines in sections:
        body = clean_text("\n".join(body_lines))
        if not body:
            continue
        key = heading or title
        if key in seen:
            problems.append(Problem(display, line_no, f"section heading '{key}' repeats the one on line {seen[key]}"))
            continue
        seen[key] = line_no
        unit_id = f"article-{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        units.append(KnowledgeUnit(
            id=unit_id, source_type="article", title=title, body=body, file=display, line=line_no,
            heading=heading, sources=(source,) if source else (),
            reviewed=str(meta.get("reviewed") or ""), extra={"source_lines": {source: source_line}},
        ))
    if problems:
        return [], problems
    return units, []


# ---------------------------------------------------------------------- registry
def load_source_registry(path: Path, display: str) -> tuple[dict[str, SourceRecord], list[Problem]]:
    """The source registry: a YAML list of {id, title, publisher, date, confidence, url?, note?}."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        return {}, [Problem(display, 1, f"not UTF-8 text ({exc.reason})")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return {}, [Problem(display, mark.line + 1 if mark else 1, f"invalid YAML: {exc.problem or exc}")]
    if root is None or not isinstance(root, yaml.SequenceNode):
        return {}, [Problem(display, _node_line(root) if root is not None else 1,
                            "expected a list of sources (each starting with '- id: ...')")]
    records: dict[str, SourceRecord] = {}
    problems: list[Problem] = []
    for node in root.value:
        line = _node_line(node)
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem(display, line, "each source must be a mapping with id, title, publisher, date, confidence"))
            continue
        fields = {str(k.value): v for k, v in node.value}
        values: dict[str, str] = {}
        found: list[Problem] = []
        for key, value in fields.items():
            if key not in SOURCE_FIELDS_REQUIRED + SOURCE_FIELDS_OPTIONAL:
                allowed = ", ".join(SOURCE_FIELDS_REQUIRED + SOURCE_FIELDS_OPTIONAL)
                found.append(Problem(display, _node_line(value), f"source: unknown field '{key}' (allowed: {allowed})"))
            elif not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
                found.append(Problem(display, _node_line(value), f"source: '{key}' must be non-empty text"))
            else:
                values[key] = clean_text(str(value.value))
        for key in SOURCE_FIELDS_REQUIRED:
            if key not in fields:
                found.append(Problem(display, line, f"source {values.get('id', '')!r}: missing field '{key}'"))
        source_id = values.get("id", "")
        if source_id and not ID_PATTERN.match(source_id):
            found.append(Problem(display, _node_line(fields["id"]),
                                 f"source id '{source_id}' must be lower-case letters, digits and '-'"))
        if "confidence" in values and values["confidence"] not in CONFIDENCE_LEVELS:
            found.append(Problem(display, _node_line(fields["confidence"]),
                                 f"source '{source_id}': confidence must be one of {', '.join(CONFIDENCE_LEVELS)}, "
                                 f"got '{values['confidence']}'"))
        if source_id in records:
            found.append(Problem(display, line, f"duplicate source id '{source_id}' (first used on line {records[source_id].line})"))
        problems.extend(found)
        if not found:
            records[source_id] = SourceRecord(
                id=source_id, title=values["title"], publisher=values["publisher"], date=values["date"],
                confidence=values["confidence"], url=values.get("url", ""), line=line)
    return records, problems


def resolve_sources(units: list[KnowledgeUnit], registry: dict[str, SourceRecord],
                    registry_name: str) -> tuple[list[KnowledgeUnit], list[Problem]]:
    """Attach each unit's registry records; an unknown id is a problem at the line citing it."""
    problems: list[Problem] = []
    resolved: list[KnowledgeUnit] = []
    for unit in units:
        lines = unit.extra.get("source_lines", {})
        unknown = [s for s in unit.sources if s not in registry]
        for source_id in unknown:
            what = f"entry '{unit.id}'" if unit.source_type == "faq" else "article front matter 'source'"
            problem = Problem(unit.file, lines.get(source_id, unit.line),
                              f"{what}: unknown source id '{source_id}' (not in {registry_name})")
            if problem not in problems:  # an article's sections share one front matter
                problems.append(problem)
        if not unknown:
            resolved.append(replace(unit, source_refs=tuple(registry[s] for s in unit.sources)))
    return resolved, problems


# -------------------------------------------------------------------------- all
@dataclass
class Knowledge:
    units: list[KnowledgeUnit]
    files: list[str]
    sources: dict[str, SourceRecord] = field(default_factory=dict)

    def by_id(self) -> dict[str, KnowledgeUnit]:
        return {u.id: u for u in self.units}


def load_knowledge(knowledge_dir: Path) -> Knowledge:
    """Load every FAQ and article file; raise KnowledgeError listing every problem."""
    knowledge_dir = Path(knowledge_dir)
    if not knowledge_dir.is_dir():
        raise KnowledgeError([Problem(str(knowledge_dir), 0, "knowledge folder not found")])
    problems: list[Problem] = []
    units: list[KnowledgeUnit] = []
    files: list[str] = []

    def display(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    faq_files = sorted((knowledge_dir / "faq").glob("*.y*ml"))
    article_files = sorted((knowledge_dir / "article").glob("*.md"))
    if not faq_files and not article_files:
        raise KnowledgeError([Problem(display(knowledge_dir), 0, "no FAQ (faq/*.yaml) or article (article/*.md) files found")])
    for path in faq_files:
        loaded, found = load_faq_file(path, display(path))
        units.extend(replace(u, source_path=path.relative_to(knowledge_dir).as_posix()) for u in loaded)
        problems.extend(found)
        files.append(display(path))
    for path in article_files:
        loaded, found = load_article_file(path, display(path))
        units.extend(replace(u, source_path=path.relative_to(knowledge_dir).as_posix()) for u in loaded)
        problems.extend(found)
        files.append(display(path))

    registry_path = knowledge_dir / SOURCES_FILE
    registry: dict[str, SourceRecord] = {}
    if registry_path.is_file():
        registry, found = load_source_registry(registry_path, display(registry_path))
        problems.extend(found)
        files.append(display(registry_path))
        if not found:
            units, found = resolve_sources(units, registry, SOURCES_FILE)
            problems.extend(found)
    elif any(u.sources for u in units):
        problems.append(Problem(display(registry_path), 0,
                                f"source registry not found: entries cite source ids, listed in {SOURCES_FILE}"))

    first_seen: dict[str, KnowledgeUnit] = {}
    for unit in units:
        if unit.id in first_seen:
            other = first_seen[unit.id]
            problems.append(Problem(unit.file, unit.line,
                                    f"duplicate id '{unit.id}' (first used at {other.file}:{other.line})"))
        else:
            first_seen[unit.id] = unit
    for unit in units:
        for rel in unit.related:
            if rel not in first_seen:
                problems.append(Problem(unit.file, unit.line, f"entry '{unit.id}': related id '{rel}' does not exist"))
    if problems:
        raise KnowledgeError(problems)
    return Knowledge(units=units, files=files, sources=registry)
