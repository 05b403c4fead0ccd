"""Replay of conversation fixtures, against the fake engine (bot/fake_engine.py) so these tests are fast.

The fake understands a topic ("逾期" / "催收"), follow-ups that need one ("那怎么办"),
/reset, a crisis phrase and EXPLODE (it raises), which is enough to see context, fresh
conversations, passing and failing checks, transcripts and diffs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from bot.fake_engine import REPLIES, FakeEngine
from bot.replay import load_fixture_file, main, run_replay, transcript_path
from bot.reply import Reply, Source

REPO = Path(__file__).resolve().parents[1]


PASSING = """\
name: 小额还款会不会催得更凶
turns:
  - user: 花呗逾期一个月了
  - user: 我每个月只还一点点会不会催得更凶
    expect:
      kind: answer
      contains_any: [协商, 分期]
      contains_all: []
      not_contains: [一定会起诉]
      cites: [collection-partial-payment]
      suggestions_min: 2
"""

# The second conversation must not see the first one's topic.
FAILING = """\
- name: 先说逾期再追问
  turns:
    - user: 花呗逾期一个月了
    - user: 那怎么办
      expect: {kind: answer, contains_all: [证据]}
- name: 没有上文的追问
  turns:
    - user: 那怎么办
      expect:
        kind: answer
        contains_any: [协商]
        cites: [repayment-how-to-ask]
    - user: 我不想活了
      expect:
        kind: crisis
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def replay(capsys, *argv: object, engine: FakeEngine | None = None) -> tuple[int, str]:
    code = main([str(a) for a in argv], engine=engine or FakeEngine())
    return code, capsys.readouterr().out


# --- pass, fail, and the readable report -------------------------------------------------


def test_passing_fixture_exits_0(tmp_path, capsys):
    code, out = replay(capsys, write(tmp_path, "pass.yaml", PASSING))
    assert code == 0
    assert out.strip().splitlines()[-1] == "replay: 1 conversations, 2 turns: 1 passed, 0 failed"


def test_failing_fixture_exits_1_and_names_the_failing_turn(tmp_path, capsys):
    path = write(tmp_path, "fail.yaml", FAILING)
    code, out = replay(capsys, path)
    assert code == 1
    assert "replay: 2 conversations, 4 turns: 1 passed, 1 failed" in out
    assert f"FAIL 没有上文的追问 ({path}:8) turn 1 of 2" in out
    assert "sent:     那怎么办" in out
    assert "expected: kind answer; contains any of [协商]; cites [repayment-how-to-ask]" in out
    assert "kind is clarify, expected answer" in out
    assert "does not cite [repayment-how-to-ask] (cited: nothing)" in out
    assert "got:      kind clarify" in out
    assert "text: 你想了解哪方面？" in out
    assert "sources: (none)" in out
    # Only the failing turn is reported: the first conversation and the crisis turn pass.
    assert "先说逾期再追问" not in out and "turn 2 of 2" not in out


def test_each_conversation_gets_a_fresh_id_and_turns_run_in_order(tmp_path, capsys):
    engine = FakeEngine()
    replay(capsys, write(tmp_path, "fail.yaml", FAILING), engine=engine)
    ids = [call.conversation_id for call in engine.calls]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    assert [call.text for call in engine.calls] == ["花呗逾期一个月了", "那怎么办", "那怎么办", "我不想活了"]


def test_a_turn_without_expect_only_sets_context(tmp_path, capsys):
    fixture = write(tmp_path, "ctx.yaml", """\
        name: 只有上下文
        turns:
          - user: 催收天天打电话
          - user: 不是问题只是说说
    """)
    code, out = replay(capsys, fixture)
    assert code == 0 and "2 turns: 1 passed" in out


def test_an_engine_crash_fails_the_turn_and_the_replay_goes_on(tmp_path, capsys):
    fixture = write(tmp_path, "crash.yaml", """\
        name: 引擎出错
        turns:
          - user: EXPLODE
          - user: 我不想活了
            expect: {kind: crisis}
    """)
    result = run_replay([fixture], FakeEngine())
    assert result.exit_code == 1
    first, second = result.conversations[0].turns
    assert first.error == "RuntimeError: engine exploded" and not first.passed
    assert second.passed
    code, out = replay(capsys, fixture)
    assert "the engine raised RuntimeError: engine exploded" in out


