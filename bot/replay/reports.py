"""Reports of a replay: the readable text, and JUnit XML for CI."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from bot.replay.runner import ConversationResult, ReplayResult, TurnResult

TEXT_HEAD_CHARS = 160


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
