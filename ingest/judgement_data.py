"""Load and validate the labelled messages in knowledge/judgement/*.yaml.

Each file holds one label's messages, and under `looks_like` the messages of
that label worded like another one (the other label's hard negatives):

    label: victim
    messages:
      - 催收每次都换个号码打过来
    looks_like:
      evasion:
        - 催收换号码给我打电话怎么办

Every problem names its file and line; nothing is built when there is one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.judgement.labels import LABELS
from bot.splits import is_held_out
from bot.textnorm import normalise_query
from ingest.problems import Problem
from ingest.yamlfile import compose_file, mapping_fields, node_line, scalar_text

FIELDS = ("label", "messages", "looks_like")


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    label: str
    file: str
    line: int
    looks_like: str | None = None  # the label this message is a hard negative for

    @property
    def held_out(self) -> bool:
        return is_held_out(self.text)


def _messages(node: yaml.Node, display: str, what: str, problems: list[Problem]) -> list[tuple[str, int]]:
    if not isinstance(node, yaml.SequenceNode):
        problems.append(Problem(display, node_line(node), f"'{what}' must be a list of messages"))
        return []
    out = []
    for item in node.value:
        text = scalar_text(item)
        if text is None or not text.strip():
            problems.append(Problem(display, node_line(item), f"'{what}': each item must be a non-empty message"))
            continue
        out.append((text.strip(), node_line(item)))
    return out


def load_file(path: Path, display: str) -> tuple[list[LabelledMessage], list[Problem]]:
    root, problems = compose_file(path, display)
    if problems:
        return [], problems
    if not isinstance(root, yaml.MappingNode):
        line = node_line(root) if root is not None else 1
        return [], [Problem(display, line, "expected a mapping with 'label', 'messages' and optional 'looks_like'")]
    fields = mapping_fields(root, display, "file", problems)
    for key, node in fields.items():
        if key not in FIELDS:
            problems.append(Problem(display, node_line(node), f"unknown field '{key}' (allowed: {', '.join(FIELDS)})"))
    label = scalar_text(fields["label"]) if "label" in fields else None
    if label is None:
        return [], problems + [Problem(display, 1, "missing field 'label'")]
    if label not in LABELS:
        return [], problems + [Problem(display, node_line(fields["label"]),
                                       f"unknown label '{label}' (known: {', '.join(LABELS)})")]
    messages = [LabelledMessage(text, label, display, line)
                for text, line in _messages(fields["messages"], display, "messages", problems)] \
        if "messages" in fields else []
    looks_like = fields.get("looks_like")
    if looks_like is not None:
        if not isinstance(looks_like, yaml.MappingNode):
            problems.append(Problem(display, node_line(looks_like), "'looks_like' must map a label to messages"))
        else:
            for key_node, node in looks_like.value:
                other = str(key_node.value)
                if other not in LABELS or other == label:
                    problems.append(Problem(display, node_line(key_node),
                                            f"looks_like '{other}' must be another known label"))
                    continue
                messages += [LabelledMessage(text, label, display, line, other)
                             for text, line in _messages(node, display, f"looks_like {other}", problems)]
    if not messages:
        problems.append(Problem(display, 1, "no messages"))
    return messages, problems


def load_labelled_messages(folder: Path, display=str) -> tuple[list[LabelledMessage], list[Problem]]:
    """Every labelled message under `folder`; a message given twice is a problem (with both lines)."""
    messages: list[LabelledMessage] = []
    problems: list[Problem] = []
    for path in sorted(Path(folder).glob("*.y*ml")):
        loaded, found = load_file(path, display(path))
        messages += loaded
        problems += found
    seen: dict[str, LabelledMessage] = {}
    for message in messages:
        key = normalise_query(message.text).replace(" ", "")
        first = seen.setdefault(key, message)
        if first is not message:
            clash = "with another label" if first.label != message.label else "again"
            problems.append(Problem(message.file, message.line,
                                    f"message given {clash} (first at {first.file}:{first.line}, "
                                    f"label {first.label})"))
    return messages, problems


def content_hash(messages: list[LabelledMessage]) -> str:
    payload = "\n".join(f"{m.label}\t{m.text}" for m in sorted(messages, key=lambda m: (m.label, m.text)))
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]
