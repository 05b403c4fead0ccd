"""A damaged store pointer (CURRENT.json not a manifest, or naming a version that is gone),
through the command line as an operator meets it: one clear line saying what is wrong
and that `python -m ingest` repairs it; answers from the newest complete version when
one is left; `python -m ingest` repairs the pointer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from helpers_knowledge import (
    PYTHON,
    ROOT,
    current_version,
    faq_entry,
    ingest_env,
    last_json,
    make_settings,
    pointer_bytes,
    run_ingest,
    tiny_knowledge,
    version_dirs,
)

# In the second version only: asked for, it tells which version answered.
EXTRA = faq_entry("tiny-extra", "征信异议怎么申请", ["征信上的逾期记录有错怎么申请异议"],
                  "可以向报送机构或征信中心提出异议申请。", topic="征信")
EXTRA_QUESTION = "征信上的逾期记录有错怎么申请异议"


def ask(settings, question: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "bot", "ask", "--json", question], env=ingest_env(settings),
                          cwd=str(ROOT), capture_output=True, text=True, timeout=120)


def answered_by(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [source["id"] for source in json.loads(result.stdout)["sources"]]


def two_versions(tmp_path: Path):
    """A store with a previous (tiny) and a current (tiny + EXTRA) version; returns (settings, v1, v2)."""
    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    first = run_ingest(settings, "--json")
    assert first.returncode == 0, first.stderr
    with open(settings.knowledge_dir / "faq" / "tiny.yaml", "a", encoding="utf-8") as fh:
        fh.write("\n" + EXTRA)
    second = run_ingest(settings, "--json")
    assert second.returncode == 0, second.stderr
    v1, v2 = last_json(first.stdout)["version"], last_json(second.stdout)["version"]
    assert version_dirs(settings) == sorted([v1, v2]) and current_version(settings) == v2
    assert "tiny-extra" in answered_by(ask(settings, EXTRA_QUESTION))
    return settings, v1, v2


def one_clear_line(stderr: str, *expected: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "python -m ingest" in lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def pointer(settings) -> Path:
    return Path(settings.chroma_path) / "CURRENT.json"


def test_invalid_pointer_answers_from_the_newest_complete_version_and_ingest_repairs_it(tmp_path):
    settings, v1, v2 = two_versions(tmp_path)
    pointer(settings).write_text('{"version": "2026', encoding="utf-8")  # cut off mid-write

    result = ask(settings, EXTRA_QUESTION)
    assert "tiny-extra" in answered_by(result)  # still the newest knowledge
    one_clear_line(result.stderr, "CURRENT.json is not valid JSON", f"newest complete version {v2}")

    dry = run_ingest(settings, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "not valid JSON" in dry.stdout and "would be repaired" in dry.stdout
    assert pointer(settings).read_text(encoding="utf-8") == '{"version": "2026'

    repaired = run_ingest(settings)
    assert repaired.returncode == 0, repaired.stderr
    assert f"Repaired: the pointer names version {v2}" in repaired.stdout
    assert current_version(settings) == v2 and version_dirs(settings) == sorted([v1, v2])  # nothing re-embedded
    result = ask(settings, EXTRA_QUESTION)
    assert "tiny-extra" in answered_by(result) and result.stderr == ""


def test_pointer_that_is_not_a_manifest_says_so(tmp_path):
    settings, _, v2 = two_versions(tmp_path)
    pointer(settings).write_text('["not", "a", "manifest"]', encoding="utf-8")
    result = ask(settings, "去哪里投诉催收")
    assert "tiny-complain" in answered_by(result)
    one_clear_line(result.stderr, "CURRENT.json is not a valid manifest", v2)


def test_pointer_naming_a_version_that_is_gone_answers_from_the_previous_one(tmp_path):
    settings, v1, v2 = two_versions(tmp_path)
    shutil.rmtree(Path(settings.chroma_path) / "versions" / v2)

    result = ask(settings, EXTRA_QUESTION)
    assert "tiny-extra" not in answered_by(result)  # the previous version: without the extra entry
    one_clear_line(result.stderr, f"names version {v2}, which is gone", f"newest complete version {v1}")
    assert "tiny-complain" in answered_by(ask(settings, "去哪里投诉催收"))

    repaired = run_ingest(settings, "--json")
    assert repaired.returncode == 0, repaired.stderr
    report = last_json(repaired.stdout)
    assert report["pointer_problem"] and report["added"] == 1  # the extra entry, again; the rest reused
    assert current_version(settings) == report["version"] != v2
    result = ask(settings, EXTRA_QUESTION)
    assert "tiny-extra" in answered_by(result) and result.stderr == ""


def test_damaged_pointer_without_a_complete_version_is_one_line_until_ingest_rebuilds(tmp_path):
    settings, v1, v2 = two_versions(tmp_path)
    sound = pointer_bytes(settings).decode("utf-8")
    for version in (v1, v2):
        shutil.rmtree(Path(settings.chroma_path) / "versions" / version)
    # Empty (a full disk), and sound but naming a version that is gone.
    for damage, what in (("", "is not valid JSON"), (sound, f"names version {v2}, which is gone")):
        pointer(settings).write_text(damage, encoding="utf-8")
        result = ask(settings, "去哪里投诉催收")
        assert result.returncode != 0 and result.stdout == ""
        one_clear_line(result.stderr, "CURRENT.json", what, "no other complete version is left")

    assert run_ingest(settings, "--if-missing").returncode == 0  # `make setup` repairs it too
    result = ask(settings, EXTRA_QUESTION)
    assert "tiny-extra" in answered_by(result) and result.stderr == ""
    assert len(version_dirs(settings)) == 1 and json.loads(pointer_bytes(settings))["version"] != v2
