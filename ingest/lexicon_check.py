"""Validate knowledge/lexicon.yaml against the knowledge it names, with file and line."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.lexicon import OVERRIDES, ROUTES, SPEAKERS, TOPICS, Lexicon
from ingest.problems import Problem
from ingest.yamlfile import compose_file, mapping_fields, node_line, scalar_text

SECTIONS = ("routes", "topics", "speakers", "judgement_overrides")


def _scalars(node: yaml.Node) -> list[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [n for n in node.value if isinstance(n, yaml.ScalarNode)]
    return []


def load_lexicon(path: Path, display: str, entry_ids: set[str], topics: set[str]) -> tuple[Lexicon | None, list[Problem]]:
    root, problems = compose_file(path, display)
    if problems:
        return None, problems
    if not isinstance(root, yaml.MappingNode):
        return None, [Problem(display, node_line(root) if root else 1, f"expected a mapping with {', '.join(SECTIONS)}")]
    sections = mapping_fields(root, display, "lexicon", problems)
    for name, node in sections.items():
        if name not in SECTIONS:
            problems.append(Problem(display, node_line(node), f"unknown section '{name}' (allowed: {', '.join(SECTIONS)})"))
            continue
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem(display, node_line(node), f"'{name}' must be a mapping"))
            continue
        known = {"routes": ROUTES, "topics": TOPICS, "speakers": SPEAKERS, "judgement_overrides": OVERRIDES}[name]
        fields = mapping_fields(node, display, name, problems)
        for key in known:
            if key not in fields:
                problems.append(Problem(display, node_line(node), f"'{name}' needs '{key}'"))
        for key, value in fields.items():
            if key not in known:
                problems.append(Problem(display, node_line(value), f"'{name}': unknown key '{key}' (known: {', '.join(known)})"))
            values = _scalars(value)
            if not values:
                problems.append(Problem(display, node_line(value), f"'{name}.{key}' must be text or a list of text"))
            for item in values:
                text = scalar_text(item) or ""
                if name in ("routes", "speakers") and text not in entry_ids:
                    problems.append(Problem(display, node_line(item), f"{name}.{key}: no knowledge entry '{text}'"))
                elif name == "topics" and text not in topics:
                    problems.append(Problem(display, node_line(item), f"topics.{key}: no knowledge entry has topic '{text}'"))
                elif name == "judgement_overrides":
                    try:
                        re.compile(text)
                    except re.error as exc:
                        problems.append(Problem(display, node_line(item), f"judgement_overrides.{key}: bad pattern {text!r} ({exc})"))
    if problems:
        return None, problems
    return Lexicon.from_yaml(path.read_text(encoding="utf-8")), []
