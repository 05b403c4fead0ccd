"""Guided flows (/complaint, /negotiate) through the real dialogue engine, as a user would go through them."""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import pytest
import yaml

from bot.flows import parse
from bot.flows import texts as t
from bot.reply import SourceRef, basis_text

ROOT = Path(__file__).resolve().parent.parent
COMPLAINT_ANSWERS = ["支付宝", "不知道是哪家公司", "晚上11点打电话、骂人、打给我妈", "11月20日开始，每天十几个", "有录音和截图"]
NEGOTIATE_ANSWERS = ["借呗", "两个月", "2万", "失业了", "每月1000"]


def talk(engine, *messages, cid=None):
    cid = cid or f"flow-{uuid.uuid4().hex}"
    return [engine.handle(cid, m) for m in messages]


# --- the knowledge base, read straight from knowledge/ (not through the bot) -------------------------

def _kb_entries() -> list[dict]:
    registry = {s["id"]: SourceRef.from_dict(s) for s in yaml.safe_load((ROOT / "knowledge/sources.yaml").read_text())}
    entries = []
    for path in sorted((ROOT / "knowledge/faq").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()):
            plain = re.sub(r"(?m)^\s*-\s*", "", entry["answer"])
            entries.append({"id": entry["id"], "answer": plain,
                            "basis": basis_text([registry[s] for s in entry["sources"]])})
    return entries


KB = _kb_entries()


def cited_rules(draft: str) -> list[tuple[str, str]]:
    """(rule, source line) pairs from the draft's 相关规定 section, as the user sees them."""
    section = draft.split(t.RULES_HEAD, 1)[1].split(t.ASKS_HEAD, 1)[0] if t.RULES_HEAD in draft else ""
    lines = [line for line in section.splitlines() if line.strip()]
    pairs = []
    for rule, source in zip(lines[::2], lines[1::2]):
        assert re.match(r"^\d+\. ", rule), rule
        assert source.strip().startswith("出处："), source
        pairs.append((re.sub(r"^\d+\. ", "", rule), source.strip().removeprefix("出处：")))
    return pairs


def assert_rules_come_from_the_knowledge_base(draft: str) -> list[dict]:
    """Every cited rule is said in a knowledge entry's answer (piece by piece, verbatim), and its
    source line is exactly that entry's sources as the registry gives them."""
    matched = []
    for rule, basis in cited_rules(draft):
        pieces = [p for p in re.split(r"[。：]", rule) if p.strip()]
        entries = [e for e in KB if e["basis"] == basis and all(p in e["answer"] for p in pieces)]
        assert entries, f"rule not in the knowledge base with this source: {rule} / {basis}"
        matched.append({"rule": rule, "basis": basis, "entry": entries[0]["id"]})
    return matched


# --- acceptance ------------------------------------------------------------------------------------------

def test_complaint_acceptance(fresh_engine):
    replies = talk(fresh_engine, "/complaint", *COMPLAINT_ANSWERS)
    assert [r.kind for r in replies[:-1]] == ["clarify"] * 5
    draft = replies[-1]
    assert draft.kind == "draft"
    for detail in ("支付宝", "不知道是哪家公司", "晚上11点打电话、骂人、打给我妈", "11月20日开始，每天十几个", "录音", "截图"):
        assert detail in draft.text
    rules = assert_rules_come_from_the_knowledge_base(draft.text)
    night = [r for r in rules if "22点" in r["rule"] and "8点" in r["rule"]]
    relatives = [r for r in rules if "家人" in r["rule"]]
    assert night and relatives, [r["rule"] for r in rules]
    route = draft.text.split("——草稿到这里——", 1)[1]
    assert 0 < route.index("95188") < route.index("12378")
    assert "110" in route
    assert re.search(r"证据：录音、截图", route)
    cited = {s.id for s in draft.sources}
    assert {night[0]["entry"], relatives[0]["entry"]} <= cited


def test_negotiation_acceptance(fresh_engine):
    replies = talk(fresh_engine, "/negotiate", *NEGOTIATE_ANSWERS)
    assert [r.kind for r in replies] == ["clarify"] * 5 + ["draft"]
    script = replies[-1].text
    assert "借呗" in script and "两个月" in script and "2万元" in script and "失业了" in script
    assert "每月还1000元左右" in script
    record = script.split("四、通话时记下来", 1)[1].split("五、", 1)[0]
    for item in ("日期", "时间", "工号", "方案"):
        assert item in record
    assert "95188" in script  # where to call, from the knowledge base
    assert "个人账户" in script and "代理" in script  # what not to do


def test_both_flows_work_in_the_cli_chat():
    import os
    import subprocess
    import sys

    lines = ["/complaint", *COMPLAINT_ANSWERS, "/negotiate", *NEGOTIATE_ANSWERS]
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--json"], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=180)
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["kind"] for r in replies] == (["clarify"] * 5 + ["draft"]) * 2
    assert "22点" in replies[5]["text"] and "95188" in replies[5]["text"]
    assert "每月还1000元左右" in replies[11]["text"]
    assert all({"text", "kind", "sources", "suggestions", "latency_ms"} <= set(r) for r in replies)


