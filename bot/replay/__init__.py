"""Replay conversation fixtures through the dialogue engine and check the replies.

    python -m bot replay PATH... [--json] [--junit FILE] [--record] [--diff] [--via engine|telegram]

A fixture is a YAML file holding one conversation (a mapping with `name` and
`turns`) or a list of them; see docs/replay.md. Each conversation runs in a
fresh conversation id. Exit codes: 0 all passed, 1 a turn failed (or, with
--diff, a reply changed since the last transcript), 2 a fixture error or the
replay could not run.

The engine is reached through a *transport*: any callable
`(conversation_id, text) -> Reply`. `--via engine` calls the dialogue engine
in-process; other front ends register a factory in `TRANSPORTS` (a context
manager yielding the transport, so it can start and stop what it needs).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import sys
import tempfile
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator

import yaml

Transport = Callable[[str, str], Any]  # (conversation_id, text) -> Reply
TransportFactory = Callable[[], ContextManager[Transport]]

KINDS = ("answer", "decline", "crisis", "clarify", "notice")
FIXTURE_SUFFIXES = (".yaml", ".yml")
TRANSCRIPT_SUFFIX = ".transcript.yaml"

CONVERSATION_KEYS = ("name", "description", "turns")
TURN_KEYS = ("user", "expect")
EXPECT_KEYS = ("kind", "contains_any", "contains_all", "not_contains", "cites", "suggestions_min")

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
TEXT_HEAD_CHARS = 160


# --- fixtures ----------------------------------------------------------------------------


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

    def describe(self) -> str:
        parts = []
        if self.kind:
            parts.append("kind " + " or ".join(self.kind))
        if self.contains_any:
            parts.append(f"contains any of {_list(self.contains_any)}")
        if self.contains_all:
            parts.append(f"contains all of {_list(self.contains_all)}")
        if self.not_contains:
            parts.append(f"contains none of {_list(self.not_contains)}")
        if self.cites:
            parts.append(f"cites {_list(self.cites)}")
        if self.suggestions_min is not None:
            parts.append(f"at least {self.suggestions_min} suggestions")
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


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _construct(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


class _Parser:
    """Turns composed YAML nodes into Conversations, with file:line on every error."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, node: yaml.Node | None, message: str) -> FixtureError:
        return FixtureError(self.path, _line(node) if node is not None else None, message)

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (keys: {', '.join(allowed)})")
        seen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                message = f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})"
                raise self.error(key_node, message + (f"; did you mean {hint[0]!r}?" if hint else ""))
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
            values[key] = self.texts(value, key)
            if key == "kind":
                for kind in values[key]:
                    if kind not in KINDS:
                        raise self.error(value, f"unknown kind {kind!r} (one of: {', '.join(KINDS)})")
        return Expect(line=_line(node), **values)

    def turn(self, node: yaml.Node) -> Turn:
        fields = self.mapping(node, TURN_KEYS, "turn")
        if "user" not in fields:
            raise self.error(node, "turn has no `user` message")
        user = self.text(fields["user"][1], "user", allow_empty=True)
        expect = self.expect(fields["expect"][1]) if "expect" in fields else None
        return Turn(user=user, line=_line(node), expect=expect)

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
            line=_line(node),
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
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FixtureError(path, line, f"not valid YAML: {exc.problem or exc}") from exc
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


# --- running -----------------------------------------------------------------------------


@dataclass
class TurnResult:
    number: int  # 1-based
    turn: Turn
    reply: Any = None  # Reply, or None when the transport raised
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # the transport's exception, if any
    trace: str | None = None  # ... and its traceback
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and self.error is None

    def transcript(self) -> dict:
        """What --record keeps for this turn (no latency or scores: they always change)."""
        entry: dict[str, Any] = {"user": self.turn.user}
        if self.error is not None:
            entry["error"] = self.error
            return entry
        reply = self.reply
        entry["kind"] = reply.kind
        entry["text"] = reply.text
        entry["sources"] = [s.id for s in reply.sources]
        entry["suggestions"] = list(reply.suggestions)
        return entry

    def to_json(self) -> dict:
        reply = self.reply
        return {
            "turn": self.number,
            "line": self.turn.line,
            "user": self.turn.user,
            "checked": self.turn.expect is not None,
            "passed": self.passed,
            "problems": self.problems,
            "error": self.error,
            "trace": self.trace,
            "reply": reply.to_json() if hasattr(reply, "to_json") else None,
        }


