"""Handler tests: every kind of update through the real Application, in-process transport.

Each update is processed to the end before the test looks at what the bot
sent; the fake Bot API still validates every call (HTML, lengths, buttons).
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.reply import Reply, Source
from bot.telegram import texts

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ME = 987_654_321  # a private chat (= its user's id)
OTHER = 876_543_210
GROUP = -1_001_234_567
MEMBER = 765_432_109


def only(messages):
    assert len(messages) == 1, [m.plain for m in messages]
    return messages[0]


# --- commands -----------------------------------------------------------------------------------

async def test_start_welcomes_with_scope_disclaimer_and_privacy(inproc):
    message = only(await inproc.send(ME, "/start"))
    assert message.parse_mode == "HTML"
    assert "不构成法律意见" in message.plain and "隐私" in message.plain and "/forget" in message.plain
    assert inproc.engine.calls == []


async def test_help_lists_the_commands(inproc):
    message = only(await inproc.send(ME, "/help"))
    for command in ("/topics", "/complain", "/reset", "/forget"):
        assert command in message.plain


async def test_topics_keyboard_and_pressing_a_topic_asks_its_question(inproc):
    keyboard = only(await inproc.send(ME, "/topics"))
    assert [label for label, _ in keyboard.buttons] == [label for label, _ in texts.TOPICS]
    answer = only(await inproc.press(ME, label="征信影响"))
    question = dict(texts.TOPICS)["征信影响"]
    assert inproc.engine.texts() == [question]
    assert answer.text.startswith(f"<b>{question}</b>")  # the chat shows what was asked
    assert inproc.api.callback_answers[-1]["text"] is None  # spinner stopped, no alert


async def test_complain_sends_channels_then_evidence_from_the_engine(inproc):
    inproc.engine.script["去哪里投诉"] = lambda _: Reply(
        "先找平台客服，再找监管。", "answer", [Source("c1", "被违规催收了，可以去哪里投诉", 0.9)],
        ["投诉催收要保存哪些证据"])
    inproc.engine.script["保存哪些证据"] = lambda _: Reply(
        "- 通话录音\n- 聊天截图", "answer", [Source("c2", "要保存哪些证据", 0.9)],
        ["被违规催收了，可以去哪里投诉", "什么情况下应该报警"])
    channels, evidence = await inproc.send(ME, "/complain")
    assert inproc.engine.texts() == list(texts.COMPLAIN_QUESTIONS)
    assert channels.plain.startswith("先找平台客服") and channels.buttons == []
    assert evidence.plain.startswith("• 通话录音")
    # Suggestions repeating what was just shown are dropped.
    assert [label for label, _ in evidence.buttons] == ["什么情况下应该报警"]


async def test_reset_and_forget_reach_the_engine_for_this_conversation(inproc):
    await inproc.send(ME, "FOLLOWUPS 一个问题")
    only(await inproc.send(ME, "/reset"))
    only(await inproc.send(ME, "/forget"))
    methods = [(method, cid) for method, cid, _ in inproc.engine.calls]
    conversation = methods[0][1]
    assert methods == [("handle", conversation), ("reset", conversation), ("forget", conversation)]


async def test_after_forget_an_old_button_asks_its_question_afresh(inproc):
    await inproc.send(ME, "FOLLOWUPS 一个问题")
    await inproc.send(ME, "/forget")
    # Buttons keep nothing about the chat (only the suggestion's text, under a key derived
    # from it), so there is nothing of the chat's to drop: pressing an old one asks its
    # question in the conversation as it is now, that is, forgotten.
    [answer] = await inproc.press(ME, label="怎么和平台协商分期还款")
    assert answer.plain.startswith("怎么和平台协商分期还款")
    methods = [method for method, _, _ in inproc.engine.calls]
    assert methods == ["handle", "forget", "handle"] and inproc.engine.texts()[-1] == "怎么和平台协商分期还款"


async def test_unknown_command_gets_a_pointer(inproc):
    assert only(await inproc.send(ME, "/foo")).text == texts.UNKNOWN_COMMAND
    assert inproc.engine.calls == []


# --- questions and answers ---------------------------------------------------------------------------

async def test_question_is_answered_in_html_with_sources_and_buttons_after_typing(inproc):
    message = only(await inproc.send(ME, "FOLLOWUPS 催收打电话给我家人 <怎么办> & 谢谢"))
    assert inproc.engine.texts() == ["FOLLOWUPS 催收打电话给我家人 <怎么办> & 谢谢"]
    assert "&lt;怎么办&gt; &amp; 谢谢" in message.text  # escaped on the way out
    assert "<怎么办> & 谢谢" in message.plain  # and shown as typed
    assert "<i>来源：① 《某规范》 &lt;第1条&gt; &amp; 说明</i>" in message.text
    assert [len(data.encode()) <= 64 for _, data in message.buttons] == [True, True]
    typing = inproc.api.chat_actions
    assert typing and typing[0]["action"] == "typing" and typing[0]["at"] <= message.at


async def test_follow_up_button_sends_its_full_question(inproc):
    await inproc.send(ME, "FOLLOWUPS 第一个问题")
    long_label = "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉"
    answer = only(await inproc.press(ME, label=long_label[:20]))
    assert inproc.engine.texts()[-1] == long_label  # the full text, not the 64-byte callback data
    assert answer.plain.startswith(long_label)


async def test_clarify_options_are_one_shot_buttons(inproc):
    clarify = only(await inproc.send(ME, "CLARIFY_ME"))
    assert [label for label, _ in clarify.buttons] == ["逾期后会怎么催收", "逾期对征信有什么影响"]
    only(await inproc.press(ME, label="逾期对征信有什么影响"))
    assert inproc.engine.texts()[-1] == "逾期对征信有什么影响"
    assert inproc.api.calls_to("editMessageReplyMarkup")
    assert inproc.api.messages(ME)[0].buttons == []  # options removed once chosen


async def test_a_button_shown_by_one_process_works_in_another_through_redis(make_inproc, redis_url, redis_client):
    # Two bot processes behind one webhook share Redis (REDIS_URL): either may get the press.
    one = await make_inproc(redis_url=redis_url)
    two = await make_inproc(redis_url=redis_url, api=one.api)
    assert one.frontend.buttons is not two.frontend.buttons
    answer = only(await one.send(ME, "FOLLOWUPS 第一个进程"))
    long_label = "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉"
    assert len(answer.buttons) == 2
    # The pressed question is answered like the first, with the same two buttons (no new ones).
    one.engine.script[long_label] = lambda text: one.engine.reply("followups", text=text)
    pressed = only(await two.press(ME, label=long_label[:20]))
    assert pressed.plain.startswith(long_label) and one.engine.texts()[-1] == long_label
    # Redis holds what the buttons mean, and nothing about who saw them.
    keys = sorted(k.decode() for k in redis_client.keys("*"))
    assert len(keys) == 2 and all(k.startswith("debt-help:button:") for k in keys)
    assert sorted(json.loads(redis_client.get(k))["text"] for k in keys) == sorted(
        [long_label, "怎么和平台协商分期还款"])
    assert all(str(ME) not in k and set(json.loads(redis_client.get(k))) == {"text"} for k in keys)
    assert 29 * 24 * 3600 < redis_client.ttl(keys[0]) <= 30 * 24 * 3600


@pytest.mark.parametrize("data", ["q:doesnotexist", "t:99", "zzz", ""])
async def test_stale_or_forged_buttons_are_answered_kindly(inproc, data):
    await inproc.send(ME, "/topics")
    inproc.api.press(ME, inproc.api.messages(ME)[-1].message_id, data, user_id=ME)
    await inproc.feed()
    assert inproc.new(ME) == [] and inproc.engine.calls == []
    assert inproc.api.callback_answers[-1]["text"] == texts.BUTTON_EXPIRED


async def test_long_answer_is_split_and_buttons_go_on_the_last_part(inproc):
    messages = await inproc.send(ME, "LONG_ANSWER")
    assert len(messages) >= 3
    assert all(len(m.plain) <= 4096 for m in messages)
    assert [bool(m.buttons) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert messages[0].plain.startswith("第1部分") and "第6部分" in messages[-1].plain
    assert messages[-1].plain.rstrip().endswith("示例来源")


async def test_conversation_ids_are_pseudonymous_and_per_chat_and_user(inproc):
    await inproc.send(ME, "FOLLOWUPS a")
    await inproc.send(ME, "FOLLOWUPS b")
    await inproc.send(OTHER, "FOLLOWUPS c")
    await inproc.send(GROUP, "FOLLOWUPS d", user_id=ME, mention_bot=True)
    ids = [cid for _, cid, _ in inproc.engine.calls]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert all(str(ME) not in cid and str(OTHER) not in cid for cid in ids)


# --- things that are not questions -------------------------------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("sticker", "sticker"), ("animation", "sticker"), ("dice", "sticker"),
    ("photo", "photo"), ("video", "photo"), ("video_note", "photo"),
    ("voice", "voice"), ("audio", "voice"), ("document", "document"),
    ("location", "location"), ("venue", "location"), ("contact", "contact"), ("poll", "other"),
])
async def test_non_text_messages_get_a_short_friendly_reply(inproc, kind, expected):
    message = only(await inproc.send(ME, kind=kind))
    assert message.text == texts.NON_TEXT[expected]
    assert inproc.engine.calls == []


async def test_photo_with_a_caption_gets_the_caption_answered(inproc):
    notice, answer = await inproc.send(ME, kind="photo", caption="FOLLOWUPS 这条催收短信合法吗")
    assert notice.text == texts.CAPTION_ONLY
    assert inproc.engine.texts() == ["FOLLOWUPS 这条催收短信合法吗"]
    assert answer.plain.startswith("回答：")


async def test_edited_message_gets_a_friendly_note_not_a_second_answer(inproc):
    original = inproc.api.user_message(ME, "FOLLOWUPS 原来的问题")
    await inproc.feed()
    assert len(inproc.new(ME)) == 1
    message = only(await inproc.send(ME, "改过的问题", edit_of=original["message_id"]))
    assert message.text == texts.EDITED
    assert inproc.engine.texts() == ["FOLLOWUPS 原来的问题"]


# --- groups --------------------------------------------------------------------------------------------------

async def test_group_chatter_is_ignored(inproc):
    assert await inproc.send(GROUP, "大家好，今天吃什么", user_id=MEMBER) == []
    assert await inproc.send(GROUP, kind="sticker", user_id=MEMBER) == []
    assert await inproc.send(GROUP, "/foo", user_id=MEMBER) == []
    assert inproc.engine.calls == []


async def test_group_mention_is_answered_as_a_reply_without_the_mention(inproc):
    message = only(await inproc.send(GROUP, "FOLLOWUPS 催收能打给我同事吗", user_id=MEMBER, mention_bot=True))
    assert inproc.engine.texts() == ["FOLLOWUPS 催收能打给我同事吗"]
    assert message.reply_to_message_id is not None


async def test_group_reply_to_the_bot_is_answered(inproc):
    answer = only(await inproc.send(GROUP, "FOLLOWUPS 第一问", user_id=MEMBER, mention_bot=True))
    only(await inproc.send(GROUP, "FOLLOWUPS 接着问", user_id=MEMBER, reply_to_message_id=answer.message_id))
    assert inproc.engine.texts()[-1] == "FOLLOWUPS 接着问"
    only(await inproc.send(GROUP, user_id=MEMBER, kind="sticker", reply_to_message_id=answer.message_id))


async def test_group_bare_mention_asks_for_the_question(inproc):
    message = only(await inproc.send(GROUP, "", user_id=MEMBER, mention_bot=True))
    assert message.text == texts.GROUP_EMPTY_MENTION and inproc.engine.calls == []


async def test_group_commands_still_work(inproc):
    message = only(await inproc.send(GROUP, "/help", user_id=MEMBER))
    assert "/topics" in message.plain


# --- rate limit, errors, logs ------------------------------------------------------------------------------

async def test_rate_limit_sends_one_polite_notice_then_drops(make_inproc):
    harness = await make_inproc(rate_limit_messages=3, rate_limit_window_s=60)
    replies = []
    for i in range(6):
        replies += await harness.send(ME, f"FOLLOWUPS 问题{i}")
    assert len(harness.engine.texts()) == 3
    notices = [m for m in replies if "你发得有点快" in m.plain]
    assert len(replies) == 4 and len(notices) == 1
    assert "60 秒" in notices[0].plain or "59 秒" in notices[0].plain
    # Other users are not affected.
    assert len(await harness.send(OTHER, "FOLLOWUPS 我的问题")) == 1
    # Button presses count too, and are told so in the button's toast.
    harness.api.press(ME, replies[0].message_id, "t:0", user_id=ME)
    await harness.feed()
    assert harness.new(ME) == [] and len(harness.engine.texts()) == 4
    assert harness.api.callback_answers[-1]["text"] is None  # already notified in this window


async def test_engine_failure_reaches_the_error_handler_and_the_user_is_told_kindly(inproc, caplog):
    caplog.set_level(logging.DEBUG)
    message = only(await inproc.send(ME, "EXPLODE 我的秘密问题"))
    assert message.text == texts.ERROR
    records = [r.getMessage() for r in caplog.records]
    assert any("event=handler_error" in r and "error=RuntimeError" in r and "update=message" in r for r in records)
    # The bot keeps working for the next question.
    assert len(await inproc.send(ME, "FOLLOWUPS 再问一次")) == 1


async def test_button_press_that_fails_still_answers_the_query_once(inproc):
    await inproc.send(ME, "/topics")
    inproc.engine.script["逾期以后一般会怎么被催收"] = lambda text: 1 / 0
    message = only(await inproc.press(ME, label="催收流程"))
    assert message.text == texts.ERROR
    assert len(inproc.api.callback_answers) == 1


async def test_logs_carry_no_message_text_and_no_raw_ids(make_inproc, caplog):
    caplog.set_level(logging.DEBUG)  # even at DEBUG (PTB logs call parameters there)
    logging.getLogger("telegram").setLevel(logging.NOTSET)
    inproc = await make_inproc()
    secret = "我叫张三身份证1101XXXX"
    await inproc.send(ME, f"FOLLOWUPS {secret}")
    await inproc.send(ME, f"EXPLODE {secret}")
    await inproc.send(GROUP, f"FOLLOWUPS {secret}", user_id=MEMBER, mention_bot=True)
    await inproc.send(ME, kind="photo")
    await inproc.press(ME, label="怎么和平台协商分期还款")
    handler = logging.Formatter("%(message)s %(exc_text)s")
    lines = [handler.format(r) for r in caplog.records]
    assert any("event=reply" in line for line in lines)
    for line in lines:
        assert "张三" not in line and "1101" not in line
        assert str(ME) not in line and str(MEMBER) not in line and str(GROUP) not in line
        assert inproc.api.token not in line


# --- streaming -----------------------------------------------------------------------------------------

def streams(*partials: str, final: Reply | None = None, gap_s: float = 0.05, fail: bool = False):
    def action(text: str, on_partial) -> Reply:
        for partial in partials:
            on_partial(partial)
            time.sleep(gap_s)
        if fail:
            raise RuntimeError("the model went away")
        return final or Reply("一。二。三。", "answer", [Source("s1", "来源一", 0.9)], ["追问"])
    return action


async def test_streamed_partials_skip_unchanged_text(inproc):
    inproc.frontend.edit_pacer.interval_s = 0  # no throttling: every change is shown
    inproc.engine.script["STREAM"] = streams("一。", "一。", "一。二。", "一。二。")
    message = only(await inproc.send(ME, "STREAM 问题"))
    assert message.history == ["一。" + texts.STREAMING_SUFFIX, "一。二。" + texts.STREAMING_SUFFIX,
                               "一。二。三。\n\n来源：① 来源一"]
    assert message.buttons


async def test_streamed_answer_in_a_group_replies_to_the_question_and_keeps_the_pressed_question(inproc):
    inproc.engine.script["STREAM"] = streams("一。")
    message = only(await inproc.send(GROUP, "STREAM 问题", user_id=MEMBER, mention_bot=True))
    assert message.reply_to_message_id is not None
    assert message.plain.startswith("一。二。三。")
    inproc.engine.script["追问"] = streams("一。")
    answer = only(await inproc.press(GROUP, user_id=MEMBER, label="追问"))
    assert answer.history[0] == "追问\n\n一。" + texts.STREAMING_SUFFIX  # the question in bold first
    assert answer.plain.startswith("追问\n\n一。二。三。")


async def test_engine_failure_after_partials_takes_the_partial_answer_away(inproc):
    inproc.engine.script["STREAM"] = streams("一。", "一。二。", fail=True)
    messages = await inproc.send(ME, "STREAM 问题")
    assert [m.text for m in messages] == [texts.ERROR]  # the placeholder was deleted
    assert inproc.api.calls_to("deleteMessage")


async def test_an_engine_that_never_calls_on_partial_never_streams(make_inproc):
    inproc = await make_inproc()
    message = only(await inproc.send(ME, "FOLLOWUPS 不流式"))
    assert message.edits == 0 and not inproc.api.calls_to("editMessageText")
