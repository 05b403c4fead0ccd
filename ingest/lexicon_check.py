"""Validate knowledge/lexicon.yaml against the knowledge it names, with file and line."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.lexicon import OVERRIDES, ROUTES, SPEAKERS, TOPICS, Lexicon
from ingest.problems import Problem
from ingest.yamlfile import compose_file, mapping_fields, node_line, scalar_text

SECTIONS = ("routes", "topics", "speakers", "judgement_overrides", "alipay_only", "other_lenders", "lender_entries")
OPTIONAL_SECTIONS = ("alipay_only", "other_lenders", "lender_entries")
LENDER_FIELDS = ("names", "ask")


def _scalars(node: yaml.Node) -> list[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [n for n in node.value if isinstance(n, yaml.ScalarNode)]
    return []


def _check_alipay_only(node: yaml.Node, display: str, entry_ids: set[str], problems: list[Problem]) -> None:
    if not isinstance(node, yaml.SequenceNode):
        problems.append(Problem(display, node_line(node), "'alipay_only' must be a list of entry ids"))
        return
    for item in _scalars(node):
        if (scalar_text(item) or "") not in entry_ids:
            problems.append(Problem(display, node_line(item), f"alipay_only: no knowledge entry '{scalar_text(item)}'"))


def _check_lenders(node: yaml.Node, display: str, problems: list[Problem]) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(display, node_line(node), "'other_lenders' must be a mapping of lender names"))
        return
    for lender, spec in mapping_fields(node, display, "other_lenders", problems).items():
        if not isinstance(spec, yaml.MappingNode):
            problems.append(Problem(display, node_line(spec), f"other_lenders.{lender}: needs {' and '.join(LENDER_FIELDS)}"))
            continue
        fields = mapping_fields(spec, display, f"other_lenders.{lender}", problems)
        for key in LENDER_FIELDS:
            if key not in fields or not scalar_text(fields[key]):
                problems.append(Problem(display, node_line(spec), f"other_lenders.{lender}: needs '{key}'"))
        for key, value in fields.items():
            if key not in LENDER_FIELDS:
                problems.append(Problem(display, node_line(value), f"other_lenders.{lender}: unknown key '{key}'"))
        if "names" in fields:
            try:
                re.compile(scalar_text(fields["names"]) or "")
            except re.error as exc:
                problems.append(Problem(display, node_line(fields["names"]), f"other_lenders.{lender}: bad pattern ({exc})"))


def _check_lender_entries(node: yaml.Node, display: str, entry_ids: set[str], problems: list[Problem]) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(display, node_line(node), "'lender_entries' must map entry ids to the words naming their lender"))
        return
    for entry, pattern in mapping_fields(node, display, "lender_entries", problems).items():
        if entry not in entry_ids:
            problems.append(Problem(display, node_line(pattern), f"lender_entries: no knowledge entry '{entry}'"))
        words = _scalars(pattern)  # one pattern, or a list of them read as alternatives
        nested = isinstance(pattern, yaml.SequenceNode) and len(words) < len(pattern.value)
        if not words or nested or not all(scalar_text(item) for item in words):
            problems.append(Problem(display, node_line(pattern), f"lender_entries.{entry}: needs the words naming the lender"))
        for item in words:
            try:
                re.compile(scalar_text(item) or "")
            except re.error as exc:
                problems.append(Problem(display, node_line(item), f"lender_entries.{entry}: bad pattern ({exc})"))


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
        if name == "alipay_only":
            _check_alipay_only(node, display, entry_ids, problems)
            continue
        if name == "other_lenders":
            _check_lenders(node, display, problems)
            continue
        if name == "lender_entries":
            _check_lender_entries(node, display, entry_ids, problems)
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
