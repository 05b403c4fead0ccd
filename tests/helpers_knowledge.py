"""Shared helpers for the tests: knowledge copies, stores, CLI runs, the answerability setting.

Building a store from the real knowledge embeds ~390 chunks (several seconds),
so it is done once per test process (`base_store`) and every test copies the
result into its own tmp_path (`prepared_store`): each test still owns its store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
PYTHON = sys.executable

# A knowledge folder small enough to embed in a blink, for tests where the
# content does not matter (CLI plumbing, servers, other models).
TINY_FAQ = """\
- id: tiny-overdue
  title: 花呗逾期了怎么办
  topic: 催收流程
  tags: [花呗]
  questions:
    - hb逾期了怎么办
    - 花呗晚还了几天会怎样
  answer: |
    尽快在支付宝 App 里还款；一时还不上，就主动联系客服说明情况。
  sources:
    - seed-article
  related: [tiny-complain]
  reviewed: 2026-11-28

- id: tiny-complain
  title: 被催收骚扰去哪里投诉
  topic: 投诉维权
  tags: [投诉]
  questions:
    - 催收骚扰我 怎么投诉
    - 去哪里投诉催收
  answer: |
    可以拨打支付宝客服热线 95188，或在 App 内的在线客服提交投诉，并保存通话录音等证据。
  sources:
    - seed-article
  reviewed: 2026-11-28
"""
# The source registry the tiny FAQ (and the real article, which some tests add) cites:
# knowledge/sources.yaml in miniature.
TINY_SOURCES = """\
- id: seed-article
  title: 《支付宝逾期一个月催款方式有哪些》
  publisher: 冠县信息港转载
  date: 2025-05-10
  confidence: secondary
"""


def faq_entry(entry_id: str, title: str, questions: list[str], answer: str, topic: str = "其他",
              related: list[str] | None = None) -> str:
    """One FAQ entry as YAML text, in the same layout as knowledge/faq/*.yaml."""
    lines = [f"- id: {entry_id}", f"  title: {title}", f"  topic: {topic}", "  tags: [测试]", "  questions:"]
    lines += [f"    - {q}" for q in questions]
    lines += ["  answer: |", f"    {answer}", "  sources:", "    - seed-article"]
    if related:
        lines.append(f"  related: [{', '.join(related)}]")
    lines += ["  reviewed: 2026-11-28", ""]
    return "\n".join(lines) + "\n"


def copy_knowledge(dest: Path) -> Path:
    """A private copy of the real knowledge folder (FAQ, article and the source registry)."""
    dest.mkdir(parents=True, exist_ok=True)
    for sub in ("faq", "article"):
        shutil.copytree(KNOWLEDGE / sub, dest / sub)
    shutil.copy2(KNOWLEDGE / "sources.yaml", dest / "sources.yaml")
    return dest


def tiny_knowledge(dest: Path) -> Path:
    (dest / "faq").mkdir(parents=True, exist_ok=True)
    (dest / "faq" / "tiny.yaml").write_text(TINY_FAQ, encoding="utf-8")
    (dest / "sources.yaml").write_text(TINY_SOURCES, encoding="utf-8")
    return dest


def make_settings(tmp_path: Path, knowledge_dir: Path | None = None, **overrides):
    from bot.settings import Settings

    return Settings(chroma_path=tmp_path / "chroma", data_dir=tmp_path,
                    knowledge_dir=knowledge_dir or tmp_path / "knowledge", **overrides)


@lru_cache(maxsize=1)
def base_store() -> tuple[Path, Path, str]:
    """(knowledge dir, chroma dir, version): the real knowledge ingested once per process."""
    from ingest.service import IngestService

    # Under the session's temporary DATA_DIR (conftest), removed at session end.
    root = Path(tempfile.mkdtemp(prefix="base-store-", dir=os.environ.get("DATA_DIR")))
    knowledge = copy_knowledge(root / "knowledge")
    settings = make_settings(root, knowledge)
    service = IngestService(settings)
    report = service.run()
    assert report.version and report.chunks > 300, report
    return knowledge, root / "chroma", report.version


def prepared_store(tmp_path: Path, **overrides):
    """tmp_path/knowledge and tmp_path/chroma as copies of the base store; returns settings."""
    knowledge, chroma, _ = base_store()
    shutil.copytree(knowledge, tmp_path / "knowledge")
    shutil.copytree(chroma, tmp_path / "chroma", ignore=shutil.ignore_patterns(".ingest.lock"))
    return make_settings(tmp_path, tmp_path / "knowledge", **overrides)


# ------------------------------------------------------------------ inspection
def pointer_bytes(settings) -> bytes:
    return (Path(settings.chroma_path) / "CURRENT.json").read_bytes()


def current_version(settings) -> str:
    return json.loads(pointer_bytes(settings))["version"]


def version_dirs(settings) -> list[str]:
    versions = Path(settings.chroma_path) / "versions"
    return sorted(p.name for p in versions.iterdir()) if versions.is_dir() else []


def stored_chunks(settings) -> dict[str, tuple[str, dict]]:
    """{chunk id: (document, metadata)} of the current version, read straight from Chroma."""
    from bot.store import open_store

    store = open_store(settings)
    got = store.open_collection(store.require_manifest()).get(include=["documents", "metadatas"])
    return {cid: (doc, meta) for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])}


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def remove_entry(path: Path, entry_id: str) -> None:
    """Delete one FAQ entry (from its '- id:' line to the next entry) from a YAML file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    start = lines.index(f"- id: {entry_id}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("- id: ")), len(lines))
    path.write_text("\n".join(lines[:start] + lines[end:]), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    """1-based number of the only line of `path` containing `needle`."""
    found = [i for i, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1) if needle in line]
    assert len(found) == 1, f"{needle!r} on lines {found} of {path}"
    return found[0]


# ------------------------------------------------------------------ subprocesses
def ingest_env(settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CHROMA_PATH=str(settings.chroma_path), DATA_DIR=str(settings.data_dir),
               KNOWLEDGE_DIR=str(settings.knowledge_dir), PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def run_ingest(settings, *args: str, cwd: Path | None = None, timeout: float = 120,
               **env: str) -> subprocess.CompletedProcess:
    """`python -m ingest ARGS` in a subprocess (stdout/stderr pipes, so not a terminal)."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return subprocess.run([PYTHON, "-m", "ingest", *args], env=ingest_env(settings, **env),
                          cwd=str(cwd or settings.data_dir), capture_output=True, text=True,
                          timeout=timeout)


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    return json.loads(lines[-1])


PROGRESS_MARKS = re.compile(r"[\r█▏▎▍▌▋▊▉]|\d+%\|")


@contextmanager
def deciding_by(engine, mode: str):
    """The engine with ANSWERABILITY=`mode` ("model" or "rule") inside the block, as before after it."""
    kept = engine.answers.settings
    engine.answers.settings = kept.model_copy(update={"answerability": mode})
    try:
        yield engine
    finally:
        engine.answers.settings = kept
