"""End to end: the real Application long-polling a fake Bot API server over loopback HTTP."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from bot.reply import Reply, Source
from bot.telegram import get_frontend, texts
from bot.telegram.fake_api import parse_telegram_html
from bot.fake_engine import LONG_PARAGRAPH
from bot.telegram.format import render_reply, source_label

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
ME = 111_222_333
YOU = 222_333_444


def body_of(reply: Reply) -> str:
    """The reply text as a user sees it (no source line), e.g. for comparison with `.plain`."""
    return render_reply(Reply(reply.text, reply.kind))[0]


async def test_start_registers_commands_and_a_question_is_answered(real_bot, api):
    assert [c["command"] for c in api.commands] == [name for name, _ in texts.COMMANDS]
    assert api.calls_to("getMe") and api.calls_to("deleteWebhook")
    [welcome] = await real_bot.ask(ME, "/start")
    assert "隐私" in welcome.plain and len(welcome.buttons) == len(texts.TOPICS)
    [answer] = await real_bot.ask(ME, "花呗逾期一个月会怎么样")
    assert real_bot.engine.texts() == ["花呗逾期一个月会怎么样"]
    [reply] = real_bot.engine.replies
    assert reply.kind == "answer" and reply.sources and reply.suggestions
    assert answer.parse_mode == "HTML"
    # The engine's answer, then one line of sources, then its suggestions as buttons.
    body, _, source_line = answer.plain.rpartition("\n\n")
    assert parse_telegram_html(body_of(reply)) == body
    # Each source: the entry's title, then the documents it rests on (title, publisher, date).
    assert source_line == "来源：① " + source_label(reply.sources[0]) + "".join(
        f" {'①②③④⑤'[i]} {source_label(s)}" for i, s in enumerate(reply.sources[1:], 1))
    assert reply.sources[0].title in source_line and reply.sources[0].refs[0].publisher in source_line
    assert [label for label, _ in answer.buttons] == reply.suggestions
    typing = [a for a in api.chat_actions if a["chat_id"] == ME]
    assert typing and typing[0]["at"] <= answer.at
    assert not api.calls_to("editMessageText")  # no language model: nothing streams


async def test_buttons_work_when_pressed(real_bot, api):
    [keyboard] = await real_bot.ask(ME, "/topics")
    assert len(keyboard.buttons) == len(texts.TOPICS)
    api.press_button(ME, label="催收边界")
    [topic_answer] = await api.wait_for_messages(ME)
    question = dict(texts.TOPICS)["催收边界"]
    assert real_bot.engine.texts() == [question]
    assert topic_answer.plain.startswith(question)  # the question, in bold, then its answer
    suggestion = real_bot.engine.replies[-1].suggestions[0]
    api.press_button(ME, label=suggestion)
    [followup_answer] = await api.wait_for_messages(ME)
    assert real_bot.engine.texts()[-1] == suggestion
    reply = real_bot.engine.replies[-1]
    assert reply.kind == "answer" and reply.sources
    assert followup_answer.plain.startswith(suggestion) and "来源：①" in followup_answer.plain
    assert len(api.callback_answers) == 2


async def test_a_button_still_works_after_a_restart(make_bot, api):
    first = await make_bot()
    [answer] = await first.ask(ME, "FOLLOWUPS 重启之前的问题")
    await first.shutdown()
    second = await make_bot()  # a new process: new Application, empty caches, the same stores
    assert get_frontend(second.app) is not get_frontend(first.app)
    api.press_button(ME, label="怎么和平台协商分期还款", message_id=answer.message_id)
    [reply] = await api.wait_for_messages(ME)
    assert reply.plain.startswith("怎么和平台协商分期还款")
    assert api.callback_answers[-1]["text"] is None  # not "expired"


async def test_complain_gives_channels_and_evidence_from_the_knowledge_base(real_bot, api):
    channels, evidence = await real_bot.ask(ME, "/complain", count=2)
    assert real_bot.engine.texts() == list(texts.COMPLAIN_QUESTIONS)
    assert "95188" in channels.plain or "12378" in channels.plain  # phone numbers from the knowledge base
    assert "来源：" in channels.plain and not channels.buttons
    assert "录音" in evidence.plain and evidence.buttons


async def test_sticker_gets_a_friendly_reply(real_bot, api):
    api.user_message(ME, kind="sticker")
    [reply] = await api.wait_for_messages(ME)
    assert reply.text == texts.NON_TEXT["sticker"]
    assert real_bot.engine.calls == []


async def test_over_long_answer_is_split(bot, api):
    messages = await bot.ask(ME, "LONG_ANSWER", count=3)
    await api.settle()
    messages += api.unread(ME)
    assert len(messages) >= 3
    assert all(len(m.plain) <= 4096 for m in messages)
    assert messages[0].plain.startswith("第1部分")
    assert messages[-1].buttons and not any(m.buttons for m in messages[:-1])


# --- streaming (what a language model's partial answers look like in Telegram) -----------------

STREAMED = Reply("第一句先别慌。第二句主动联系平台。第三句保存好证据。\n\n- 要点一\n- 要点二", "answer",
                 [Source("faq-s", "流式来源", 0.9)], ["怎么和平台协商分期还款", "要保存哪些证据"])


def streaming(partials: list[str], gap_s: float, final: Reply = STREAMED):
    """A script action that streams `partials` `gap_s` apart, then returns `final`."""
    def action(text: str, on_partial) -> Reply:
        for partial in partials:
            on_partial(partial)
            time.sleep(gap_s)
        return final
    return action


async def wait_for_final(api, chat_id: int) -> None:
    await api.wait_for_call("editMessageText", lambda c: c.params.get("reply_markup"), timeout=10)
    await api.settle()


async def test_streamed_answer_is_a_placeholder_edited_into_the_final_reply(bot, api):
    partials = ["第一句先别慌。", "第一句先别慌。第二句主动联系平台。", "第一句先别慌。第二句主动联系平台。",
                "第一句先别慌。第二句主动联系平台。第三句保存好证据。"] * 2
    bot.engine.script["STREAM_FAST"] = streaming(partials, 0.03)
    api.user_message(ME, "STREAM_FAST 逾期了怎么办")
    [message] = await api.wait_for_messages(ME)  # the placeholder, on the first partial
    assert message.history[0] == "第一句先别慌。" + texts.STREAMING_SUFFIX
    await wait_for_final(api, ME)
    assert api.unread(ME) == []  # one message, edited in place
    [final_html] = render_reply(STREAMED)
    assert message.text == final_html  # exactly the formatted final reply: HTML, sources ...
    assert [label for label, _ in message.buttons] == STREAMED.suggestions  # ... and buttons
    # Partials came faster than one edit per 1.2 s: only the final edit was made.
    assert len(api.calls_to("editMessageText")) == 1 < len(partials)


async def test_streamed_edits_are_throttled_to_one_per_interval(bot, api):
    partials = [f"第{i}句。" * i for i in range(1, 7)]
    bot.engine.script["STREAM_SLOW"] = streaming(partials, 0.35)
    api.user_message(ME, "STREAM_SLOW 逾期了怎么办")
    [message] = await api.wait_for_messages(ME)
    await wait_for_final(api, ME)
    sent = api.calls_to("sendMessage")[-1].at
    edits = [c.at for c in api.calls_to("editMessageText")]
    assert 2 <= len(edits) < len(partials)  # at least one partial edit, then the final one
    streamed_edits = [sent, *edits[:-1]]
    assert all(b - a >= 1.15 for a, b in zip(streamed_edits, streamed_edits[1:]))  # ~1.2 s apart
    assert all(version.endswith(texts.STREAMING_SUFFIX) for version in message.history[:-1])
    assert message.text == render_reply(STREAMED)[0] and message.buttons


async def test_streamed_answer_longer_than_a_message_fills_the_placeholder_then_continues(bot, api):
    long_final = Reply("\n\n".join(f"第{i}部分：{LONG_PARAGRAPH}" for i in range(1, 7)), "answer",
                       [Source("faq-x", "示例来源", 0.9)], ["还款协商怎么做"])
    bot.engine.script["STREAM_LONG"] = streaming(["第1部分：逾期以后先别慌。"], 0.05, long_final)
    api.user_message(ME, "STREAM_LONG")
    [placeholder] = await api.wait_for_messages(ME)
    chunks = render_reply(long_final)
    rest = await api.wait_for_messages(ME, len(chunks) - 1)
    await api.settle()
    assert placeholder.text == chunks[0] and [m.text for m in rest] == chunks[1:]
    assert not placeholder.buttons and rest[-1].buttons
    assert api.unread(ME) == []


def first_line(body: str) -> str:
    line = next(line for line in body.splitlines() if line.strip())
    return line.strip().lstrip("- ").strip()


def dialogue_with_a_streaming_model(engine, question: str, sleep_s: float):
    """The real dialogue engine (the session's store) with a fake chat model that streams,
    character by character, an answer grounded in the entries retrieved for `question`."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from bot.answer import AnswerEngine
    from bot.dialogue import DialogueEngine
    from bot.llm import LLMGenerator
    from bot.sessions import MemorySessionStore

    contexts = []

    class Spy(LLMGenerator):
        def stream(self, message, fallback, **kwargs):
            contexts.append(fallback.retrieval.hits[:3])
            return super().stream(message, fallback, **kwargs)

    model = FakeListChatModel(responses=["-"], sleep=sleep_s)
    settings = engine.answers.settings.model_copy(update={"llm_provider": "openai-compatible"})
    dialogue = DialogueEngine(AnswerEngine(settings, engine.retriever, Spy(settings, model)), MemorySessionStore())
    dialogue.handle("probe", question)  # "-" fails the check; it shows which entries the model is given
    hits = contexts[-1]
    model.responses = [f"别太担心，我们一步一步来看。\n\n{first_line(hits[0].unit.body)}[1]\n\n"
                       f"另外，{first_line(hits[1].unit.body)}[2]"]
    model.i = 0
    return dialogue


async def test_a_language_model_answer_streams_through_the_real_engine(make_bot, api, engine):
    question = "花呗逾期一个月会怎么催收"
    dialogue = dialogue_with_a_streaming_model(engine, question, sleep_s=0.02)
    bot = await make_bot(engine=dialogue)
    api.user_message(ME, question)
    [message] = await api.wait_for_messages(ME, timeout=20)
    assert message.history[0].endswith(texts.STREAMING_SUFFIX)  # a checked partial answer first
    await wait_for_final(api, ME)
    assert api.unread(ME) == []
    final = message.plain
    assert "[1]" in final and "来源：①" in final and message.buttons
    assert len(message.history) >= 2 and final.startswith(message.history[0][:-len(texts.STREAMING_SUFFIX)])
    assert len(api.calls_to("editMessageText")) == len(message.history) - 1


async def test_flood_control_is_survived(bot, api):
    api.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    [answer] = await bot.ask(ME, "FOLLOWUPS 被限流了吗")
    assert time.monotonic() - started >= 1.0  # waited what Telegram asked
    assert len(api.calls_to("sendMessage")) == 2  # the 429, then the retry
    assert answer.plain.startswith("回答：FOLLOWUPS 被限流了吗")
    [again] = await bot.ask(ME, "FOLLOWUPS 还在吗")  # and the bot carries on
    assert again.plain


def most_chat_calls_in_one_second(api) -> int:
    stamps = sorted(c.at for c in api.calls if "chat_id" in c.params)
    return max((sum(1 for t in stamps[i:] if t - start < 1.0) for i, start in enumerate(stamps)), default=0)


async def test_a_burst_of_users_stays_under_telegrams_limit_without_a_429(bot, api):
    users = [900_000 + i for i in range(60)]
    started = time.monotonic()
    for user in users:
        api.user_message(user, f"FOLLOWUPS 第{user}位用户的问题")
    replies = await asyncio.gather(*(api.wait_for_messages(user, timeout=30) for user in users))
    assert all(reply.plain.startswith("回答：FOLLOWUPS") for [reply] in replies)
    assert api.responses[429] == 0 and api.flood_limited == []
    assert most_chat_calls_in_one_second(api) <= 30
    assert time.monotonic() - started >= 2.0  # 60 answers, at most 24 a second: paced, none dropped


async def test_429s_from_the_rate_enforcing_api_are_waited_out_and_counted(make_api, make_bot):
    # A Telegram stricter than we throttle for (5 a second): it answers 429, and every
    # request waits what it asks before the refused ones are sent again.
    strict = await make_api(flood_limit=5)
    bot = await make_bot(on=strict)
    users = [910_000 + i for i in range(8)]
    for user in users:
        strict.user_message(user, f"FOLLOWUPS 第{user}位")
    replies = await asyncio.gather(*(strict.wait_for_messages(user, timeout=30) for user in users))
    assert all(reply.plain.startswith("回答：FOLLOWUPS") for [reply] in replies)
    await strict.settle(0.3)
    assert all(strict.unread(user) == [] for user in users)  # each answered once
    assert strict.responses[429] == len(strict.flood_limited) > 0
    assert get_frontend(bot.app).retrying.flood_controlled == strict.responses[429]  # every one seen by the bot


async def test_network_errors_are_survived(bot, api):
    api.fail_next("sendMessage", drop=True)
    api.fail_next("sendChatAction", drop=True)
    api.fail_next("getUpdates", status=502, retry_after=None)
    [answer] = await bot.ask(ME, "FOLLOWUPS 网络不好")
    assert answer.plain.startswith("回答：")
    api.fail_next("getUpdates", drop=True)
    [answer] = await bot.ask(ME, "FOLLOWUPS 再试一次")
    assert answer.plain.startswith("回答：")


async def test_rejected_set_my_commands_does_not_stop_the_bot(api, make_bot):
    api.fail_next("setMyCommands", status=400, retry_after=None, description="Bad Request: nope")
    bot = await make_bot()
    [answer] = await bot.ask(ME, "FOLLOWUPS 还能用吗")
    assert answer.plain


async def test_one_slow_answer_does_not_block_other_users(bot, api):
    api.user_message(ME, "SLOW_ANSWER 我的问题很难")
    await asyncio.sleep(0.1)
    [quick] = await bot.ask(YOU, "FOLLOWUPS 我的问题很简单")
    [slow] = await api.wait_for_messages(ME, timeout=5)
    assert quick.at < slow.at


async def test_each_users_messages_are_answered_in_order(bot, api):
    def jittery(text: str) -> Reply:
        time.sleep(random.uniform(0, 0.05))
        return Reply(f"答：{text}", "answer")

    bot.engine.script["ORDER"] = jittery
    for i in range(6):
        api.user_message(ME, f"ORDER {i}")
    replies = await api.wait_for_messages(ME, 6)
    assert [r.plain for r in replies] == [f"答：ORDER {i}" for i in range(6)]


async def test_rate_limit_notice_over_http(api, make_bot, real_engine):
    bot = await make_bot(engine=real_engine, rate_limit_messages=2, rate_limit_window_s=30)
    questions = ["花呗逾期一个月会怎么样", "催收打电话给我家人怎么办", "逾期会不会被起诉", "怎么协商分期"]
    for question in questions:
        api.user_message(ME, question)
    replies = await api.wait_for_messages(ME, 3)
    await api.settle()
    assert api.unread(ME) == []
    assert sum("你发得有点快" in r.plain for r in replies) == 1
    assert bot.engine.texts() == questions[:2]
    assert all(reply.kind == "answer" for reply in bot.engine.replies)


async def test_shutdown_tells_waiting_users_to_ask_again(api, make_bot):
    bot = await make_bot(serve_kwargs={"shutdown_grace_s": 0.3})
    api.user_message(ME, "HANG 我的问题")
    await api.wait_for_call("sendChatAction")
    started = time.monotonic()
    await bot.shutdown(timeout=5)
    assert time.monotonic() - started < 3
    [notice] = await api.wait_for_messages(ME, timeout=1)
    assert notice.text == texts.SHUTTING_DOWN


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_process_stops_gracefully_on_signal(api, signum):
    """`run()` in its own process: answers, then exits cleanly within seconds of the signal."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_BASE_URL": api.base_url,
           "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}
    code = ("from bot.telegram import run; from bot.fake_engine import FakeEngine; "
            "run(engine=FakeEngine())")
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=str(ROOT), env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await api.wait_for_call("getUpdates", timeout=30)
        api.user_message(ME, "我的私人问题：花呗逾期")
        [answer] = await api.wait_for_messages(ME, timeout=10)
        assert answer.plain
        started = time.monotonic()
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        assert time.monotonic() - started < 5
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    logs = stderr.decode()
    assert "event=telegram_started" in logs and "event=reply" in logs and "event=telegram_stopped" in logs
    assert "私人问题" not in logs and api.token not in logs and str(ME) not in logs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_mode_when_webhook_url_is_set(api, make_bot):
    port = _free_port()
    bot = await make_bot(webhook_url=f"http://127.0.0.1:{port}/telegram-hook", webhook_listen="127.0.0.1",
                         webhook_port=port)
    assert api.webhook["url"].endswith("/telegram-hook") and api.webhook["secret_token"]
    assert not api.calls_to("getUpdates")
    [answer] = await bot.ask(ME, "FOLLOWUPS 通过 webhook")
    assert answer.plain.startswith("回答：")


async def test_webhook_mode_on_an_install_without_tornado_fails_clearly(api, make_bot, monkeypatch):
    """tornado comes with python-telegram-bot[webhooks]; an install without it must say so, not crash obscurely."""
    monkeypatch.setitem(sys.modules, "tornado", None)  # `import tornado` now raises ImportError
    with pytest.raises(RuntimeError, match=r"python-telegram-bot\[webhooks\]"):
        await make_bot(webhook_url="http://127.0.0.1:9/hook")
    assert not api.webhook  # nothing was registered with Telegram


def test_threaded_fake_api_serves_plain_http_clients():
    """The fake from synchronous code (e.g. a replay tool): blocking calls, any HTTP client."""
    import httpx

    from bot.telegram.fake_api import ThreadedFakeBotAPI

    with ThreadedFakeBotAPI() as api:
        url = f"{api.base_url}{api.token}"
        assert httpx.post(f"{url}/getMe").json()["result"]["username"] == api.username
        assert httpx.post(f"{api.base_url}wrong-token/getMe").status_code == 401
        api.user_message(ME, "你好")
        [update] = httpx.post(f"{url}/getUpdates", data={"timeout": "1"}).json()["result"]
        assert update["message"]["text"] == "你好"
        bad = httpx.post(f"{url}/sendMessage", json={"chat_id": ME, "text": "a < b", "parse_mode": "HTML"})
        assert bad.status_code == 400 and "can't parse entities" in bad.json()["description"]
        httpx.post(f"{url}/sendMessage", json={"chat_id": ME, "text": "<b>好</b>", "parse_mode": "HTML"})
        [sent] = api.wait_for_messages(ME, timeout=5)
        assert sent.plain == "好"
