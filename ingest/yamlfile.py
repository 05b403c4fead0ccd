"""Reading a knowledge YAML file as nodes, so every problem can name its line."""

from __future__ import annotations

from pathlib import Path

import yaml

from ingest.problems import Problem


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def scalar_text(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def string_list(node: yaml.Node) -> list[str] | None:
    if isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.ScalarNode) for n in node.value):
        return [str(n.value) for n in node.value]
    return None


def compose_file(path: Path, display: str) -> tuple[yaml.Node | None, list[Problem]]:
    """The file's YAML node tree, or the problem that stops it being read."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(display, 1, f"not UTF-8 text ({exc.reason})")]
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), []
    except yaml.MarkedYAMLError as exc:
        # An unclosed quote or bracket is reported at the end of the file; the
        # line where it was opened is the one to fix.
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(display, line, f"invalid YAML: {exc.problem or exc}")]


def mapping_fields(node: yaml.MappingNode, display: str, label: str, problems: list[Problem]) -> dict[str, yaml.Node]:
    """A mapping's fields by key; a key given twice is a problem."""
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in fields:
            problems.append(Problem(display, node_line(key_node), f"{label}: field '{key}' appears twice"))
        fields[key] = value_node
    return fields
