"""Reading a knowledge YAML file as nodes, so every problem can name its line.

The node helpers are bot/yamlnodes.py's (shared with the conversation
fixtures); this module turns what they find into `Problem`s, all at once.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.yamlnodes import SAFE_LOADER, mapping_items, node_line, scalar_text, string_list, syntax_error_line
from ingest.problems import Problem

__all__ = ["compose_file", "mapping_fields", "node_line", "scalar_text", "string_list"]


def compose_file(path: Path, display: str) -> tuple[yaml.Node | None, list[Problem]]:
    """The file's YAML node tree, or the problem that stops it being read."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(display, 1, f"not UTF-8 text ({exc.reason})")]
    try:
        return yaml.compose(text, Loader=SAFE_LOADER), []
    except yaml.MarkedYAMLError as exc:
        return None, [Problem(display, syntax_error_line(exc) or 1, f"invalid YAML: {exc.problem or exc}")]


def mapping_fields(node: yaml.MappingNode, display: str, label: str, problems: list[Problem]) -> dict[str, yaml.Node]:
    """A mapping's fields by key; a key given twice is a problem."""
    fields: dict[str, yaml.Node] = {}
    for key, key_node, value_node in mapping_items(node):
        key = key if key is not None else str(key_node.value)
        if key in fields:
            problems.append(Problem(display, node_line(key_node), f"{label}: field '{key}' appears twice"))
        fields[key] = value_node
    return fields
