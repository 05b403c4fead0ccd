"""`python -m ingest` and the ingest service, as an operator uses them.

Every test owns its store under tmp_path (a copy of one store built once per
test process from the real knowledge, see helpers_knowledge.base_store).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bot.embeddings import Embedder
from helpers_knowledge import (
    KNOWLEDGE,
    PROGRESS_MARKS,
    PYTHON,
    base_store,
    copy_knowledge,
    current_version,
    faq_entry,
    ingest_env,
    last_json,
    line_of,
    make_settings,
    pointer_bytes,
    prepared_store,
    remove_entry,
    replace_once,
    run_ingest,
    stored_chunks,
    tiny_knowledge,
    version_dirs,
)

NEW_ENTRY_ID = "other-bike-deposit"
NEW_ENTRY = faq_entry(
    NEW_ENTRY_ID, "共享单车押金退不回来怎么办",
    ["共享单车押金一直退不回来", "单车押金退款失败找谁"],
    "共享单车押金退不回来时，先在该单车 App 内联系客服申请退款，并保存付款和沟通记录。",
)


def _units_and_chunks(knowledge_dir: Path):
    from ingest.chunking import chunk_units
    from ingest.knowledge import load_knowledge

    units = load_knowledge(knowledge_dir).units
    return units, chunk_units(units)


# ---------------------------------------------------------------- 1. CLI --json
def test_cli_json_twice_second_run_changes_and_embeds_nothing(tmp_path):
    knowledge = copy_knowledge(tmp_path / "knowledge")
    settings = make_settings(tmp_path, knowledge)
    units, chunks = _units_and_chunks(knowledge)

    first = run_ingest(settings, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)  # the whole of stdout is one JSON object
    assert isinstance(report, dict)
    assert {"added", "updated", "removed", "unchanged", "chunks"} <= set(report)
    assert report["added"] == len(units) and report["updated"] == report["removed"] == 0
    assert report["chunks"] == len(chunks) == report["embedded"]
    assert report["changed"] is True and report["version"] == current_version(settings)
    pointer_after_first = pointer_bytes(settings)
    dirs_after_first = version_dirs(settings)

    second = run_ingest(settings, "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["added"], again["updated"], again["removed"]) == (0, 0, 0)
    assert again["unchanged"] == len(units) and again["chunks"] == len(chunks)
    assert again["changed"] is False
    assert again["embedded"] == 0
    assert again["version"] == report["version"]
    assert pointer_bytes(settings) == pointer_after_first  # not even rewritten
    assert version_dirs(settings) == dirs_after_first == [report["version"]]


def test_unchanged_knowledge_is_unchanged_from_another_folder_or_working_directory(tmp_path, monkeypatch):
    """The same knowledge, copied elsewhere and ingested from another working
    directory, is recognised as unchanged (identity does not hang on paths)."""
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(settings.knowledge_dir, elsewhere / "kb")
    monkeypatch.chdir(elsewhere)
    report = IngestService(settings).run(knowledge_dir=Path("kb"), dry_run=True)
    assert (report.added, report.updated, report.removed) == ([], [], [])
    assert report.changed is False


# ----------------------------------------------------- 2. edit / delete / add
def test_editing_one_answer_reembeds_only_that_entry(tmp_path):
    from bot.retrieval import Retriever
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    version_a = retriever.load().version
    before = stored_chunks(settings)
    faq = settings.knowledge_dir / "faq" / "collection.yaml"
    replace_once(faq, "逾期费用按天累积，越早处理越省心。", "逾期费用按天累积，早一天处理少一天费用。")

    report = IngestService(settings).run()
    assert report.updated == ["collection-early-days"]
    assert report.added == report.removed == []
    assert report.embedded == 1  # only the answer chunk; the questions kept their vectors
    assert report.reused == report.chunks - 1
    assert report.version != version_a and current_version(settings) == report.version
    # The previous version is kept for readers that have not yet noticed the flip.
    assert version_dirs(settings) == sorted([version_a, report.version])

    after = stored_chunks(settings)
    changed = set(before) ^ set(after)
    assert len(changed) == 2 and all(cid.startswith("collection-early-days#answer-") for cid in changed)
    answer = [doc for cid, (doc, _) in after.items() if cid.startswith("collection-early-days#answer-")]
    assert len(answer) == 1 and "早一天处理少一天费用" in answer[0] and "越早处理越省心" not in answer[0]
    # The open retriever answers from the new text.
    assert "早一天处理少一天费用" in retriever.units["collection-early-days"].body


def test_deleting_an_entry_removes_it_from_store_and_answers(tmp_path):
    from bot.retrieval import Retriever
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    question = "Can debt collectors come to my home?"
    assert retriever.search(question).top.unit.id == "collection-visit"
    remove_entry(settings.knowledge_dir / "faq" / "collection.yaml", "collection-visit")

    report = IngestService(settings).run()
    assert report.removed == ["collection-visit"]
    assert report.added == report.updated == [] and report.embedded == 0
    assert not [m for _, m in stored_chunks(settings).values() if m["unit_id"] == "collection-visit"]
    hits = retriever.search(question, k=20).hits
    assert hits and "collection-visit" not in {h.unit.id for h in hits}
    assert "collection-visit" not in retriever.units


def test_adding_an_entry_adds_and_embeds_only_it(tmp_path):
    from bot.retrieval import Retriever
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    with open(settings.knowledge_dir / "faq" / "other.yaml", "a", encoding="utf-8") as fh:
        fh.write("\n" + NEW_ENTRY)

    report = IngestService(settings).run()
    assert report.added == [NEW_ENTRY_ID] and report.updated == report.removed == []
    assert report.embedded == 4  # title+answer, title, two questions
    assert retriever.search("单车押金退款失败找谁").top.unit.id == NEW_ENTRY_ID


def test_dry_run_reports_changes_and_writes_nothing(tmp_path):
    settings = prepared_store(tmp_path)
    faq = settings.knowledge_dir / "faq"
    replace_once(faq / "collection.yaml", "逾期费用按天累积，越早处理越省心。", "逾期费用按天累积。")
    remove_entry(faq / "collection.yaml", "collection-visit")
    (faq / "zz_new.yaml").write_text(NEW_ENTRY, encoding="utf-8")
    pointer, dirs, chunks = pointer_bytes(settings), version_dirs(settings), stored_chunks(settings)

    done = run_ingest(settings, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    assert report["dry_run"] is True and report["changed"] is True
    assert (report["added_ids"], report["updated_ids"], report["removed_ids"]) == (
        [NEW_ENTRY_ID], ["collection-early-days"], ["collection-visit"])
    assert report["embedded"] == 5  # what a real run would embed
    assert pointer_bytes(settings) == pointer
    assert version_dirs(settings) == dirs
    assert stored_chunks(settings) == chunks


# ------------------------------------------------------- 3. bad knowledge files
def _invalid_yaml(k: Path):
    path = k / "faq" / "zz_broken.yaml"
    path.write_text(faq_entry("broken-ok", "正常的条目", ["正常的问题"], "正常的回答。")
                    + faq_entry("broken-colon", "注意: 冒号后面多了空格", ["问题"], "回答。"), encoding="utf-8")
    return "faq/zz_broken.yaml", line_of(path, "注意: 冒号"), ["invalid YAML"], 1


def _missing_field(k: Path):
    path = k / "faq" / "zz_missing.yaml"
    entry = faq_entry("missing-sources", "没有来源的条目", ["问题"], "回答。")
    entry = entry.replace("  sources:\n    - seed-article\n", "")
    path.write_text(faq_entry("missing-ok", "正常的条目", ["正常的问题"], "正常的回答。") + entry, encoding="utf-8")
    return "faq/zz_missing.yaml", line_of(path, "- id: missing-sources"), ["missing field 'sources'"], 1


def _unknown_field(k: Path):
    path = k / "faq" / "zz_typo.yaml"
    entry = faq_entry("typo-answer", "字段名写错的条目", ["问题"], "回答。").replace("  answer: |", "  anwser: |")
    path.write_text(faq_entry("typo-ok", "正常的条目", ["正常的问题"], "正常的回答。") + entry, encoding="utf-8")
    # The misspelt field, and the answer it was meant to be (on the entry's line).
    return "faq/zz_typo.yaml", line_of(path, "anwser"), ["unknown field 'anwser'", "missing field 'answer'"], 2


def _duplicate_id(k: Path):
    path = k / "faq" / "zz_dup.yaml"
    path.write_text(faq_entry("dup-ok", "正常的条目", ["正常的问题"], "正常的回答。")
                    + faq_entry("collection-early-days", "重复的编号", ["问题"], "回答。"), encoding="utf-8")
    first = line_of(k / "faq" / "collection.yaml", "- id: collection-early-days")
    return ("faq/zz_dup.yaml", line_of(path, "- id: collection-early-days"),
            [f"duplicate id 'collection-early-days' (first used at knowledge/faq/collection.yaml:{first})"], 1)


def _empty_answer(k: Path):
    path = k / "faq" / "zz_empty.yaml"
    entry = faq_entry("empty-answer", "回答为空的条目", ["问题"], "回答。").replace("  answer: |\n    回答。", '  answer: "  "')
    path.write_text(faq_entry("empty-ok", "正常的条目", ["正常的问题"], "正常的回答。") + entry, encoding="utf-8")
    return "faq/zz_empty.yaml", line_of(path, 'answer: "  "'), ["'answer' is empty"], 1


def _bad_related(k: Path):
    path = k / "faq" / "collection.yaml"
    replace_once(path, "related: [collection-one-month, fees-overdue-fee, repayment-how-to-ask]",
                 "related: [collection-one-month, fees-overdue-fees]")
    return ("faq/collection.yaml", line_of(path, "- id: collection-early-days"),
            ["related id 'fees-overdue-fees' does not exist"], 1)


def _mangled_article(k: Path):
    path = k / "article" / "article.md"
    replace_once(path, "平台都必须遵守《个人信息保护法》等相关法规", "平台都必须遵守《个人信息保》等相关法规")
    return "article/article.md", line_of(path, "《个人信息保》"), ["broken text", "《个人信息保》"], 1


def _unknown_source(k: Path):
    # A source id that is not in the registry: reported at the line that cites it.
    path = k / "faq" / "zz_source.yaml"
    entry = faq_entry("source-typo", "来源写错的条目", ["问题"], "回答。").replace(
        "    - seed-article\n", "    - seed-article\n    - credit-regulaton\n")
    path.write_text(faq_entry("source-ok", "正常的条目", ["正常的问题"], "正常的回答。") + entry, encoding="utf-8")
    return ("faq/zz_source.yaml", line_of(path, "credit-regulaton"),
            ["entry 'source-typo': unknown source id 'credit-regulaton' (not in sources.yaml)"], 1)


def _free_text_source(k: Path):
    # The old free-text form ("原文：...") is no longer a source: cite a registry id.
    path = k / "faq" / "collection.yaml"
    replace_once(path, "  sources:\n    - seed-article\n  related: [collection-one-month,",
                 "  sources:\n    - 原文：支付宝逾期一个月催款办法有哪些\n  related: [collection-one-month,")
    return ("faq/collection.yaml", line_of(path, "原文：支付宝逾期一个月催款办法有哪些"),
            ["unknown source id '原文：支付宝逾期一个月催款办法有哪些'"], 1)


def _unknown_article_source(k: Path):
    path = k / "article" / "article.md"
    replace_once(path, "source: seed-article ", "source: seed-artcle ")
    return ("article/article.md", line_of(path, "source: seed-artcle"),
            ["article front matter 'source': unknown source id 'seed-artcle'"], 1)


def _bad_registry_entry(k: Path):
    path = k / "sources.yaml"
    replace_once(path, "  date: 2013-01-21\n  confidence: confirmed\n", "  date: 2013-01-21\n  confidence: official\n")
    return ("sources.yaml", line_of(path, "confidence: official"),
            ["source 'credit-regulation': confidence must be one of confirmed, secondary, got 'official'"], 1)


BAD_FILES = [_invalid_yaml, _missing_field, _unknown_field, _duplicate_id, _empty_answer, _bad_related,
             _mangled_article, _unknown_source, _free_text_source, _unknown_article_source, _bad_registry_entry]


@pytest.fixture
def cli_in_process(tmp_path, monkeypatch):
    """`ingest.__main__.main` in this process, on tmp_path's store, run from tmp_path."""
    from bot.settings import get_settings

    settings = prepared_store(tmp_path)
    monkeypatch.setenv("CHROMA_PATH", str(settings.chroma_path))
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KNOWLEDGE_DIR", str(settings.knowledge_dir))
    monkeypatch.chdir(tmp_path)  # file names in messages: knowledge/faq/...
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.mark.parametrize("breakage", BAD_FILES, ids=lambda f: f.__name__.strip("_"))
def test_bad_knowledge_file_is_refused_with_file_and_line(cli_in_process, capsys, breakage):
    from bot.retrieval import Retriever
    from ingest.__main__ import EXIT_KNOWLEDGE_ERROR, main

    settings = cli_in_process
    retriever = Retriever(settings)
    version = retriever.load().version
    pointer, dirs = pointer_bytes(settings), version_dirs(settings)
    relative, line, fragments, count = breakage(settings.knowledge_dir)

    code = main([])
    out, err = capsys.readouterr()
    assert code == EXIT_KNOWLEDGE_ERROR == 2
    assert f"Knowledge files have {count} problem(s); nothing was written" in err
    problem_lines = [l.strip() for l in err.splitlines() if l.startswith("  ")]
    assert len(problem_lines) == count, err
    located = [l for l in problem_lines if l.startswith(f"knowledge/{relative}:{line}: ")]
    assert located, f"no problem reported at knowledge/{relative}:{line}:\n{err}"
    for fragment in fragments:
        assert fragment in err
    # Nothing was written and the store keeps serving the old version.
    assert pointer_bytes(settings) == pointer and version_dirs(settings) == dirs
    assert retriever.search("花呗逾期一个月会怎么催").top.unit.id == "collection-one-month"
    assert retriever.load().version == version


