"""Transcripts: `--record` keeps the replies beside each fixture, `--diff` compares with them."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.replay.fixtures import TRANSCRIPT_SUFFIX, FixtureError

if TYPE_CHECKING:
    from bot.replay.runner import ConversationResult


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
