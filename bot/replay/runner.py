"""Running conversations: each turn sent through a transport, its reply checked."""

from __future__ import annotations

import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

from bot.replay.fixtures import Conversation, Expect, FixtureError, Turn, bracket_list, load_fixtures
from bot.replay.transcripts import Change, diff_transcript, write_transcript

Transport = Callable[[str, str], Any]  # (conversation_id, text) -> Reply
TransportFactory = Callable[[], ContextManager[Transport]]

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


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
        problems.append(f"text contains none of {bracket_list(expect.contains_any)}")
    missing = [s for s in expect.contains_all if not _contains(text, s)]
    if missing:
        problems.append(f"text lacks {bracket_list(missing)}")
    present = [s for s in expect.not_contains if _contains(text, s)]
    if present:
        problems.append(f"text contains {bracket_list(present)}, which it must not")
    cited = [s.id for s in reply.sources]
    uncited = [s for s in expect.cites if s not in cited]
    if uncited:
        problems.append(f"does not cite {bracket_list(uncited)} (cited: {bracket_list(cited) if cited else 'nothing'})")
    if expect.suggestions_min is not None and len(reply.suggestions) < expect.suggestions_min:
        problems.append(
            f"{len(reply.suggestions)} suggestion(s), expected at least {expect.suggestions_min}"
        )
    if expect.suggests_any and not any(_contains(s, n) for s in reply.suggestions for n in expect.suggests_any):
        problems.append(f"no suggestion contains any of {bracket_list(expect.suggests_any)}")
    if expect.one_of:
        failures = [check_reply(alternative, reply) for alternative in expect.one_of]
        if all(failures):
            problems.append("matches none of the alternatives: "
                            + " | ".join(f"({'; '.join(f)})" for f in failures))
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