# --- one question at a time, each skippable ----------------------------------------------------------------

def test_each_step_has_its_buttons_and_can_be_skipped(fresh_engine):
    replies = talk(fresh_engine, "/complaint", "跳过", "跳过", "跳过", "跳过", "跳过")
    first = replies[0]
    assert t.PRIVACY_LINE.strip() in first.text and "第1步" in first.text
    assert "花呗" in first.suggestions and t.SKIP in first.suggestions
    draft = replies[-1]
    assert draft.kind == "draft"
    assert t.MISSING in draft.text
    assert cited_rules(draft.text) == []  # nothing said happened, so no rule is said to be broken
    assert "证据还没有整理" in draft.text or t.EVIDENCE_NONE in draft.text


def test_option_buttons_add_up_on_a_many_answer_step(fresh_engine):
    replies = talk(fresh_engine, "/complaint", "借呗", "平台自己的人", "夜里打电话", "联系我的家人或同事", "就这些",
                   "先跳过", "通话录音", "短信或聊天截图", "就这些")
    assert "记下了：夜里打电话" in replies[3].text and t.DONE in replies[3].suggestions
    assert "第4步" in replies[5].text
    draft = replies[-1].text
    rules = assert_rules_come_from_the_knowledge_base(draft)
    assert any("22点" in r["rule"] for r in rules) and any("家人" in r["rule"] for r in rules)
    assert "请告诉我是哪家机构" not in draft  # they said it was the platform itself
    assert "证据：通话录音、短信或聊天截图" in draft
    none = talk(fresh_engine, "/complaint", "借呗", "跳过", "骂人", "跳过", t.EVIDENCE_NONE_OPTION)[-1]
    assert none.kind == "draft" and t.EVIDENCE_NONE in none.text


def test_another_lender_is_not_sent_to_alipays_hotline(fresh_engine):
    draft = talk(fresh_engine, "/complaint", "美团", "跳过", "天天打电话骂我", "跳过", "有截图")[-1].text
    route = draft.split("——草稿到这里——", 1)[1]
    assert "95188" not in route and "美团的官方客服" in route and "12378" in route


def test_negotiation_with_everything_skipped_still_gives_a_usable_script(fresh_engine):
    script = talk(fresh_engine, "/negotiate", *["跳过"] * 5)[-1]
    assert script.kind == "draft"
    assert t.S_REASON_MISSING in script.text and t.S_ASK_INSTALMENTS_OPEN in script.text
    assert "元左右" not in script.text  # no amount nobody named


def test_negotiation_reads_amounts_as_people_type_them(fresh_engine):
    script = talk(fresh_engine, "/negotiate", "jb", "差不多3个月", "两万多", "生病住院了", "一个月一千")[-1].text
    assert "每月还1000元左右" in script and "2万元" in script and "3个月" in script and "生病住院了" in script


@pytest.mark.parametrize("text, amount", [("2万", 20000), ("每月1000", 1000), ("一个月一千", 1000), ("1.5w", 15000),
                                          ("三千块", 3000), ("两三千", None), ("不知道", None), ("一分都拿不出", 0)])
def test_amounts(text, amount):
    assert parse.parse_amount(text) == amount


# --- leaving, interruptions, bad input ----------------------------------------------------------------------

def test_cancel_leaves_the_flow_and_forgets_its_answers(fresh_engine):
    cid = f"flow-{uuid.uuid4().hex}"
    replies = talk(fresh_engine, "/complaint", "支付宝", "晚上11点打电话", "/cancel", "有录音和截图", cid=cid)
    assert replies[3].kind == "notice" and "停下" in replies[3].text
    assert replies[4].kind != "draft" and "第" not in replies[4].text[:6]
    assert "flow" not in (fresh_engine.sessions.load(cid) or {})
    assert talk(fresh_engine, "/cancel")[0].kind == "notice"  # nothing to cancel is said kindly too


def test_a_question_mid_flow_is_answered_then_the_step_asked_again(fresh_engine):
    replies = talk(fresh_engine, "/negotiate", "借呗", "逾期了会上征信吗", "两个月")
    aside = replies[2]
    assert aside.kind == "answer" and any(s.id.startswith("credit-") for s in aside.sources)
    assert aside.text.rstrip().endswith("或发 /cancel 结束）") and t.Q_OVERDUE in aside.text
    assert "一个月左右" in aside.suggestions
    assert "第3步" in replies[3].text  # the answer after the question moved the flow on


def test_a_crisis_mid_flow_gets_the_crisis_reply_first_and_the_flow_waits(fresh_engine):
    replies = talk(fresh_engine, "/complaint", "支付宝", "我不想活了 活着太累了", "有录音", "继续写投诉材料")
    crisis = replies[2]
    assert crisis.kind == "crisis" and "12356" in crisis.text.split("\n\n")[1]
    assert t.Q_CONTACT not in crisis.text
    assert t.RESUME["complaint"] in crisis.suggestions
    assert replies[3].kind != "draft" and t.RESUME["complaint"] in replies[3].suggestions  # not taken as an answer
    assert replies[4].kind == "clarify" and "第2步" in replies[4].text and t.RESUMED.strip() in replies[4].text