@dataclass
class ConversationResult:
    conversation: Conversation
    conversation_id: str
    turns: list[TurnResult]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.turns)

    @property
    def failed_turns(self) -> list[TurnResult]:
        return [t for t in self.turns if not t.passed]

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.turns)

    def to_json(self) -> dict:
        return {
            "name": self.conversation.name,
            "file": str(self.conversation.path),
            "line": self.conversation.line,
            "passed": self.passed,
            "turns": [t.to_json() for t in self.turns],
        }


@dataclass
class Change:
    """A turn whose reply differs from the last transcript (or a missing transcript)."""

    path: Path
    conversation: str
    turn: int | None
    user: str
    diff: str

    def headline(self) -> str:
        if not self.conversation:
            return f"CHANGED {self.path}"
        where = f", turn {self.turn}: {self.user}" if self.turn else ""
        return f"CHANGED {self.conversation} ({self.path}){where}"

    def to_json(self) -> dict:
        return {"file": str(self.path), "conversation": self.conversation, "turn": self.turn,
                "user": self.user, "diff": self.diff}


@dataclass
class ReplayResult:
    conversations: list[ConversationResult] = field(default_factory=list)
    errors: list[FixtureError] = field(default_factory=list)
    changes: list[Change] | None = None  # None unless --diff
    transcripts: list[Path] = field(default_factory=list)  # written by --record

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ERROR
        if any(not c.passed for c in self.conversations) or self.changes:
            return EXIT_FAILED
        return EXIT_OK

    def summary(self) -> str:
        if self.errors and not self.conversations:
            files = len({e.path for e in self.errors})
            return f"replay: {len(self.errors)} fixture error(s) in {files} file(s); nothing was run"
        turns = sum(len(c.turns) for c in self.conversations)
        failed = sum(not c.passed for c in self.conversations)
        line = (
            f"replay: {len(self.conversations)} conversations, {turns} turns: "
            f"{len(self.conversations) - failed} passed, {failed} failed"
        )
        if self.changes is not None:
            changed = len(self.changes)
            line += f"; {changed} change(s) since the last transcript" if changed else "; no changes since the last transcript"
        if self.errors:
            line += f"; {len(self.errors)} unreadable transcript(s)"
        return line

    def to_json(self) -> dict:
        return {
            "summary": self.summary(),
            "exit_code": self.exit_code,
            "errors": [str(e) for e in self.errors],
            "conversations": [c.to_json() for c in self.conversations],
            "changes": None if self.changes is None else [c.to_json() for c in self.changes],
            "transcripts": [str(p) for p in self.transcripts],
        }


def _contains(text: str, needle: str) -> bool:
    return needle.casefold() in text.casefold()


def check_reply(expect: Expect, reply: Any) -> list[str]:
    """What is wrong with `reply` against `expect` (empty when it passes)."""
    problems = []
    text = reply.text or ""
    if expect.kind and reply.kind not in expect.kind:
        problems.append(f"kind is {reply.kind}, expected {' or '.join(expect.kind)}")
    if expect.contains_any and not any(_contains(text, s) for s in expect.contains_any):
        problems.append(f"text contains none of {_list(expect.contains_any)}")
    missing = [s for s in expect.contains_all if not _contains(text, s)]
    if missing:
        problems.append(f"text lacks {_list(missing)}")
    present = [s for s in expect.not_contains if _contains(text, s)]
    if present:
        problems.append(f"text contains {_list(present)}, which it must not")
    cited = [s.id for s in reply.sources]
    uncited = [s for s in expect.cites if s not in cited]
    if uncited:
        problems.append(f"does not cite {_list(uncited)} (cited: {_list(cited) if cited else 'nothing'})")
    if expect.suggestions_min is not None and len(reply.suggestions) < expect.suggestions_min:
        problems.append(
            f"{len(reply.suggestions)} suggestion(s), expected at least {expect.suggestions_min}"
        )
    return problems


def new_conversation_id() -> str:
    return f"replay-{uuid.uuid4().hex[:16]}"


