"""Conversation fixtures: YAML files read into Conversations, every problem as `file:line`.

A fixture is a YAML file holding one conversation (a mapping with `name` and
`turns`) or a list of them; see docs/replay.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.yamlnodes import closest_key, mapping_items, node_line, syntax_error_line

KINDS = ("answer", "decline", "crisis", "clarify", "notice", "draft")
FIXTURE_SUFFIXES = (".yaml", ".yml")
TRANSCRIPT_SUFFIX = ".transcript.yaml"

CONVERSATION_KEYS = ("name", "description", "turns")
TURN_KEYS = ("user", "expect")
EXPECT_KEYS = ("kind", "contains_any", "contains_all", "not_contains", "cites", "suggestions_min", "suggests_any",
               "one_of")


class FixtureError(Exception):
    """A fixture file that cannot be used; str() is `file:line: message`."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = Path(path), line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Expect:
    line: int
    kind: tuple[str, ...] = ()
    contains_any: tuple[str, ...] = ()
    contains_all: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    cites: tuple[str, ...] = ()
    suggestions_min: int | None = None
    suggests_any: tuple[str, ...] = ()  # a suggestion (button) contains one of these
    # Alternatives, each a whole set of checks; the turn passes if one of them does (with the
    # checks beside `one_of`). For a reply that may fairly be an answer or a choice of two.
    one_of: tuple["Expect", ...] = ()

    def describe(self) -> str:
        parts = []
        if self.kind:
            parts.append("kind " + " or ".join(self.kind))
        if self.contains_any:
            parts.append(f"contains any of {bracket_list(self.contains_any)}")
        if self.contains_all:
            parts.append(f"contains all of {bracket_list(self.contains_all)}")
        if self.not_contains:
            parts.append(f"contains none of {bracket_list(self.not_contains)}")
        if self.cites:
            parts.append(f"cites {bracket_list(self.cites)}")
        if self.suggestions_min is not None:
            parts.append(f"at least {self.suggestions_min} suggestions")
        if self.suggests_any:
            parts.append(f"suggests any of {bracket_list(self.suggests_any)}")
        if self.one_of:
            parts.append("one of: " + " | ".join(f"({alternative.describe()})" for alternative in self.one_of))
        return "; ".join(parts) or "(no checks)"


@dataclass(frozen=True)
class Turn:
    user: str
    line: int
    expect: Expect | None = None


