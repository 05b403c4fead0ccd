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

from bot.reply import Reply
from bot.telegram import texts

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
ME = 111_222_333
YOU = 222_333_444


async def test_start_registers_commands_and_a_question_is_answered(bot, api):
    assert [c["command"] for c in api.commands] == [name for name, _ in texts.COMMANDS]
    assert api.calls_to("getMe") and api.calls_to("deleteWebhook")
    [welcome] = await bot.ask(ME, "/start")
    assert "隐私" in welcome.plain
    [answer] = await bot.ask(ME, "花呗逾期一个月会怎么样")
    assert answer.parse_mode == "HTML" and answer.plain
    assert bot.engine.texts() == ["花呗逾期一个月会怎么样"]
    typing = [a for a in api.chat_actions if a["chat_id"] == ME]
    assert typing and typing[0]["at"] <= answer.at


async def test_buttons_work_when_pressed(bot, api):
    [keyboard] = await bot.ask(ME, "/topics")
    assert len(keyboard.buttons) == len(texts.TOPICS)
    api.press_button(ME, label="催收边界")
    [topic_answer] = await api.wait_for_messages(ME)
    assert topic_answer.plain.startswith(dict(texts.TOPICS)["催收边界"])
    [with_followups] = await bot.ask(ME, "FOLLOWUPS 逾期了")
    api.press_button(ME, label="怎么和平台协商分期还款")
    [followup_answer] = await api.wait_for_messages(ME)
    assert bot.engine.texts()[-1] == "怎么和平台协商分期还款"
    assert followup_answer.plain.startswith("怎么和平台协商分期还款")
    assert len(api.callback_answers) == 2


async def test_sticker_gets_a_friendly_reply(bot, api):
    api.user_message(ME, kind="sticker")
    [reply] = await api.wait_for_messages(ME)
    assert reply.text == texts.NON_TEXT["sticker"]
    assert bot.engine.calls == []


async def test_over_long_answer_is_split(bot, api):
    messages = await bot.ask(ME, "LONG_ANSWER", count=3)
    await api.settle()
    messages += api.unread(ME)
    assert len(messages) >= 3
    assert all(len(m.plain) <= 4096 for m in messages)
    assert messages[0].plain.startswith("第1部分")
    assert messages[-1].buttons and not any(m.buttons for m in messages[:-1])


async def test_flood_control_is_survived(bot, api):
    api.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    [answer] = await bot.ask(ME, "FOLLOWUPS 被限流了吗")
    assert time.monotonic() - started >= 1.0  # waited what Telegram asked
    assert len(api.calls_to("sendMessage")) == 2  # the 429, then the retry
    assert answer.plain.startswith("回答：FOLLOWUPS 被限流了吗")
    [again] = await bot.ask(ME, "FOLLOWUPS 还在吗")  # and the bot carries on
    assert again.plain


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


async def test_rate_limit_notice_over_http(api, make_bot):
    bot = await make_bot(rate_limit_messages=2, rate_limit_window_s=30)
    for i in range(4):
        api.user_message(ME, f"FOLLOWUPS 第{i}个")
    replies = await api.wait_for_messages(ME, 3)
    await api.settle()
    assert api.unread(ME) == []
    assert sum("你发得有点快" in r.plain for r in replies) == 1
    assert len(bot.engine.texts()) == 2


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
    code = ("from bot.telegram import run; from bot.telegram.fake_engine import FakeEngine; "
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
    pytest.importorskip("tornado", reason='webhook mode needs the "python-telegram-bot[webhooks]" extra')
    port = _free_port()
    bot = await make_bot(webhook_url=f"http://127.0.0.1:{port}/telegram-hook", webhook_listen="127.0.0.1",
                         webhook_port=port)
    assert api.webhook["url"].endswith("/telegram-hook") and api.webhook["secret_token"]
    assert not api.calls_to("getUpdates")
    [answer] = await bot.ask(ME, "FOLLOWUPS 通过 webhook")
    assert answer.plain.startswith("回答：")


async def test_webhook_mode_without_tornado_fails_clearly(api, make_bot):
    try:
        import tornado  # noqa: F401
        pytest.skip("tornado is installed")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="webhooks"):
        await make_bot(webhook_url="http://127.0.0.1:9/hook")


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
