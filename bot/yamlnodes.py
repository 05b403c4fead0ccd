"""YAML read as nodes, so every problem in a hand-written file can name its line.

Shared by the knowledge files (ingest/yamlfile.py, which collects every
problem) and the conversation fixtures (bot/replay/fixtures.py, which stops at
the first): one reading of lines, keys and syntax errors for both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import yaml

# libyaml's parser when PyYAML was built with it: several times faster on the labelled sets
# (thousands of messages and questions read at every ingest), same nodes and line marks.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def syntax_error_line(exc: yaml.MarkedYAMLError) -> int | None:
    """The line to fix for a YAML syntax error, or None when YAML gives no position."""
    # An unclosed quote or bracket is reported at the end of the file; the
    # line where it was opened is the one to fix.
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
        mark = exc.context_mark
    return mark.line + 1 if mark else None


def mapping_items(node: yaml.MappingNode) -> Iterator[tuple[str | None, yaml.Node, yaml.Node]]:
    """(key, key node, value node) in file order; the key is None when it is not a scalar."""
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
        yield key, key_node, value_node


def closest_key(key: object, allowed: tuple[str, ...]) -> str | None:
    """The allowed key an unknown one was probably meant to be (a typo), if any."""
    hint = difflib.get_close_matches(str(key), allowed, n=1)
    return hint[0] if hint else None