def test_text_checks_ignore_case(tmp_path, capsys):
    engine = FakeEngine(wording={"partial_payment": "Please NEGOTIATE an instalment plan."})
    fixture = write(tmp_path, "en.yaml", PASSING.replace("[协商, 分期]", "[negotiate]"))
    code, _ = replay(capsys, fixture, engine=engine)
    assert code == 0


def test_folders_are_searched_and_transcripts_skipped(tmp_path, capsys):
    write(tmp_path, "suite/a/pass.yaml", PASSING)
    write(tmp_path, "suite/b/more.yml", PASSING.replace("小额还款", "另一个"))
    write(tmp_path, "suite/a/pass.transcript.yaml", "conversations: []\n")
    code, out = replay(capsys, tmp_path / "suite")
    assert code == 0 and "replay: 2 conversations, 4 turns: 2 passed, 0 failed" in out


# --- fixture errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("name: x\nturns:\n  - user: 你好\n    expcet:\n      kind: answer\n", 4,
         "unknown key 'expcet' in turn (allowed: user, expect); did you mean 'expect'?"),
        ("name: x\nturns:\n  - user: 你好\n    expect:\n      kind: answer\n      contains: [a]\n", 6,
         "unknown key 'contains' in expect"),
        ("name: x\ntags: [a]\nturns:\n  - user: 你好\n", 2, "unknown key 'tags' in conversation"),
        ("name: x\nturns:\n  - user: 你好\n    expect: {kind: answr}\n", 4, "unknown kind 'answr'"),
        ("name: x\nturns:\n  - expect: {kind: answer}\n", 3, "turn has no `user` message"),
        ("name: x\nturns: []\n", 2, "turns must be a non-empty list"),
        ("name: x\nturns:\n  - user: a\n    expect:\n", 4, "expect is empty"),
        ("name: x\nturns:\n  - user: a\n    expect: {suggestions_min: two}\n", 4, "suggestions_min must be"),
        ("- name: x\n  turns: [{user: a}]\n- name: x\n  turns: [{user: b}]\n", 3,
         "duplicate conversation name 'x' (first at line 1)"),
        ("name: x\nname: y\nturns: [{user: a}]\n", 2, "duplicate key 'name'"),
        ("name: x\nturns:\n  - user: [a\n", 4, "not valid YAML"),
        # An unclosed quote is reported where it opens, as in the knowledge files.
        ("name: x\nturns:\n  - user: \"abc\n", 3, "not valid YAML"),
    ],
)
def test_fixture_errors_exit_2_with_file_and_line(tmp_path, capsys, text, line, message):
    path = write(tmp_path, "bad.yaml", text)
    engine = FakeEngine()
    code, out = replay(capsys, path, engine=engine)
    assert code == 2
    assert f"{path}:{line}: " in out and message in out
    assert "nothing was run" in out and engine.calls == []


def test_a_missing_path_is_a_fixture_error(tmp_path, capsys):
    code, out = replay(capsys, tmp_path / "nope.yaml")
    assert code == 2 and "no such file or folder" in out


def test_scalars_are_sent_as_written(tmp_path):
    path = write(tmp_path, "s.yaml", "name: 数字\nturns:\n  - user: 12345\n  - user: yes\n  - user: ''\n")
    assert [t.user for t in load_fixture_file(path)[0].turns] == ["12345", "yes", ""]


def test_the_example_fixtures_are_valid():
    examples = sorted((REPO / "tests" / "conversations").glob("*.yaml"))
    examples = [p for p in examples if not p.name.endswith(".transcript.yaml")]
    assert examples
    for path in examples:
        assert load_fixture_file(path)


# --- output formats -----------------------------------------------------------------------


def test_json_output(tmp_path, capsys):
    code, out = replay(capsys, "--json", write(tmp_path, "fail.yaml", FAILING))
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1
    failing = data["conversations"][1]
    assert failing["name"] == "没有上文的追问" and failing["passed"] is False
    turn = failing["turns"][0]
    assert turn["turn"] == 1 and turn["reply"]["kind"] == "clarify" and turn["problems"]


def test_junit_writes_valid_xml(tmp_path, capsys):
    report = tmp_path / "out" / "replay.xml"
    code, _ = replay(capsys, "--junit", report, write(tmp_path, "fail.yaml", FAILING))
    assert code == 1
    root = ET.parse(report).getroot()
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and suite.get("errors") == "0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["先说逾期再追问", "没有上文的追问"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("message").startswith("turn 1: kind is clarify")
    assert "sent:     那怎么办" in failure.text