def run_conversation(
    conversation: Conversation, transport: Transport, conversation_id: str | None = None
) -> ConversationResult:
    """Send every turn in order in one fresh conversation; check the turns that expect something."""
    conversation_id = conversation_id or new_conversation_id()
    results = []
    for number, turn in enumerate(conversation.turns, start=1):
        result = TurnResult(number=number, turn=turn)
        started = time.perf_counter()
        try:
            result.reply = transport(conversation_id, turn.user)
        except Exception as exc:  # noqa: BLE001 - a crash is a failed turn, the replay goes on
            result.error = f"{type(exc).__name__}: {exc}"
            result.problems.append("the engine raised " + result.error)
            result.trace = traceback.format_exc()
        else:
            if not all(hasattr(result.reply, a) for a in ("text", "kind", "sources", "suggestions")):
                result.error = f"the engine returned {type(result.reply).__name__}, not a Reply"
                result.problems.append(result.error)
                result.reply = None
        result.seconds = time.perf_counter() - started
        if result.reply is not None and turn.expect is not None:
            result.problems.extend(check_reply(turn.expect, result.reply))
        results.append(result)
    return ConversationResult(conversation=conversation, conversation_id=conversation_id, turns=results)


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


def engine_as_transport(engine: Any) -> Transport:
    return engine.handle


def run_replay(
    paths: Iterable[Path | str],
    engine: Any = None,
    *,
    transport: Transport | None = None,
    record: bool = False,
    diff: bool = False,
) -> ReplayResult:
    """Replay fixture files/folders through `engine.handle` (or `transport`).

    Nothing runs when a fixture is broken (result.errors, exit code 2). With
    `diff`, replies are compared with the last transcripts before `record`
    overwrites them.
    """
    if transport is None:
        if engine is None:
            raise ValueError("run_replay needs an engine or a transport")
        transport = engine_as_transport(engine)
    loaded, errors = load_fixtures(paths)
    if errors:
        return ReplayResult(errors=errors)
    result = ReplayResult(changes=[] if diff else None)
    by_file: dict[Path, list[ConversationResult]] = {}
    for path, conversations in loaded.items():
        by_file[path] = [run_conversation(c, transport) for c in conversations]
        result.conversations.extend(by_file[path])
    if diff:
        for path, results in by_file.items():
            try:
                result.changes.extend(diff_transcript(path, results))  # type: ignore[union-attr]
            except FixtureError as exc:
                result.errors.append(exc)
    if record and not result.errors:
        for path, results in by_file.items():
            result.transcripts.append(write_transcript(path, results))
    return result


# --- transcripts: --record and --diff -----------------------------------------------------

TRANSCRIPT_HEADER = """\
# Transcript of {fixture}: the bot's replies as recorded by
#   python -m bot replay --record {fixture}
# Review them; promote what must keep holding into `expect:` in the fixture.
# `python -m bot replay --diff` shows what changed since this recording.
"""


def transcript_path(fixture: Path) -> Path:
    return fixture.with_name(fixture.stem + TRANSCRIPT_SUFFIX)


class _TranscriptDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None  # multi-line replies stay readable
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TranscriptDumper.add_representer(str, _represent_str)


def write_transcript(fixture: Path, results: list[ConversationResult]) -> Path:
    """Write `<fixture>.transcript.yaml` beside the fixture (atomically)."""
    data = {
        "conversations": [
            {"name": r.conversation.name, "turns": [t.transcript() for t in r.turns]} for r in results
        ]
    }
    body = yaml.dump(data, Dumper=_TranscriptDumper, allow_unicode=True, sort_keys=False, width=1000)
    target = transcript_path(fixture)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(TRANSCRIPT_HEADER.format(fixture=fixture.as_posix()) + body, encoding="utf-8")
    os.replace(tmp, target)
    return target


def read_transcript(fixture: Path) -> dict[str, list[dict]] | None:
    """Recorded turns by conversation name, or None when there is no transcript yet."""
    path = transcript_path(fixture)
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return {c["name"]: list(c["turns"]) for c in data["conversations"]}
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise FixtureError(path, None, f"unreadable transcript ({exc}); re-record it with --record") from exc


def render_turn(entry: dict | None) -> list[str]:
    """One recorded turn as diffable lines."""
    if entry is None:
        return []
    lines = [f"user: {entry.get('user', '')}"]
    if entry.get("error") is not None:
        return lines + [f"error: {entry['error']}"]
    lines.append(f"kind: {entry.get('kind')}")
    lines.append("text:")
    lines += ["  " + line for line in str(entry.get("text", "")).splitlines()]
    lines.append("sources: " + ", ".join(entry.get("sources") or []))
    lines.append("suggestions: " + " | ".join(entry.get("suggestions") or []))
    return lines