def test_bad_knowledge_cli_process_exits_2_naming_every_problem(tmp_path):
    """The real process: exit status 2, every problem on stderr, JSON on stdout, store untouched."""
    settings = prepared_store(tmp_path)
    knowledge = settings.knowledge_dir
    yaml_file, yaml_line, _, _ = _invalid_yaml(knowledge)
    article_file, article_line, _, _ = _mangled_article(knowledge)
    pointer, dirs = pointer_bytes(settings), version_dirs(settings)

    done = run_ingest(settings, "--json", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"knowledge/{yaml_file}:{yaml_line}: invalid YAML" in done.stderr
    assert f"knowledge/{article_file}:{article_line}: broken text" in done.stderr
    assert "Traceback" not in done.stderr
    result = last_json(done.stdout)
    assert result["ok"] is False and len(result["problems"]) == 2
    assert pointer_bytes(settings) == pointer and version_dirs(settings) == dirs


# ------------------------------------------------------------------ 4. atomicity
def test_open_retriever_follows_a_newly_published_version(tmp_path):
    from bot.retrieval import Retriever
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    version_a = retriever.load().version
    assert NEW_ENTRY_ID not in {h.unit.id for h in retriever.search("共享单车押金一直退不回来", k=20).hits}

    (settings.knowledge_dir / "faq" / "zz_new.yaml").write_text(NEW_ENTRY, encoding="utf-8")
    version_b = IngestService(settings).run().version
    assert version_b != version_a

    result = retriever.search("共享单车押金一直退不回来")
    assert result.top.unit.id == NEW_ENTRY_ID
    assert retriever.load().version == version_b


class FailingEmbedder(Embedder):
    """Delegates to a real embedder and fails on its `fail_on`-th encode call."""

    def __init__(self, real: Embedder, fail_on: int) -> None:
        self.real, self.fail_on, self.calls = real, fail_on, 0
        self.name, self.dimension = real.name, real.dimension

    def encode(self, texts):
        self.calls += 1
        if self.calls >= self.fail_on:
            raise RuntimeError("embedding backend crashed")
        return self.real.encode(texts)


def test_ingest_failing_mid_write_leaves_old_version_serving(tmp_path, monkeypatch):
    from bot.embeddings import get_embedder
    from bot.retrieval import Retriever
    from ingest import service as service_module
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    version_a = retriever.load().version
    pointer, dirs = pointer_bytes(settings), version_dirs(settings)
    (settings.knowledge_dir / "faq" / "zz_new.yaml").write_text(NEW_ENTRY, encoding="utf-8")
    monkeypatch.setattr(service_module, "EMBED_BATCH", 2)  # the new entry's 4 chunks: two batches
    failing = FailingEmbedder(get_embedder(settings.embedding_model), fail_on=2)

    with pytest.raises(RuntimeError, match="embedding backend crashed"):
        IngestService(settings, embedder=failing).run()
    assert failing.calls == 2  # it failed after the first batch was written

    assert pointer_bytes(settings) == pointer
    assert version_dirs(settings) == dirs  # the half-written version was dropped
    result = retriever.search("花呗逾期一个月会怎么催")
    assert result.top.unit.id == "collection-one-month" and retriever.load().version == version_a
    assert NEW_ENTRY_ID not in retriever.units

    # The lock was released: the next ingest runs and publishes the entry.
    report = IngestService(settings).run()
    assert report.added == [NEW_ENTRY_ID] and report.embedded == 4
    assert retriever.search("单车押金退款失败找谁").top.unit.id == NEW_ENTRY_ID
    assert version_dirs(settings) == sorted([version_a, report.version])


def _big_faq(entries: int = 60, questions: int = 9) -> str:
    parts = []
    for i in range(entries):
        parts.append(faq_entry(
            f"bulk-{i:03d}", f"批量测试条目{i}：逾期第{i}天该怎么处理",
            [f"批量问题{i}-{j}：逾期{i}天接到第{j}个电话怎么办" for j in range(questions)],
            f"这是第{i}条批量测试回答，用来让嵌入多花一些时间。"))
    return "".join(parts)


def test_killed_ingest_leaves_old_version_and_its_orphan_is_collected(tmp_path):
    from bot.retrieval import Retriever
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    retriever = Retriever(settings)
    version_a = retriever.load().version
    pointer = pointer_bytes(settings)
    big = settings.knowledge_dir / "faq" / "zz_bulk.yaml"
    big.write_text(_big_faq(), encoding="utf-8")  # ~660 new chunks: many seconds of embedding

    proc = subprocess.Popen([PYTHON, "-m", "ingest"], env=ingest_env(settings), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not set(version_dirs(settings)) - {version_a}:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "ingest never started writing a new version"
            time.sleep(0.05)
        time.sleep(1.0)  # well into embedding
        assert proc.poll() is None, "ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

    assert pointer_bytes(settings) == pointer
    orphans = set(version_dirs(settings)) - {version_a}
    assert len(orphans) == 1  # the killed run's half-written version
    result = retriever.search("花呗逾期一个月会怎么催")
    assert result.top.unit.id == "collection-one-month" and retriever.load().version == version_a
    assert not any(uid.startswith("bulk-") for uid in retriever.units)

    # The next successful ingest keeps the current and previous version only.
    big.unlink()
    (settings.knowledge_dir / "faq" / "zz_new.yaml").write_text(NEW_ENTRY, encoding="utf-8")
    report = IngestService(settings).run()
    assert report.previous_version == version_a and report.added == [NEW_ENTRY_ID]
    assert version_dirs(settings) == sorted([version_a, report.version])
    assert retriever.search("单车押金退款失败找谁").top.unit.id == NEW_ENTRY_ID


def test_quick_successive_ingests_keep_exactly_current_and_previous(tmp_path):
    from ingest.service import IngestService

    settings = prepared_store(tmp_path)
    service = IngestService(settings)
    faq = settings.knowledge_dir / "faq" / "collection.yaml"
    previous = current_version(settings)
    text = "逾期费用按天累积，越早处理越省心。"
    for n in range(3):  # usually within one second: version names then sort by their random tail
        new_text = f"逾期费用按天累积（第{n}次修改）。"
        replace_once(faq, text, new_text)
        text = new_text
        report = service.run()
        assert report.previous_version == previous and report.embedded == 1
        assert version_dirs(settings) == sorted([previous, report.version])
        previous = report.version
    assert current_version(settings) == previous


# -------------------------------------------------------------------- 8. chunking
_END = "。！？；!?;"
_CLOSERS = "”’」』）)]"


def _section_boundary_ok(compact: str, newline_offsets: set[int], offset: int) -> bool:
    before = compact[offset - 1]
    if before in _END or (before in _CLOSERS and compact[offset - 2] in _END):
        return True
    return offset in newline_offsets  # a line break ends a sentence too (list items, short lines)


def _check_article_chunks(unit, chunks) -> None:
    compact = re.sub(r"\s", "", unit.body)
    newline_offsets, count = set(), 0
    for ch in unit.body:
        if ch == "\n":
            newline_offsets.add(count)
        elif not ch.isspace():
            count += 1
    bodies = [re.sub(r"\s", "", c.metadata["body"]) for c in chunks]
    # Nothing lost, nothing repeated, order kept.
    assert "".join(bodies) == compact
    offset = 0
    for body in bodies[:-1]:
        offset += len(body)
        assert _section_boundary_ok(compact, newline_offsets, offset), (
            f"chunk of {unit.heading!r} ends mid-sentence: ...{body[-20:]!r} | {compact[offset:offset + 20]!r}")
    assert compact.endswith(bodies[-1])


def test_article_chunks_never_split_mid_sentence_and_keep_headings():
    from ingest.chunking import chunk_unit

    units, _ = _units_and_chunks(KNOWLEDGE)
    article_units = [u for u in units if u.source_type == "article"]
    path = KNOWLEDGE / "article" / "article.md"
    headings = {line[3:].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("## ")}
    assert {u.heading for u in article_units} == headings
    multi = 0
    for unit in article_units:
        chunks = chunk_unit(unit)
        multi += len(chunks) > 1
        _check_article_chunks(unit, chunks)
        for chunk in chunks:
            assert chunk.metadata["heading"] == unit.heading
            assert chunk.metadata["field"] == "section" and chunk.metadata["source_type"] == "article"
            assert chunk.text.startswith(unit.heading + "\n")  # the heading is embedded with the text
            body = chunk.metadata["body"]
            assert body[-1] in _END or (body[-1] in _CLOSERS and body[-2] in _END) or chunk is chunks[-1]
    assert multi >= 3  # the real sections are long enough to need several chunks


def test_long_sentences_and_quotes_stay_whole():
    from ingest.chunking import ARTICLE_CHUNK_CHARS, chunk_unit
    from ingest.knowledge import KnowledgeUnit

    long_sentence = "这是一句没有任何标点而且特别长的句子" * 15 + "。"
    assert len(long_sentence) > ARTICLE_CHUNK_CHARS
    body = ("客服说：“先还一部分吧。”我照做了。" * 6 + long_sentence + "第二段第一句！第二句？\n"
            + "没有句号的一行\n" + "最后一句；")
    unit = KnowledgeUnit(id="article-x-1", source_type="article", title="标题", body=body, file="x.md",
                         line=1, heading="小节")
    chunks = chunk_unit(unit)
    assert len(chunks) >= 3
    _check_article_chunks(unit, chunks)
    bodies = [c.metadata["body"] for c in chunks]
    assert long_sentence in bodies  # too long for one chunk, but never cut
    assert not any(b.startswith("”") for b in bodies)  # the closing quote stays with its sentence


def test_chunk_ids_are_stable_across_runs_and_locations(tmp_path):
    units_a, chunks_a = _units_and_chunks(KNOWLEDGE)
    copy = copy_knowledge(tmp_path / "somewhere" / "else")
    units_b, chunks_b = _units_and_chunks(copy)
    assert [c.id for c in chunks_a] == [c.id for c in chunks_b]
    assert len({c.id for c in chunks_a}) == len(chunks_a)  # unique
    assert [u.content_hash for u in units_a] == [u.content_hash for u in units_b]
    # ... and the same as in the store built earlier in this process from yet another copy.
    _, chroma, _ = base_store()
    assert set(stored_chunks(make_settings(chroma.parent))) == {c.id for c in chunks_a}


# -------------------------------------------------------------------- 9. progress
def _run_with_stderr_on_terminal(settings) -> str:
    import fcntl
    import pty
    import struct
    import termios

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    master, slave = pty.openpty()
    # A terminal of 24x100 (a fresh pty reports 0x0 and tqdm would draw nothing).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([PYTHON, "-m", "ingest"], env=ingest_env(settings), cwd=settings.data_dir,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    output = b""
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode == 0, output
    return output.decode("utf-8", "replace")


def test_no_progress_bar_when_not_a_terminal(tmp_path):
    knowledge = tiny_knowledge(tmp_path / "knowledge")
    piped = make_settings(tmp_path / "piped", knowledge)
    done = run_ingest(piped, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout
    assert not PROGRESS_MARKS.search(done.stderr) and "embedding" not in done.stderr, repr(done.stderr)

    # The control: the same run with stderr on a terminal does draw the bar.
    on_terminal = _run_with_stderr_on_terminal(make_settings(tmp_path / "tty", knowledge))
    assert "embedding" in on_terminal and PROGRESS_MARKS.search(on_terminal), repr(on_terminal)


def test_every_entry_cites_registered_sources_and_units_carry_them():
    from ingest.chunking import chunk_unit
    from ingest.knowledge import load_knowledge

    knowledge = load_knowledge(KNOWLEDGE)
    for unit in knowledge.units:
        assert unit.sources, unit.id
        assert [r.id for r in unit.source_refs] == list(unit.sources), unit.id
        assert all(r.confidence in ("confirmed", "secondary") for r in unit.source_refs)
    unit = knowledge.by_id()["credit-retention"]
    meta = chunk_unit(unit)[0].metadata
    refs = json.loads(meta["source_refs"])
    assert refs[0]["id"] == "credit-regulation" and refs[0]["publisher"] and refs[0]["date"]
    assert meta["sources"] == "\n".join(unit.sources)


def test_a_registry_edit_changes_the_units_that_cite_it(tmp_path):
    from ingest.knowledge import load_knowledge

    knowledge = copy_knowledge(tmp_path / "knowledge")
    before = load_knowledge(knowledge).by_id()
    replace_once(knowledge / "sources.yaml", "  title: 《征信业管理条例》\n", "  title: 《征信业管理条例》（修订）\n")
    after = load_knowledge(knowledge).by_id()
    assert after["credit-retention"].content_hash != before["credit-retention"].content_hash
    assert after["complaints-evidence"].content_hash == before["complaints-evidence"].content_hash


def test_missing_registry_is_one_clear_problem(tmp_path):
    from ingest.knowledge import KnowledgeError, load_knowledge

    knowledge = copy_knowledge(tmp_path / "knowledge")
    (knowledge / "sources.yaml").unlink()
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(knowledge)
    assert len(caught.value.problems) == 1
    assert "source registry not found" in str(caught.value)


def test_unclosed_quote_is_reported_where_it_was_opened(tmp_path):
    from ingest.knowledge import load_faq_file

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "- id: a-b\n  title: 标题\n  topic: 其他\n  questions: [问]\n"
        "  answer: \"没有结束的引号\n  sources: [原文：x]\n  reviewed: 2026-11-28\n", encoding="utf-8")
    units, problems = load_faq_file(broken, "faq/broken.yaml")
    assert not units
    assert [p.line for p in problems] == [5]
    assert "invalid YAML" in problems[0].message