def test_junit_reports_fixture_errors(tmp_path, capsys):
    report = tmp_path / "replay.xml"
    code, _ = replay(capsys, "--junit", report, write(tmp_path, "bad.yaml", "name: x\nturn: []\n"))
    assert code == 2
    case = ET.parse(report).getroot().find("testsuite/testcase")
    assert "unknown key 'turn'" in case.find("error").get("message")


# --- record and diff ------------------------------------------------------------------------


def test_record_writes_a_transcript_beside_the_fixture(tmp_path, capsys):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    code, out = replay(capsys, "--record", fixture)
    transcript = tmp_path / "pass.transcript.yaml"
    assert code == 0 and transcript_path(fixture) == transcript
    assert f"recorded {transcript}" in out
    text = transcript.read_text(encoding="utf-8")
    assert text.startswith("# Transcript of")
    assert "\\u" not in text  # Chinese stays readable
    data = yaml.safe_load(text)
    (conversation,) = data["conversations"]
    assert conversation["name"] == "小额还款会不会催得更凶"
    first, second = conversation["turns"]
    assert first["user"] == "花呗逾期一个月了" and first["kind"] == "answer"
    assert first["text"] == "关于“花呗逾期一个月了”：先别慌。\n保存通话录音和截图等证据。"  # multi-line kept
    assert second == {
        "user": "我每个月只还一点点会不会催得更凶",
        "kind": "answer",
        "text": REPLIES["partial_payment"].text,
        "sources": ["collection-partial-payment"],
        "suggestions": ["怎么申请分期", "协商要准备什么"],
    }
    assert not list(tmp_path.glob("*.tmp"))
    # The pytest collector and folder replays leave transcripts alone.
    code, out = replay(capsys, tmp_path)
    assert "1 conversations" in out


def test_diff_shows_a_changed_turn(tmp_path, capsys):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    replay(capsys, "--record", fixture)

    code, out = replay(capsys, "--diff", fixture)
    assert code == 0 and "no changes since the last transcript" in out

    changed = FakeEngine(wording={"partial_payment": "按约定的计划逐步还。\n也可以申请分期。"})
    code, out = replay(capsys, "--diff", fixture, engine=changed)
    assert code == 1
    assert f"CHANGED 小额还款会不会催得更凶 ({fixture}), turn 2: 我每个月只还一点点会不会催得更凶" in out
    assert "-  按约定的计划逐步还，一般不会让催收更猛。可以主动联系平台协商分期。" in out
    assert "+  按约定的计划逐步还。" in out and "+  也可以申请分期。" in out
    assert " kind: answer" in out  # unchanged lines are context
    assert "turn 1" not in out  # turn 1 is the same
    assert "1 change(s) since the last transcript" in out
    # The checks still passed: only the diff makes it exit 1.
    assert "1 passed, 0 failed" in out


def test_diff_then_record_accepts_the_change(tmp_path, capsys):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    replay(capsys, "--record", fixture)
    changed = FakeEngine(wording={"partial_payment": "可以协商分期。"})
    code, _ = replay(capsys, "--diff", "--record", fixture, engine=changed)
    assert code == 1
    code, _ = replay(capsys, "--diff", fixture, engine=FakeEngine(wording={"partial_payment": "可以协商分期。"}))
    assert code == 0


def test_diff_without_a_transcript_says_to_record_first(tmp_path, capsys):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    code, out = replay(capsys, "--diff", fixture)
    assert code == 1 and "run with --record first" in out


def test_diff_notices_added_and_removed_conversations(tmp_path, capsys):
    fixture = write(tmp_path, "two.yaml", FAILING)
    replay(capsys, "--record", fixture)
    fixture.write_text(FAILING.replace("先说逾期再追问", "改了名字"), encoding="utf-8")
    code, out = replay(capsys, "--diff", fixture)
    assert code == 1
    assert "CHANGED 改了名字" in out and "new conversation" in out
    assert "CHANGED 先说逾期再追问" in out and "conversation removed" in out


# --- transports and the command line ------------------------------------------------------


def test_a_different_transport_can_be_plugged_in(tmp_path, capsys):
    sent = []

    def transport(conversation_id: str, text: str) -> Reply:
        sent.append(text)
        return Reply("可以协商分期。", "answer", [Source("collection-partial-payment", "", 0.5)],
                     ["a", "b"])

    code = main([str(write(tmp_path, "pass.yaml", PASSING))], transport=transport)
    assert code == 0 and len(sent) == 2


