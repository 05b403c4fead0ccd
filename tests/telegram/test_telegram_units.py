"""Unit tests: formatting, splitting, buttons, rate limits, retries, logs, the fake's HTML checks."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import logging

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.reply import Reply, Source
from bot.telegram import texts
from bot.telegram.fake_api import ApiError, FakeBotAPI, parse_telegram_html
from bot.telegram.format import (
    MAX_CALLBACK_BYTES,
    MAX_MESSAGE_LEN,
    button_key,
    render_reply,
    sources_line,
    suggestions_keyboard,
    topics_keyboard,
    utf16_len,
)
from bot.telegram.logs import format_event, keyed_hash, safe_traceback
from bot.telegram.ratelimit import OVERALL_BURST, OVERALL_PER_S, RetryingRateLimiter, UserRateLimiter

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


# --- formatting -------------------------------------------------------------------------------

def test_dynamic_text_is_escaped_and_bullets_tidied():
    reply = Reply("你问的是 <script>alert(1)</script> & “引号”\n- 第一点\n- 第二点", "answer",
                  [Source("a", "标题 <b>粗</b> & 说明", 0.9)])
    [message] = render_reply(reply, question="按钮 <i>问题</i>")
    assert "<script>" not in message and "&lt;script&gt;" in message
    assert message.startswith("<b>按钮 &lt;i&gt;问题&lt;/i&gt;</b>\n\n")
    assert "• 第一点\n• 第二点" in message
    plain = parse_telegram_html(message)  # valid Telegram HTML
    assert "<script>alert(1)</script> & “引号”" in plain
    assert "标题 <b>粗</b> & 说明" in plain


def test_sources_line_is_compact_distinct_and_capped():
    sources = [Source(str(i), f"来源{i % 7}", 0.5) for i in range(20)]
    line = sources_line(Reply("x", "answer", sources))
    assert line.startswith("<i>来源：① 来源0 ② 来源1") and line.endswith("</i>")
    assert "⑤ 来源4" in line and "⑥" not in line
    assert sources_line(Reply("x", "answer", [])) is None


def test_sources_line_names_each_entrys_documents_compactly():
    from bot.reply import SourceRef

    law = SourceRef("credit-regulation", "《征信业管理条例》", "国务院", "2013-01-21", "confirmed")
    news = SourceRef("news", "花呗接入征信系统的报道", "北京商报·转载", "2021-11-22", "secondary")
    undated = SourceRef("channels", "12378 热线", "公开资料", "未注明", "secondary")
    line = sources_line(Reply("x", "answer", [Source("a", "花呗逾期会不会上征信", 0.9, refs=(law, news)),
                                              Source("b", "投诉", 0.8, refs=(undated,))]))
    assert line == ("<i>来源：① 花呗逾期会不会上征信 — 《征信业管理条例》（国务院，2013-01-21）；"
                    "花呗接入征信系统的报道（北京商报·转载，2021-11-22，公开资料） ② 投诉 — 12378 热线（公开资料）</i>")
    many = Source("c", "条目", 0.5, refs=(law, news, undated, law))
    assert sources_line(Reply("x", "answer", [many])).endswith("（公开资料）等</i>")


def _long_reply(paragraphs: int, size: int) -> Reply:
    return Reply("\n\n".join(f"段落{i}：" + "字" * size for i in range(paragraphs)), "answer",
                 [Source("s", "来源", 1.0)])


def test_long_answer_splits_at_paragraph_boundaries_under_the_limit():
    reply = _long_reply(8, 1500)
    chunks = render_reply(reply)
    assert len(chunks) > 2
    assert all(utf16_len(c) <= MAX_MESSAGE_LEN for c in chunks)
    # Nothing lost, nothing cut inside a paragraph, sources at the very end.
    paragraphs = [p for c in chunks for p in c.split("\n\n")]
    assert paragraphs[:-1] == reply.text.split("\n\n")
    assert chunks[-1].endswith("</i>")
    for chunk in chunks:
        parse_telegram_html(chunk)


def test_a_paragraph_longer_than_a_message_is_split_at_lines_then_characters():
    giant_line = "催" * 9000
    lines = "\n".join(["短行"] * 3 + ["<&>" * 2000])  # escaping triples/quadruples the length
    for text in (giant_line, lines):
        chunks = render_reply(Reply(text, "answer"))
        assert all(utf16_len(c) <= MAX_MESSAGE_LEN for c in chunks)
        visible = "".join(parse_telegram_html(c).replace("\n", "") for c in chunks)
        assert visible == text.replace("\n", "")


def test_limit_counts_utf16_code_units():
    emoji_text = "😀" * 3000  # 6000 UTF-16 units
    chunks = render_reply(Reply(emoji_text, "answer"))
    assert len(chunks) == 2 and all(utf16_len(c) <= MAX_MESSAGE_LEN for c in chunks)


def test_suggestion_buttons_fit_callback_data_and_carry_a_key_derived_from_the_text():
    long_question = "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉，还要注意什么"
    markup = suggestions_keyboard(["怎么协商", long_question, "怎么 协商", "怎么协商", ""], one_shot=False)
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["怎么协商", long_question[:39] + "…", "怎么 协商"]  # repeats and blanks dropped
    for button in buttons:
        assert len(button.callback_data.encode()) <= MAX_CALLBACK_BYTES
        assert button.callback_data.startswith("q:")
        assert len(button.text) <= 40
    # The same text always gets the same key: any process, after any restart.
    assert buttons[1].callback_data == "q:" + button_key(long_question) and len(button_key(long_question)) == 12
    assert len({b.callback_data for b in buttons}) == 3
    clarify = suggestions_keyboard(["A"], one_shot=True)
    assert clarify.inline_keyboard[0][0].callback_data == "c:" + button_key("A")
    assert suggestions_keyboard([], one_shot=False) is None


async def test_button_store_resolves_keys_through_its_backend_and_keeps_nothing_else(tmp_path):
    from bot.sessions import SQLiteSessionStore
    from bot.telegram.buttons import BUTTON_TTL_S, ButtonStore

    backend = SQLiteSessionStore(tmp_path / "buttons.sqlite3", idle_timeout_s=BUTTON_TTL_S)
    first = ButtonStore(backend)
    await first.remember(["怎么和平台协商分期还款", " 怎么和平台协商分期还款 ", "催收骚扰去哪里投诉"])
    key = button_key("怎么和平台协商分期还款")
    assert await first.lookup(key) == "怎么和平台协商分期还款"
    # Another process (or this one after a restart) has an empty cache: the backend answers.
    second = ButtonStore(SQLiteSessionStore(tmp_path / "buttons.sqlite3", idle_timeout_s=BUTTON_TTL_S))
    assert await second.lookup(key) == "怎么和平台协商分期还款"
    assert await second.lookup(button_key("催收骚扰去哪里投诉")) == "催收骚扰去哪里投诉"
    assert await second.lookup("doesnotexist") is None
    rows = backend._db.execute("SELECT state FROM sessions").fetchall()
    assert sorted(json.loads(state)["text"] for (state,) in rows) == ["催收骚扰去哪里投诉", "怎么和平台协商分期还款"]
    assert all(set(json.loads(state)) == {"text"} for (state,) in rows)  # no chat, no user, no time
    first.close()
    second.close()


async def test_button_store_failures_are_logged_and_the_cache_still_answers(caplog):
    from bot.telegram.buttons import ButtonStore

    class Down:
        def save(self, conversation_id, state):
            raise ConnectionError("redis is down")

        def load(self, conversation_id):
            raise ConnectionError("redis is down")

    store = ButtonStore(Down())
    with caplog.at_level(logging.WARNING, logger="bot.telegram.buttons"):
        await store.remember(["怎么协商"])
        assert await store.lookup(button_key("怎么协商")) == "怎么协商"  # this process still knows it
        assert await store.lookup(button_key("别的问题")) is None
    assert [r.getMessage() for r in caplog.records] == [
        "event=button_store_failed op=save error=ConnectionError",
        "event=button_store_failed op=load error=ConnectionError"]


def test_topics_keyboard_has_every_topic():
    markup = topics_keyboard()
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons] == [label for label, _ in texts.TOPICS]
    assert [b.text for b in buttons] == ["催收流程", "还款协商", "征信影响", "利息费用", "法律诉讼",
                                         "催收边界", "投诉维权", "防范诈骗", "心理支持"]
    assert all(len(b.callback_data.encode()) <= 64 for b in buttons)


def test_static_texts_are_valid_telegram_html():
    for text in (texts.WELCOME, texts.HELP, texts.TOPICS_INTRO, texts.EDITED, texts.UNKNOWN_COMMAND,
                 texts.GROUP_EMPTY_MENTION, texts.ERROR, texts.CAPTION_ONLY, texts.SHUTTING_DOWN,
                 texts.RATE_LIMITED.format(seconds=5), *texts.NON_TEXT.values()):
        parse_telegram_html(text)
    assert "/forget" in texts.WELCOME and "不构成法律意见" in texts.WELCOME


# --- the fake's HTML checks (they guard every test above and below) ---------------------------------

@pytest.mark.parametrize("bad", ["a < b", "AT&T", "<b>x", "<div>x</div>", "<b><i>x</b></i>", "</b>"])
def test_fake_rejects_what_telegram_rejects(bad):
    with pytest.raises(ApiError) as info:
        parse_telegram_html(bad)
    assert info.value.code == 400


# --- user rate limit ----------------------------------------------------------------------------------

def test_user_rate_limit_notifies_once_per_window():
    now = [0.0]
    limiter = UserRateLimiter(3, 10.0, clock=lambda: now[0])
    assert [limiter.check(1).allowed for _ in range(3)] == [True] * 3
    first, second = limiter.check(1), limiter.check(1)
    assert not first.allowed and first.notify and 0 < first.retry_in_s <= 10
    assert not second.allowed and not second.notify
    assert limiter.check(2).allowed  # other users unaffected
    now[0] = 10.0
    assert limiter.check(1).allowed


# --- retrying Bot API calls -------------------------------------------------------------------------

class Flaky:
    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": True}


async def _no_sleep(seconds: float) -> None:
    _no_sleep.slept.append(seconds)


async def test_flood_control_and_network_errors_are_retried():
    _no_sleep.slept = []
    limiter = RetryingRateLimiter(sleep=_no_sleep)
    flaky = Flaky(RetryAfter(2), TimedOut(), NetworkError("reset"), RetryAfter(dtm.timedelta(seconds=1)))
    result = await limiter.process_request(flaky, (), {}, "sendMessage", {}, None)
    assert result == {"ok": True} and flaky.calls == 5
    assert 2 <= _no_sleep.slept[0] < 2.2 and _no_sleep.slept[1:3] == [0.5, 1.0]


async def test_retries_are_bounded_and_bad_requests_are_not_retried():
    _no_sleep.slept = []
    limiter = RetryingRateLimiter(sleep=_no_sleep, max_flood_retries=2)
    with pytest.raises(RetryAfter):
        await limiter.process_request(Flaky(*[RetryAfter(1)] * 5), (), {}, "sendMessage", {}, None)
    with pytest.raises(RetryAfter):  # longer than we are willing to wait
        await limiter.process_request(Flaky(RetryAfter(3600)), (), {}, "sendMessage", {}, None)
    bad = Flaky(BadRequest("can't parse entities"))
    with pytest.raises(BadRequest):
        await limiter.process_request(bad, (), {}, "sendMessage", {}, None)
    assert bad.calls == 1
    typing = Flaky(TimedOut())
    with pytest.raises(TimedOut):
        await limiter.process_request(typing, (), {}, "sendChatAction", {}, None)
    assert typing.calls == 1


def most_in_any_window(stamps: list[float], window_s: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max((sum(1 for t in stamps[i:] if t - start < window_s) for i, start in enumerate(stamps)), default=0)


async def test_outgoing_messages_are_throttled_under_telegrams_overall_limit():
    limiter = RetryingRateLimiter()
    loop = asyncio.get_running_loop()
    sent: list[float] = []

    async def send():
        sent.append(loop.time())
        return {"ok": True}

    started = loop.time()
    await asyncio.gather(*(limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 1000 + i}, None)
                           for i in range(45)))
    assert len(sent) == 45
    assert most_in_any_window(sent) <= OVERALL_BURST + OVERALL_PER_S < 30  # Telegram's 30 a second
    assert loop.time() - started >= (45 - OVERALL_BURST) / OVERALL_PER_S - 0.05  # paced, not dropped


async def test_chat_actions_are_skipped_when_there_is_no_room_and_groups_have_their_own_bucket():
    limiter = RetryingRateLimiter()
    calls: list[str] = []

    def call(name):
        async def send():
            calls.append(name)
            return True
        return send

    for i in range(OVERALL_BURST):  # the overall bucket is full now
        await limiter.process_request(call(f"m{i}"), (), {}, "sendMessage", {"chat_id": 5}, None)
    assert await limiter.process_request(call("typing"), (), {}, "sendChatAction", {"chat_id": 5}, None) is True
    assert "typing" not in calls and limiter.skipped_chat_actions == 1
    await asyncio.sleep(0.2)  # room again
    await limiter.process_request(call("typing"), (), {}, "sendChatAction", {"chat_id": 5}, None)
    assert calls[-1] == "typing"

    # A group gets 2 at once, then one about every 3.5 s (under 20 a minute); other chats go on meanwhile.
    group = [asyncio.ensure_future(limiter.process_request(call(f"g{i}"), (), {}, "sendMessage",
                                                           {"chat_id": -100123}, None)) for i in range(3)]
    await asyncio.sleep(0.3)
    await limiter.process_request(call("private"), (), {}, "sendMessage", {"chat_id": 6}, None)
    assert [task.done() for task in group] == [True, True, False] and calls[-1] == "private"
    group[2].cancel()


async def test_a_429_holds_every_request_for_the_time_telegram_asks():
    limiter = RetryingRateLimiter()
    loop = asyncio.get_running_loop()
    flooded = Flaky(RetryAfter(1))
    started = loop.time()
    first = asyncio.ensure_future(limiter.process_request(flooded, (), {}, "sendMessage", {"chat_id": 1}, None))
    await asyncio.sleep(0.1)
    other_sent = []

    async def other():
        other_sent.append(loop.time() - started)
        return True

    await limiter.process_request(other, (), {}, "sendMessage", {"chat_id": 2}, None)
    assert await first == {"ok": True} and flooded.calls == 2
    assert other_sent[0] >= 1.0  # waited with everyone else
    assert limiter.flood_controlled == 1
    # Chat actions are not queued behind a flood wait either.
    limiter._flood_gate.clear()
    assert await limiter.process_request(other, (), {}, "sendChatAction", {"chat_id": 2}, None) is True
    assert len(other_sent) == 1


async def test_fake_api_answers_429_beyond_30_calls_a_second_and_counts_them():
    api = FakeBotAPI(flood_window_s=0.3)
    statuses = [(await api.call("sendMessage", {"chat_id": 5, "text": f"第{i}条"}))[0] for i in range(30)]
    assert statuses == [200] * 30
    status, body = await api.call("sendChatAction", {"chat_id": 6, "action": "typing"})  # any call naming a chat
    assert status == 429 and body["parameters"]["retry_after"] == 1 and "Too Many Requests" in body["description"]
    assert (await api.call("getMe", {}))[0] == 200  # calls without a chat are not limited
    assert api.responses[429] == 1 and [c.method for c in api.flood_limited] == ["sendChatAction"]
    assert len(api.messages(5)) == 30
    await asyncio.sleep(0.3)
    assert (await api.call("sendMessage", {"chat_id": 5, "text": "又可以了"}))[0] == 200
    unlimited = FakeBotAPI(flood_limit=None)
    assert {(await unlimited.call("sendMessage", {"chat_id": 5, "text": "x"}))[0] for _ in range(50)} == {200}


# --- logs ------------------------------------------------------------------------------------------------

def test_log_lines_are_key_value_and_hash_ids():
    line = format_event("reply", user=keyed_hash("k", 42), kind="answer", total_ms=12.345, note="a b", none=None)
    assert line.startswith("event=reply user=") and 'note="a b"' in line and "total_ms=12.3" in line
    assert "none" not in line
    assert keyed_hash("k", 42) != keyed_hash("other", 42) and len(keyed_hash("k", 42)) == 10


def test_safe_traceback_keeps_frames_but_not_messages():
    question = "用户的" + "秘密问题"
    try:
        raise ValueError(question)
    except ValueError as exc:
        trace = safe_traceback(exc)
    assert "ValueError" in trace and "test_safe_traceback" in trace
    assert "秘密" not in trace


def test_configure_logging_silences_token_leaking_loggers():
    from bot.telegram.logs import configure_logging

    logging.getLogger("httpx").setLevel(logging.INFO)
    configure_logging("INFO")
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
