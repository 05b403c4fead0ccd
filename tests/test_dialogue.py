"""Multi-turn conversations: context, topic switches, reset, slots, sessions that survive."""

from __future__ import annotations

import time
import uuid

import pytest

from bot.dialogue import DialogueEngine
from bot.sessions import SQLiteSessionStore
from tests.helpers_knowledge import deciding_by


def conversation(engine, *messages):
    cid = f"c-{uuid.uuid4().hex}"
    return [engine.handle(cid, m) for m in messages]


def test_follow_up_is_understood_in_the_light_of_the_topic(fresh_engine):
    first, follow = conversation(fresh_engine, "催收打电话骂我", "那怎么办")
    assert first.kind == follow.kind == "answer"
    assert follow.sources[0].id in ("boundaries-threats-insults", "complaints-channels", "complaints-police")


def test_a_complete_new_question_switches_topic(fresh_engine):
    replies = conversation(fresh_engine, "催收打电话骂我", "花呗逾期会上征信吗")
    assert replies[1].sources[0].id == "credit-huabei-report"


def test_specific_follow_ups_get_their_own_entries(fresh_engine):
    replies = conversation(fresh_engine, "催收打电话骂我", "要保存什么证据", "可以报警吗")
    assert replies[1].sources[0].id == "complaints-evidence"
    assert replies[2].sources[0].id == "complaints-police"


def test_reset_drops_context(fresh_engine):
    replies = conversation(fresh_engine, "催收打电话骂我", "/reset", "那怎么办")
    assert replies[1].kind == "notice"
    assert replies[2].kind == "clarify"


def test_vague_start_gets_a_question_with_options_never_a_guess(fresh_engine):
    (reply,) = conversation(fresh_engine, "怎么办")
    assert reply.kind == "clarify" and 2 <= len(reply.suggestions) <= 4 and not reply.sources


def test_stage_is_asked_only_when_it_matters_and_then_used(fresh_engine):
    asked, answered, later = conversation(fresh_engine, "逾期了会怎么样", "一个月左右", "会上征信吗")
    assert asked.kind == "clarify" and any("一个月" in s for s in asked.suggestions)
    assert answered.kind == "answer" and answered.sources[0].id == "collection-one-month"
    assert "你提到" in answered.text and "一个月" in answered.text
    assert later.kind == "answer" and "你提到" not in later.text  # said once, not every turn


@pytest.mark.parametrize("message, asked", [
    ("花呗逾期了后果严重不", True),      # from the issue: it got the 花呗-versus-借呗 entry
    ("借呗没还 严不严重", True),
    ("hb逾期了要不要紧", True),
    ("逾期了有啥后果", True),
    ("借呗逾期三天了严重吗", False),     # the stage is given: its entry answers
    ("判决了还不上 后果严重吗", False),  # the court stage, not collection
    ("催收骂人严重吗 能告他吗", False),   # not about being overdue
    ("逾期的后果我知道 我想问怎么协商", False),
    ("逾期了严重不良记录怎么消", False),
])
def test_how_bad_is_being_overdue_asks_the_stage_first(fresh_engine, message, asked):
    (reply,) = conversation(fresh_engine, message)
    assert (reply.kind == "clarify" and "逾期多久" in reply.text) is asked


def test_a_message_at_risk_of_a_crisis_keeps_its_lines_instead_of_a_question_about_the_stage(fresh_engine, monkeypatch):
    """A possible crisis in "how bad is being overdue" words: the crisis lines first, never "逾期多久了？" alone."""
    from bot import texts
    from bot.safety import Assessment

    at_risk = Assessment(label="domain", crisis_risk=True, scores={"domain": 0.6, "crisis": 0.4})
    monkeypatch.setattr(fresh_engine.answers, "assess", lambda normalised: at_risk)
    (reply,) = conversation(fresh_engine, "花呗逾期了后果严重不")
    assert reply.text.startswith(texts.CRISIS_RISK_LINE.strip()[:12]) and "逾期多久" not in reply.text


def test_stage_given_up_front_is_not_asked_again(fresh_engine):
    (reply,) = conversation(fresh_engine, "借呗逾期三天了会怎么样")
    assert reply.kind == "answer"
    assert reply.sources[0].id == "collection-early-days"


def test_abusive_collection_is_acknowledged(fresh_engine):
    (reply,) = conversation(fresh_engine, "催收天天半夜打电话威胁我")
    assert reply.kind == "answer"
    assert reply.text.startswith("你提到")


def test_forget_deletes_the_conversation(fresh_engine):
    cid = f"c-{uuid.uuid4().hex}"
    fresh_engine.handle(cid, "花呗逾期一个月会怎么催收")
    assert fresh_engine.sessions.load(cid) is not None
    reply = fresh_engine.handle(cid, "/forget")
    assert reply.kind == "notice" and "删除" in reply.text
    assert fresh_engine.sessions.load(cid) is None


