"""Unit tests: formatting, splitting, buttons, rate limits, retries, logs, the fake's HTML checks."""

from __future__ import annotations

import datetime as dtm
import logging

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.reply import Reply, Source
from bot.telegram import texts
from bot.telegram.fake_api import ApiError, parse_telegram_html
from bot.telegram.format import (
    MAX_MESSAGE_LEN,
    SuggestionBook,
    render_reply,
    sources_line,
    suggestions_keyboard,
    topics_keyboard,
    utf16_len,
)
from bot.telegram.logs import format_event, keyed_hash, safe_traceback
from bot.telegram.ratelimit import RetryingRateLimiter, UserRateLimiter

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


def test_suggestion_buttons_fit_callback_data_and_map_back():
    book = SuggestionBook()
    long_question = "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉，还要注意什么"
    markup = suggestions_keyboard(["怎么协商", long_question, "怎么协商", ""], book, one_shot=False)
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert len(buttons) == 2  # duplicates and blanks dropped
    for button in buttons:
        assert len(button.callback_data.encode()) <= 64
        assert button.callback_data.startswith("q:")
        assert len(button.text) <= 40
    assert book.get(buttons[1].callback_data[2:]) == long_question
    clarify = suggestions_keyboard(["A"], book, one_shot=True)
    assert clarify.inline_keyboard[0][0].callback_data.startswith("c:")
    assert suggestions_keyboard([], book, one_shot=False) is None


def test_suggestion_book_expires_and_is_bounded():
    now = [0.0]
    book = SuggestionBook(ttl_s=100, capacity=3, clock=lambda: now[0])
    first = book.add("一")
    keys = [book.add(t) for t in ("二", "三", "四")]
    assert book.get(first) is None  # evicted by capacity
    assert [book.get(k) for k in keys] == ["二", "三", "四"]
    now[0] = 101
    assert book.get(keys[0]) is None and len(book) == 0


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
