"""Terminal front ends: `ask` (one answer) and `chat` (one conversation on stdin)."""

from __future__ import annotations

import json
import sys
import uuid

from bot.reply import Reply
from bot.sessions import MemorySessionStore

CIRCLED = "①②③④⑤⑥⑦⑧⑨"


def format_reply(reply: Reply) -> str:
    """A friendly plain-text rendering: the answer, then numbered sources and follow-ups."""
    lines = [reply.text]
    if reply.sources:
        lines.append("")
        lines.append("来源：")
        for i, source in enumerate(reply.sources):
            basis = f"（依据：{source.basis}）" if source.basis else ""
            lines.append(f"  {CIRCLED[i] if i < len(CIRCLED) else i + 1} {source.title}{basis}")
    if reply.suggestions:
        lines.append("")
        lines.append("你还可以问：" + " / ".join(reply.suggestions))
    return "\n".join(lines)


def emit(reply: Reply, as_json: bool, out=None) -> None:
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(reply.to_json(), ensure_ascii=False) + "\n")
    else:
        out.write(format_reply(reply) + "\n\n")
    out.flush()


def ask(question: str, as_json: bool) -> int:
    from bot.dialogue import build_engine

    # One question, one answer: nothing about it is stored.
    engine = build_engine(sessions=MemorySessionStore())
    emit(engine.handle("cli-ask", question), as_json)
    return 0


def chat(as_json: bool, stdin=None, conversation_id: str | None = None) -> int:
    """One conversation, one message per line. Blank lines are ignored; /reset starts over.

    `conversation_id` continues a stored conversation (e.g. one shared through Redis)."""
    from bot.dialogue import build_engine

    stdin = stdin or sys.stdin
    interactive = not as_json and stdin.isatty()
    engine = build_engine()
    conversation_id = conversation_id or f"cli-{uuid.uuid4().hex}"
    if interactive:
        print("你好，我可以解答花呗、借呗等欠款逾期的问题。输入 /reset 重新开始，/forget 删除记录，"
              "/complaint 写投诉材料，/negotiate 准备协商话术，Ctrl-D 退出。\n")
    while True:
        if interactive:
            sys.stdout.write("你：")
            sys.stdout.flush()
        raw = stdin.readline()
        if not raw:
            break
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            reply = engine.handle(conversation_id, line)
        except Exception:  # one bad turn must not end the conversation
            import logging

            logging.getLogger(__name__).exception("turn failed")
            reply = Reply("抱歉，我这边出了点问题，请再发一次试试。", "notice")
        emit(reply, as_json)
    return 0