def test_usage_errors_exit_2(capsys):
    assert main([], engine=FakeEngine()) == 2
    assert main(["--via", "carrier-pigeon", "x.yaml"], engine=FakeEngine()) == 2
    assert main(["--help"]) == 0


def test_leading_replay_word_is_tolerated(tmp_path, capsys):
    code, _ = replay(capsys, "replay", write(tmp_path, "pass.yaml", PASSING))
    assert code == 0


# --- pytest collection --------------------------------------------------------------------

COLLECTOR_CONFTEST = """
import contextlib
from bot.replay.pytest_plugin import make_collect_file
from bot.fake_engine import FakeEngine

pytest_collect_file = make_collect_file(lambda: contextlib.nullcontext(FakeEngine().handle))
"""


def test_pytest_collects_one_item_per_conversation(tmp_path):
    suite = tmp_path / "conversations"
    write(suite, "pass.yaml", PASSING)
    write(suite, "fail.yaml", FAILING)
    write(suite, "pass.transcript.yaml", "conversations: []\n")
    write(suite, "conftest.py", COLLECTOR_CONFTEST)
    write(tmp_path, "pytest.ini", "[pytest]\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rN", "conversations"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "conversations/pass.yaml::小额还款会不会催得更凶 PASSED" in out
    assert "conversations/fail.yaml::先说逾期再追问 PASSED" in out
    assert "conversations/fail.yaml::没有上文的追问 FAILED" in out
    assert "1 failed, 2 passed" in out
    # The failure is the replay's readable report, not a traceback.
    assert "FAIL 没有上文的追问" in out and "kind is clarify, expected answer" in out
    assert "Traceback" not in out and "transcript" not in out

    write(suite, "bad.yaml", "name: x\nturns:\n  - user: a\n    expcet: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "conversations/bad.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stdout
    assert "bad.yaml:4: unknown key 'expcet' in turn" in done.stdout


def test_junit_stays_valid_with_control_characters_and_crashes(tmp_path, capsys):
    fixture = write(tmp_path, "bad-input.yaml", """\
        - name: "控制字符\\x07"
          turns:
            - user: "\\x07\\x00"
              expect: {kind: answer}
        - name: 引擎出错
          turns:
            - user: EXPLODE
    """)
    report = tmp_path / "replay.xml"
    code, _ = replay(capsys, "--junit", report, fixture)
    assert code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    first, second = suite.findall("testcase")
    assert first.get("name") == "控制字符\\x07"
    assert "RuntimeError: engine exploded" in second.find("error").text


def test_an_unreadable_transcript_is_an_error(tmp_path, capsys):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    transcript_path(fixture).write_text("conversations: [oops\n", encoding="utf-8")
    code, out = replay(capsys, "--diff", fixture)
    assert code == 2
    assert "pass.transcript.yaml: unreadable transcript" in out and "1 unreadable transcript(s)" in out


def test_a_reply_that_is_not_a_reply_fails_the_turn(tmp_path):
    fixture = write(tmp_path, "pass.yaml", PASSING)
    result = run_replay([fixture], transport=lambda cid, text: "just a string")
    assert result.exit_code == 1
    assert result.conversations[0].turns[0].error == "the engine returned str, not a Reply"


ANSWER_OR_CHOICE = """\
name: 答案或二选一
turns:
  - user: 催收打给我同事
    expect:
      not_contains: [一定会起诉]
      one_of:
        - {kind: answer, cites: [collection-contacts]}
        - {kind: clarify, suggests_any: [打电话给家人]}
"""


@pytest.mark.parametrize("reply, passes", [
    (Reply(text="只向你本人催收", kind="answer", sources=[Source("collection-contacts", "t", 1.0)]), True),
    (Reply(text="你问的是哪一个", kind="clarify", suggestions=["会不会打电话给家人和通讯录联系人", "催收把我欠钱的事告诉了别人"]),
     True),
    # An answer from the other entry, a choice without the expected one, a check beside one_of failing:
    (Reply(text="泄露隐私", kind="answer", sources=[Source("boundaries-disclosure", "t", 1.0)]), False),
    (Reply(text="你问的是哪一个", kind="clarify", suggestions=["催收把我欠钱的事告诉了别人", "上门催收"]), False),
    (Reply(text="一定会起诉", kind="answer", sources=[Source("collection-contacts", "t", 1.0)]), False),
])
def test_one_of_passes_a_turn_that_matches_any_alternative(tmp_path, reply, passes):
    """A question that sits between two entries may fairly get either entry's answer or a choice
    offering it (as `bot eval` counts a choice); one_of says so without dropping the checks."""
    fixture = write(tmp_path, "alt.yaml", ANSWER_OR_CHOICE)
    result = run_replay([fixture], transport=lambda cid, text: reply)
    turn = result.conversations[0].turns[0]
    assert (result.exit_code == 0) is passes, turn.problems
    if not passes and reply.kind == "clarify":
        assert "matches none of the alternatives" in turn.problems[0] and "打电话给家人" in turn.problems[0]


def test_one_of_must_be_a_list_of_checks(tmp_path, capsys):
    path = write(tmp_path, "bad.yaml", "name: x\nturns:\n  - user: a\n    expect: {one_of: answer}\n")
    code, out = replay(capsys, path)
    assert code == 2 and f"{path}:4: " in out and "one_of must be a non-empty list of checks" in out


# --- --via telegram: the real Telegram front end against the fake Bot API -------------------------

VIA_TELEGRAM = ["telegram-start.yaml", "reset-clears-context.yaml", "bad-input-control-characters.yaml"]

FAILING_VIA_TELEGRAM = """\
name: 经过 Telegram 的失败
turns:
  - user: 花呗逾期会被起诉吗
    expect:
      kind: answer
      cites: [legal-lawsuit]           # the id comes from the engine's Reply
      contains_any: [起诉]             # the text from what Telegram showed ...
      not_contains: ["来源：", "<b>"]  # ... without the sources line or HTML
      suggestions_min: 2               # the buttons
  - user: 催收打电话骂我
    expect: {kind: crisis, cites: [no-such-entry]}
"""


def test_fixtures_replay_through_telegram(fresh_engine, capsys):
    paths = [REPO / "tests" / "conversations" / name for name in VIA_TELEGRAM]
    code = main(["--via", "telegram", "-v", *map(str, paths)], engine=fresh_engine)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "replay: 3 conversations, 8 turns: 3 passed, 0 failed"


def test_a_failing_fixture_through_telegram_exits_1_and_names_the_turn(fresh_engine, tmp_path, capsys):
    path = write(tmp_path, "fail.yaml", FAILING_VIA_TELEGRAM)
    code = main(["--via", "telegram", str(path)], engine=fresh_engine)
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"FAIL 经过 Telegram 的失败 ({path}:10) turn 2 of 2" in out
    assert "turn 1 of 2" not in out
    assert "kind is answer, expected crisis" in out
    assert "does not cite [no-such-entry] (cited: [boundaries-threats-insults" in out
    assert "replay: 1 conversations, 2 turns: 0 passed, 1 failed" in out


def test_telegram_replies_are_rebuilt_from_what_telegram_showed(tmp_path):
    from bot.replay import telegram_transport

    engine = FakeEngine()
    with telegram_transport(engine=engine) as transport:
        reply = transport("replay-a", "花呗逾期一个月了")
        assert reply.kind == "answer" and [s.id for s in reply.sources] == ["complaints-evidence"]
        assert reply.text == "关于“花呗逾期一个月了”：先别慌。\n保存通话录音和截图等证据。"  # no sources line
        assert reply.suggestions == ["可以投诉吗"]  # from the button
        assert transport("replay-a", "/reset").kind == "notice"  # the /reset command handler
        assert transport("replay-a", "那怎么办").kind == "clarify"  # context was reset
        start = transport("replay-b", "/start")  # answered by the front end alone
        assert start.kind == "notice" and len(start.suggestions) >= 2
        assert transport("replay-c", "").kind == "clarify"  # Telegram has no empty messages: "send text"
    # Each conversation had its own chat, and the engine only saw Telegram's conversation ids.
    conversations = {call.conversation_id for call in engine.calls}
    assert len(conversations) == 1 and next(iter(conversations)).startswith("tg:")


def test_telegram_replay_fails_a_turn_the_front_end_garbles(tmp_path, monkeypatch):
    import bot.telegram.sending as sending
    from bot.replay import telegram_transport

    def dropping_last_paragraph(reply, **kwargs):
        return real_render(Reply(reply.text.rsplit("\n", 1)[0], reply.kind, reply.sources), **kwargs)

    real_render = sending.render_reply
    monkeypatch.setattr(sending, "render_reply", dropping_last_paragraph)
    with telegram_transport(engine=FakeEngine()) as transport:
        result = run_replay([write(tmp_path, "pass.yaml", PASSING)], transport=transport)
    assert result.exit_code == 1
    [turn] = [t for t in result.conversations[0].turns if t.error]
    assert "differs from the engine's reply" in turn.error