def test_empty_and_overlong_messages_mid_flow_lose_nothing(fresh_engine, settings):
    replies = talk(fresh_engine, "/complaint", "支付宝", "", "逾" * 20000, "😀", *COMPLAINT_ANSWERS[1:])
    assert replies[2].kind == "clarify" and "没看到文字" in replies[2].text and "第2步" in replies[2].text
    assert replies[3].kind == "clarify" and "有点长" in replies[3].text and "第2步" in replies[3].text
    assert replies[4].kind == "clarify" and "第2步" in replies[4].text
    assert replies[-1].kind == "draft" and "【涉及平台】支付宝" in replies[-1].text


# --- offered under fitting answers -------------------------------------------------------------------------

def test_complaint_and_negotiation_answers_offer_the_flow_as_a_button(fresh_engine):
    harassment, started = talk(fresh_engine, "催收天天半夜打电话骂我", t.COMPLAINT_OFFER)
    assert harassment.kind == "answer" and t.COMPLAINT_OFFER in harassment.suggestions
    assert started.kind == "clarify" and t.Q_LENDER in started.text
    # A plainly negotiation question: "还不上钱怎么和平台协商" is as near "can't pay at all", and
    # whether it gets that entry or a choice of the two moves with each refit of the thresholds.
    (negotiation,) = talk(fresh_engine, "借呗还不上了想跟支付宝协商分期")
    assert negotiation.kind == "answer" and t.NEGOTIATE_OFFER in negotiation.suggestions
    (credit,) = talk(fresh_engine, "花呗逾期会上征信吗")
    assert t.COMPLAINT_OFFER not in credit.suggestions and t.NEGOTIATE_OFFER not in credit.suggestions


# --- privacy -------------------------------------------------------------------------------------------

def test_flow_answers_live_in_the_session_only_until_the_draft_and_forget_removes_them(fresh_engine):
    cid = f"flow-{uuid.uuid4().hex}"
    talk(fresh_engine, "/complaint", "支付宝", "不知道是哪家公司", cid=cid)
    stored = json.dumps(fresh_engine.sessions.load(cid), ensure_ascii=False)
    assert "不知道是哪家公司" in stored
    talk(fresh_engine, "/forget", cid=cid)
    assert fresh_engine.sessions.load(cid) is None
    talk(fresh_engine, "/complaint", *COMPLAINT_ANSWERS, cid=cid)
    assert "11月20日" not in json.dumps(fresh_engine.sessions.load(cid) or {}, ensure_ascii=False)


def test_nothing_typed_in_a_flow_is_logged(fresh_engine, caplog):
    caplog.set_level(logging.DEBUG)
    talk(fresh_engine, "/complaint", *COMPLAINT_ANSWERS)
    talk(fresh_engine, "/negotiate", "借呗", "逾期了会上征信吗", *NEGOTIATE_ANSWERS[1:])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for answer in COMPLAINT_ANSWERS + NEGOTIATE_ANSWERS + ["会上征信"]:
        assert answer not in logged


# --- what a draft may cite -------------------------------------------------------------------------------

def test_every_kind_of_conduct_cites_its_rule_from_the_knowledge_base_with_its_source(fresh_engine):
    from bot.flows.knowledge import CONDUCT_RULES

    everything = "半夜打电话 一天几十个 骂我威胁我 打给我同事 到处告诉别人我欠钱 发律师函 让我转到个人卡"
    draft = talk(fresh_engine, "/complaint", "花呗", "跳过", everything, "跳过", "跳过")[-1]
    rules = assert_rules_come_from_the_knowledge_base(draft.text)
    assert len(rules) == len(CONDUCT_RULES)
    assert {r["entry"] for r in rules} <= {s.id for s in draft.sources}


def test_no_number_in_a_draft_that_neither_the_user_nor_the_knowledge_base_said(fresh_engine):
    knowledge = (ROOT / "knowledge/sources.yaml").read_text() + "".join(e["answer"] for e in KB)
    for flow, answers in (("/complaint", COMPLAINT_ANSWERS), ("/negotiate", NEGOTIATE_ANSWERS)):
        draft = talk(fresh_engine, flow, *answers)[-1].text
        said = " ".join(answers)
        for number in re.findall(r"\d+", draft):
            assert number in knowledge or number in said, number


def test_flow_fixtures_replay_through_telegram(fresh_engine, capsys):
    from bot.replay import main

    paths = [ROOT / "tests/conversations/flow-complaint.yaml", ROOT / "tests/conversations/flow-negotiate.yaml"]
    code = main(["--via", "telegram", *map(str, paths)], engine=fresh_engine)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("12 passed, 0 failed")
