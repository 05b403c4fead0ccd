"""A fake Telegram Bot API server on loopback, for tests, replays, demos and load benchmarks.

Standard library only (asyncio streams; httpx only to call a webhook). It
speaks enough of the Bot API for a PTB Application to run against it:
getMe, deleteWebhook/setWebhook/getWebhookInfo, setMyCommands/getMyCommands,
getUpdates (long polling), sendMessage, sendDocument, sendChatAction, answerCallbackQuery,
editMessageText, editMessageReplyMarkup, deleteMessage, close/logOut.

It checks what Telegram checks, so tests catch what production would reject:
Telegram-HTML validity (unknown tags, unescaped < and &, unclosed tags),
4,096-character messages, 1-64-byte callback_data, answering a callback
query twice. It enforces Telegram's overall flood limit: more than 30 calls
that name a chat (sendMessage, edits, chat actions, ...) within one second get
429 with retry_after, as Telegram answers, and `responses[429]` counts every
429 sent. And it injects faults: 429 flood control with retry_after, dropped
connections, 5xx, delays.

Typical use (one event loop)::

    api = FakeBotAPI()
    await api.start()                         # 127.0.0.1, free port
    settings = Settings(telegram_bot_token=api.token, telegram_base_url=api.base_url)
    ...run the bot...
    api.user_message(chat_id=42, text="花呗逾期会怎样")
    [reply] = await api.wait_for_messages(42)
    api.press_button(42, label="怎么协商")
    await api.stop()

From synchronous code or another thread, `ThreadedFakeBotAPI` runs it on its
own loop and exposes the same methods as blocking calls.

`python -m bot.telegram.fake_api [--port 8081] [--demo]` serves it standalone;
`--demo` plays one update of every kind to a bot started against it and
reports what came back.

The package: server.py (FakeBotAPI: state, lifecycle, faults) built from
updates.py (injecting updates, observing replies), methods.py (the Bot API
methods), http.py (HTTP and in-process transports); checks.py (what Telegram
rejects), records.py, threaded.py (ThreadedFakeBotAPI), demo.py (the CLI).
"""

from bot.telegram.fake_api.checks import (
    ALLOWED_TAGS,
    DEFAULT_TOKEN,
    MAX_CALLBACK_DATA,
    MAX_TEXT_LEN,
    ApiError,
    parse_telegram_html,
    utf16_len,
)
from bot.telegram.fake_api.demo import main, run_demo
from bot.telegram.fake_api.http import InProcessRequest
from bot.telegram.fake_api.records import ApiCall, Fault, SentDocument, SentMessage
from bot.telegram.fake_api.server import FakeBotAPI
from bot.telegram.fake_api.threaded import ThreadedFakeBotAPI

__all__ = [
    "ALLOWED_TAGS", "DEFAULT_TOKEN", "MAX_CALLBACK_DATA", "MAX_TEXT_LEN", "ApiCall", "ApiError", "FakeBotAPI",
    "Fault", "InProcessRequest", "SentDocument", "SentMessage", "ThreadedFakeBotAPI", "main", "parse_telegram_html", "run_demo",
    "utf16_len",
]