def diff_transcript(fixture: Path, results: list[ConversationResult]) -> list[Change]:
    """Per turn, what differs between the last transcript and the current replies."""
    recorded = read_transcript(fixture)
    if recorded is None:
        return [Change(fixture, "", None, "",
                       f"no transcript yet at {transcript_path(fixture)}: run with --record first")]
    changes = []
    for result in results:
        name = result.conversation.name
        old_turns = recorded.pop(name, None)
        if old_turns is None:
            changes.append(Change(fixture, name, None, "", "new conversation: not in the last transcript"))
            continue
        current = [t.transcript() for t in result.turns]
        for number in range(1, max(len(old_turns), len(current)) + 1):
            old = old_turns[number - 1] if number <= len(old_turns) else None
            new = current[number - 1] if number <= len(current) else None
            before, after = render_turn(old), render_turn(new)
            if before == after:
                continue
            text = "\n".join(
                difflib.unified_diff(before, after, "recorded", "current", n=max(len(before), len(after)), lineterm="")
            )
            user = (new or old or {}).get("user", "")
            changes.append(Change(fixture, name, number, user, text))
    for name in recorded:
        changes.append(Change(fixture, name, None, "", "conversation removed: in the last transcript only"))
    return changes


# --- reports -----------------------------------------------------------------------------


def _head(text: str, limit: int = TEXT_HEAD_CHARS) -> str:
    flat = " ⏎ ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _block(label: str, lines: list[str]) -> list[str]:
    pad = " " * 14
    out = [f"    {label:<10}{lines[0] if lines else ''}"]
    out += [pad + line for line in lines[1:]]
    return out


def format_turn_failure(result: ConversationResult, turn: TurnResult) -> str:
    conversation = result.conversation
    lines = [
        f"FAIL {conversation.name} ({conversation.path}:{turn.turn.line}) "
        f"turn {turn.number} of {len(conversation.turns)}",
    ]
    lines += _block("sent:", [turn.turn.user or '""'])
    lines += _block("expected:", [turn.turn.expect.describe() if turn.turn.expect else "(no checks: context only)"])
    lines += _block("problems:", turn.problems)
    reply = turn.reply
    if reply is None:
        trace = (turn.trace or "").strip().splitlines()[-6:]
        lines += _block("got:", [f"an error: {turn.error}"] + trace)
    else:
        sources = ", ".join(f"{s.id} ({s.title})" if s.title else s.id for s in reply.sources) or "(none)"
        got = [f"kind {reply.kind}", f"text: {_head(reply.text)}", f"sources: {sources}"]
        if reply.suggestions:
            got.append("suggestions: " + " | ".join(reply.suggestions))
        lines += _block("got:", got)
    return "\n".join(lines)


def format_conversation(result: ConversationResult) -> str:
    """The readable report for one conversation's failing turns (empty when it passed)."""
    return "\n\n".join(format_turn_failure(result, t) for t in result.failed_turns)


def format_report(result: ReplayResult, verbose: bool = False) -> str:
    blocks = []
    if result.errors:
        blocks.append("\n".join(f"fixture error: {e}" for e in result.errors))
    if verbose:
        passed = [c for c in result.conversations if c.passed]
        if passed:
            blocks.append("\n".join(f"ok   {c.conversation.name} ({len(c.turns)} turns)" for c in passed))
    blocks += [format_conversation(c) for c in result.conversations if not c.passed]
    for change in result.changes or []:
        blocks.append(change.headline() + "\n" + "\n".join("    " + l for l in change.diff.splitlines()))
    for path in result.transcripts:
        blocks.append(f"recorded {path}")
    blocks.append(result.summary())
    return "\n\n".join(blocks)


