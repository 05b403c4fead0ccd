"""`python -m bot ask` and `python -m bot chat` as testers and operators use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bot(*args, stdin=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=os.environ.copy(), timeout=timeout)


def test_ask_json_prints_one_reply_with_text_kind_sources_latency():
    result = run_bot("ask", "--json", "花呗逾期一个月会怎么催收")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["kind"] == "answer"
    assert reply["text"]
    assert reply["sources"][0]["id"] == "collection-one-month"
    assert {"id", "title", "score"} <= set(reply["sources"][0])
    assert reply["latency_ms"] >= 0


def test_ask_without_json_shows_numbered_sources():
    result = run_bot("ask", "催收骚扰我去哪投诉")
    assert result.returncode == 0, result.stderr
    assert "来源：" in result.stdout and "①" in result.stdout


def test_chat_json_gives_exactly_one_object_per_message_and_ignores_blank_lines():
    lines = ["催收打电话骂我", "", "那怎么办", "   ", "/reset", "那怎么办", "😀", "\x01\x02", "<i>x</i>",
             "逾" * 20000, "今天天气怎么样"]
    result = run_bot("chat", "--json", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(replies) == len([l for l in lines if l.strip()])
    kinds = [r["kind"] for r in replies]
    assert kinds[0] == "answer" and kinds[1] == "answer"
    assert kinds[2] == "notice"  # /reset says so
    assert kinds[3] == "clarify"  # no context after /reset
    assert kinds[-1] == "decline"
    for reply in replies:
        assert {"text", "kind", "sources", "latency_ms", "suggestions"} <= set(reply)


def test_missing_store_is_a_clear_message_not_a_traceback(tmp_path):
    env = os.environ.copy()
    env["CHROMA_PATH"] = str(tmp_path / "nothing-here")
    result = subprocess.run([sys.executable, "-m", "bot", "ask", "你好"], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode != 0
    assert "python -m ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_keyword_tokenizer_caches_in_the_data_folder(engine, settings):
    """jieba's dictionary cache goes into DATA_DIR, not /tmp (see DEVELOPERS.md)."""
    jieba_dir = settings.data_dir / "jieba"
    names = {p.name for p in jieba_dir.iterdir()}
    assert any(n.startswith("jieba-dict-freq") for n in names)
    assert any(n.endswith(".cache") for n in names)