@dataclass(frozen=True)
class Conversation:
    name: str
    path: Path
    line: int
    turns: tuple[Turn, ...]
    description: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def bracket_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _construct(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


class _Parser:
    """Turns composed YAML nodes into Conversations, with file:line on every error."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, node: yaml.Node | None, message: str) -> FixtureError:
        return FixtureError(self.path, node_line(node) if node is not None else None, message)

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (keys: {', '.join(allowed)})")
        seen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, key_node, value_node in mapping_items(node):
            if key not in allowed:
                hint = closest_key(key, allowed)
                message = f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})"
                raise self.error(key_node, message + (f"; did you mean {hint!r}?" if hint else ""))
            if key in seen:
                raise self.error(key_node, f"duplicate key {key!r} in {what}")
            seen[key] = (key_node, value_node)
        return seen

    def text(self, node: yaml.Node, what: str, allow_empty: bool = False) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.error(node, f"{what} must be text")
        # The scalar as written: `user: 12345` sends "12345", `user: yes` sends "yes".
        value = node.value
        if not allow_empty and not value.strip():
            raise self.error(node, f"{what} must not be empty")
        return value

    def texts(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        return tuple(self.text(item, f"each entry of {what}") for item in items)

    def expect(self, node: yaml.Node) -> Expect:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            raise self.error(node, "expect is empty: give at least one check, or leave `expect` out")
        fields = self.mapping(node, EXPECT_KEYS, "expect")
        values: dict[str, Any] = {}
        for key, (_key_node, value) in fields.items():
            if key == "suggestions_min":
                number = _construct(value)
                if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                    raise self.error(value, "suggestions_min must be a whole number >= 0")
                values[key] = number
                continue
            if key == "one_of":
                if not isinstance(value, yaml.SequenceNode) or not value.value:
                    raise self.error(value, "one_of must be a non-empty list of checks")
                values[key] = tuple(self.expect(item) for item in value.value)
                continue
            values[key] = self.texts(value, key)
            if key == "kind":
                for kind in values[key]:
                    if kind not in KINDS:
                        raise self.error(value, f"unknown kind {kind!r} (one of: {', '.join(KINDS)})")
        return Expect(line=node_line(node), **values)

    def turn(self, node: yaml.Node) -> Turn:
        fields = self.mapping(node, TURN_KEYS, "turn")
        if "user" not in fields:
            raise self.error(node, "turn has no `user` message")
        user = self.text(fields["user"][1], "user", allow_empty=True)
        expect = self.expect(fields["expect"][1]) if "expect" in fields else None
        return Turn(user=user, line=node_line(node), expect=expect)

    def conversation(self, node: yaml.Node) -> Conversation:
        fields = self.mapping(node, CONVERSATION_KEYS, "conversation")
        if "name" not in fields:
            raise self.error(node, "conversation has no `name`")
        if "turns" not in fields:
            raise self.error(node, "conversation has no `turns`")
        name = self.text(fields["name"][1], "name").strip()
        turns_node = fields["turns"][1]
        if not isinstance(turns_node, yaml.SequenceNode) or not turns_node.value:
            raise self.error(turns_node, "turns must be a non-empty list")
        description = ""
        if "description" in fields:
            description = self.text(fields["description"][1], "description", allow_empty=True)
        return Conversation(
            name=name,
            path=self.path,
            line=node_line(node),
            turns=tuple(self.turn(t) for t in turns_node.value),
            description=description,
        )

    def document(self, root: yaml.Node | None) -> list[Conversation]:
        if root is None:
            raise self.error(None, "empty fixture: expected a conversation (name, turns) or a list of them")
        nodes = root.value if isinstance(root, yaml.SequenceNode) else [root]
        if not nodes:
            raise self.error(root, "empty list of conversations")
        conversations, names = [], {}
        for node in nodes:
            conversation = self.conversation(node)
            if conversation.name in names:
                raise self.error(
                    node, f"duplicate conversation name {conversation.name!r} (first at line {names[conversation.name]})"
                )
            names[conversation.name] = conversation.line
            conversations.append(conversation)
        return conversations


def load_fixture_file(path: Path | str) -> list[Conversation]:
    """The conversations in one fixture file; FixtureError names file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(path, None, f"cannot read: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise FixtureError(path, syntax_error_line(exc), f"not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise FixtureError(path, None, f"not valid YAML: {exc}") from exc
    return _Parser(path).document(root)


def is_fixture_file(path: Path) -> bool:
    return path.suffix in FIXTURE_SUFFIXES and not path.name.endswith(TRANSCRIPT_SUFFIX)


def find_fixture_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, folders searched recursively (transcripts excluded); FixtureError if none."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and is_fixture_file(p))
            if not inside:
                raise FixtureError(path, None, "no fixture files (*.yaml) in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise FixtureError(path, None, "no such file or folder")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise FixtureError(Path("."), None, "no fixture files given")
    return unique


def load_fixtures(paths: Iterable[Path | str]) -> tuple[dict[Path, list[Conversation]], list[FixtureError]]:
    """Every conversation by file, and every fixture error (one per broken file)."""
    try:
        files = find_fixture_files(paths)
    except FixtureError as exc:
        return {}, [exc]
    loaded: dict[Path, list[Conversation]] = {}
    errors = []
    for path in files:
        try:
            loaded[path] = load_fixture_file(path)
        except FixtureError as exc:
            errors.append(exc)
    return loaded, errors