# Characters XML 1.0 cannot hold (bad-input fixtures may send them).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(result: ReplayResult) -> str:
    """JUnit XML: one testcase per conversation (class = fixture file)."""
    suite = ET.Element("testsuite", name="replay")
    failures = errors = 0
    for error in result.errors:
        case = ET.SubElement(suite, "testcase", classname=str(error.path), name="fixture", time="0")
        ET.SubElement(case, "error", message=_xml_text(error.message)).text = _xml_text(str(error))
        errors += 1
    for conv in result.conversations:
        case = ET.SubElement(
            suite, "testcase", classname=str(conv.conversation.path), name=_xml_text(conv.conversation.name),
            time=f"{conv.seconds:.3f}",
        )
        if conv.passed:
            continue
        first = conv.failed_turns[0]
        message = f"turn {first.number}: {'; '.join(first.problems)}"
        crashed = any(t.error for t in conv.turns)
        element = ET.SubElement(case, "error" if crashed else "failure", message=_xml_text(message))
        element.text = _xml_text(format_conversation(conv))
        errors += crashed
        failures += not crashed
    total = len(result.conversations) + len(result.errors)
    seconds = sum(c.seconds for c in result.conversations)
    suite.set("tests", str(total))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{seconds:.3f}")
    root = ET.Element("testsuites", name="replay", tests=str(total), failures=str(failures),
                      errors=str(errors), time=f"{seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- transports and the command line -----------------------------------------------------


def replay_settings(settings: Any, session_dir: Path) -> Any:
    """Settings for replay: sessions in a throwaway SQLite file, never the real store or Redis."""
    return settings.model_copy(
        update={"session_db": Path(session_dir) / "replay-sessions.sqlite3", "redis_url": None}
    )


class ReplayUsageError(Exception):
    """The replay cannot run as asked (exit code 2)."""


@contextlib.contextmanager
def _replay_engine(engine: Any = None) -> Iterator[Any]:
    """`engine` as given, or the dialogue engine built here with its own temporary session store."""
    if engine is not None:
        yield engine
        return
    from bot.dialogue import build_engine
    from bot.settings import get_settings, prepare_runtime_environment

    with tempfile.TemporaryDirectory(prefix="replay-sessions-") as tmp:
        settings = replay_settings(get_settings(), Path(tmp))
        prepare_runtime_environment(settings)
        built = build_engine(settings)
        try:
            yield built
        finally:
            close = getattr(built, "close", None)
            if callable(close):
                close()


@contextlib.contextmanager
def engine_transport(engine: Any = None) -> Iterator[Transport]:
    """The dialogue engine in this process (built with its own temporary session store,
    unless `engine` is given)."""
    with _replay_engine(engine) as used:
        yield engine_as_transport(used)


@contextlib.contextmanager
def telegram_transport(engine: Any = None) -> Iterator[Transport]:
    """The real Telegram front end (bot.telegram) against the local fake Bot API, in a
    background thread, around the dialogue engine (or `engine`); see bot/telegram/replay.py."""
    from bot.settings import get_settings
    from bot.telegram.replay import TelegramReplay

    with _replay_engine(engine) as used, tempfile.TemporaryDirectory(prefix="replay-sessions-") as tmp:
        with TelegramReplay(used, replay_settings(get_settings(), Path(tmp))) as transport:
            yield transport


# --via NAME -> a factory returning a context manager that yields the transport. Called
# with `engine=` (main(..., engine=...)), it reaches that engine instead of building one.
TRANSPORTS: dict[str, TransportFactory] = {
    "engine": engine_transport,
    "telegram": telegram_transport,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot replay",
        description="Replay conversation fixtures through the bot and check its replies.",
        epilog="Exit codes: 0 all passed; 1 a turn failed or (with --diff) a reply changed; "
        "2 fixture error or the replay could not run.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="fixture files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one testcase per conversation)")
    parser.add_argument("--record", action="store_true", help="write <fixture>.transcript.yaml beside each fixture")
    parser.add_argument("--diff", action="store_true", help="show replies that changed since the last transcript")
    parser.add_argument("--via", default="engine", choices=sorted(TRANSPORTS), help="how to reach the bot (default: engine)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing conversations too")
    return parser


def main(argv: list[str] | None = None, *, engine: Any = None, transport: Transport | None = None) -> int:
    """`python -m bot replay ...`; argv are the arguments after `replay`.

    Tests pass `transport` to skip `--via`, or `engine` (anything with handle()) for
    `--via` to reach instead of building the dialogue engine.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "replay" and not Path(argv[0]).exists():
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (2)
        return int(exc.code or 0)

    # Check the fixtures before starting anything heavy.
    loaded, errors = load_fixtures(args.paths)
    if errors:
        result = ReplayResult(errors=errors)
        return _finish(result, args)

    try:
        with contextlib.ExitStack() as stack:
            if transport is None:
                factory = TRANSPORTS[args.via]
                try:
                    transport = stack.enter_context(factory(engine=engine) if engine is not None else factory())
                except ReplayUsageError as exc:
                    print(f"replay: {exc}", file=sys.stderr)
                    return EXIT_ERROR
                except Exception:  # noqa: BLE001 - say why the bot could not start
                    traceback.print_exc()
                    print(f"replay: could not start the bot via {args.via} (see above)", file=sys.stderr)
                    return EXIT_ERROR
            result = run_replay(args.paths, transport=transport, record=args.record, diff=args.diff)
    except KeyboardInterrupt:
        return 130
    return _finish(result, args)


def _finish(result: ReplayResult, args: argparse.Namespace) -> int:
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(junit_xml(result), encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_report(result, verbose=args.verbose))
    return result.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