def test_stored_state_holds_no_message_text(fresh_engine):
    cid = f"c-{uuid.uuid4().hex}"
    fresh_engine.handle(cid, "我叫张三，花呗欠了一万二，逾期一个月了，催收打给我妈")
    state = fresh_engine.sessions.load(cid)
    flat = repr(state)
    assert "张三" not in flat and "一万二" not in flat and "我妈" not in flat


def test_conversation_survives_a_restart_with_the_sqlite_store(engine, tmp_path):
    db = tmp_path / "sessions.sqlite3"
    before = DialogueEngine(engine.answers, SQLiteSessionStore(db))
    before.handle("user-1", "催收打电话骂我")
    # A new process would open the same file: a new store object on it.
    after = DialogueEngine(engine.answers, SQLiteSessionStore(db))
    reply = after.handle("user-1", "那怎么办")
    assert reply.kind == "answer"
    fresh = DialogueEngine(engine.answers, SQLiteSessionStore(tmp_path / "other.sqlite3"))
    assert fresh.handle("user-1", "那怎么办").kind == "clarify"


def test_concurrent_messages_of_one_conversation_lose_no_state(engine):
    """The Telegram front end answers from a thread pool; a burst from one chat keeps every slot."""
    import threading

    from bot.sessions import MemorySessionStore

    class SlowStore(MemorySessionStore):  # widens the window a lost update needs
        def load(self, conversation_id):
            state = super().load(conversation_id)
            time.sleep(0.05)
            return state

    dialogue = DialogueEngine(engine.answers, SlowStore())
    messages = ["我的花呗逾期三天了", "催收天天骂我", "会上征信吗", "花呗的催收还打给我同事"]
    threads = [threading.Thread(target=dialogue.handle, args=("burst", m)) for m in messages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots = dialogue.sessions.load("burst")["slots"]
    assert slots["abusive"] is True and slots["overdue"] == "三天" and slots["product"] == "花呗"


def test_a_duration_belongs_to_the_product_it_was_said_of(fresh_engine):
    """"花呗晚了两周" then "jb 能不能只还本金": nothing says the 借呗 debt is two weeks overdue."""
    first, second = conversation(fresh_engine, "我花呗晚了快两周了，会不会打电话给我老板", "jb欠了2万 能不能只还本金")
    assert second.kind == "answer"
    assert "两周" not in second.text


@pytest.mark.parametrize("message, about_stage", [
    ("花呗都逾期快三个月了 天天打电话 我该先干嘛", True),   # what first: the plan for that stage
    ("借呗逾期两个月了 不知道从哪开始处理", True),
    ("花呗逾期十天了", True),                               # only the situation
    ("花呗逾期一个月了 催收打电话给我同事 怎么办", False),   # a particular problem, not the stage
    ("借呗逾期三个月了 先还花呗还是先还借呗", False),         # "先还" is not "what first"
])
def test_what_to_do_first_asks_about_the_stage(message, about_stage):
    from bot.dialogue import asks_about_stage
    from bot.textnorm import normalise_query

    assert asks_about_stage(normalise_query(message)) is about_stage


_STORY = ("去年家里老人生病住院花了很多钱，当时手头紧就用花呗和借呗周转了一下，本来想着发了工资就能还上，"
          "结果今年公司裁员我也被裁了，到现在已经三个多月没有稳定收入，每个月的账单加起来比我打零工赚的钱还多。")


@pytest.mark.parametrize("message, searched", [
    (_STORY + "我现在最想知道的是，怎么跟支付宝协商分期还款？", "我现在最想知道的是,怎么跟支付宝协商分期还款"),
    (_STORY + "催收会不会找我家里人？我真的很怕。", "催收会不会找我家里人"),  # the question, not the feeling after it
    (_STORY, None),                                             # a story that asks nothing: all of it
    (_STORY + "怎么跟支付宝协商分期？我现在什么都没有了。", "怎么跟支付宝协商分期"),  # not the statement after it
    (_STORY.replace("，", "").replace("。", "") + "借呗已经逾期三个月了接下来会怎么样", None),  # voice: one breath
    ("花呗逾期了怎么跟支付宝协商分期还款？", None),               # short: the message itself
])
def test_a_long_story_is_searched_for_its_question(message, searched):
    from bot.dialogue import question_of_story
    from bot.textnorm import normalise_query

    assert question_of_story(normalise_query(message)) == searched


@pytest.mark.parametrize("messages, entry", [
    (("催收天天打电话骂我", "可以投诉吗"), "complaints-channels"),
    (("花呗逾期了 会上征信吗", "会保留多久", "那芝麻分呢"), "credit-sesame-vs-pboc"),
])
def test_with_the_model_deciding_a_follow_up_keeps_the_thread(fresh_engine, messages, entry):
    """The answerability model was fitted on questions asked on their own; a short follow-up
    inside a conversation is decided as before, not declined or sent to the previous topic."""
    with deciding_by(fresh_engine, "model"):
        last = conversation(fresh_engine, *messages)[-1]
    assert last.kind == "answer" and last.sources[0].id == entry
