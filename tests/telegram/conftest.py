"""Fixtures for the Telegram front end: a fake Bot API, a bot running against it, engines.

Two engines:

- `real_engine`: the session-wide real dialogue engine (tests/conftest.py's
  `fresh_engine`: the test knowledge store, sessions wiped per test), wrapped
  by `ScriptedEngine` only to record calls and replies. The end-to-end tests
  of what users see (`real_bot`) run on it.
- `scripted`: `ScriptedEngine` around the fake engine (bot/telegram/fake_engine.py),
  for tests that need a controlled behaviour: an over-long answer, a slow or
  failing engine, ordering, shutdown. It answers texts carrying a marker
  (LONG_ANSWER, EXPLODE, ...) from its script and passes everything else to the
  fake engine. TELEGRAM_TEST_ENGINE=real passes everything else to the real
  engine instead; the suite passes with both.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from telegram import Update
from telegram.ext import Application

from bot.reply import Reply, Source
from bot.settings import Settings
from bot.telegram import build_application, get_frontend, serve
from bot.telegram.fake_api import FakeBotAPI, SentMessage
from bot.telegram.fake_engine import LONG_PARAGRAPH, FakeEngine
from bot.telegram.handlers import FrontEnd

try:  # a real redis-server on loopback (tests/test_sessions.py starts it), for buttons shared through Redis
    from test_sessions import redis_client, redis_url  # noqa: F401
except ImportError:  # the fixtures live in tests/conftest.py instead
    pass


@pytest.fixture
def inner_engine(request):
    """What `scripted` passes unmarked texts to: the fake engine, or the real one with
    TELEGRAM_TEST_ENGINE=real."""
    if os.environ.get("TELEGRAM_TEST_ENGINE") == "real":
        return request.getfixturevalue("fresh_engine")
    return FakeEngine()


class ScriptedEngine:
    """Wraps an engine: records every call, and answers marked texts from a script."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str | None]] = []  # (method, conversation_id, text)
        self.replies: list[Reply] = []  # every Reply returned, in order
        self.script: dict[str, Callable[[str], Reply]] = {}
        self.release = threading.Event()  # lets "HANG" calls finish
        self._lock = threading.Lock()

    def texts(self) -> list[str]:
        with self._lock:
            return [text for method, _, text in self.calls if method == "handle" and text is not None]

    def handle(self, conversation_id: str, text: str, on_partial=None) -> Reply:
        with self._lock:
            self.calls.append(("handle", conversation_id, text))
        for marker, action in self.script.items():
            if marker in text:
                # A script action may stream: action(text, on_partial).
                streams = len(inspect.signature(action).parameters) > 1
                return self._keep(action(text, on_partial) if streams else action(text))
        if on_partial is not None and "on_partial" in inspect.signature(self.inner.handle).parameters:
            return self._keep(self.inner.handle(conversation_id, text, on_partial=on_partial))
        return self._keep(self.inner.handle(conversation_id, text))

    def reset(self, conversation_id: str) -> Reply:
        with self._lock:
            self.calls.append(("reset", conversation_id, None))
        return self._keep(self.inner.reset(conversation_id))

    def forget(self, conversation_id: str) -> Reply:
        with self._lock:
            self.calls.append(("forget", conversation_id, None))
        return self._keep(self.inner.forget(conversation_id))

    def _keep(self, reply: Reply) -> Reply:
        with self._lock:
            self.replies.append(reply)
        return reply


def long_reply(_: str) -> Reply:
    body = "\n\n".join(f"第{i}部分：{LONG_PARAGRAPH}" for i in range(1, 7))
    return Reply(body, "answer", [Source("faq-x", "示例来源", 0.9)], ["还款协商怎么做"])


def explode(_: str) -> Reply:
    raise RuntimeError("engine failed on purpose")


def clarify_reply(_: str) -> Reply:
    return Reply("你最想先了解哪方面？", "clarify", [], ["逾期后会怎么催收", "逾期对征信有什么影响"])


def followup_reply(text: str) -> Reply:
    return Reply(f"回答：{text}", "answer", [Source("faq-y", "《某规范》 <第1条> & 说明", 0.8)],
                 ["怎么和平台协商分期还款", "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉"])


def slow_reply(text: str) -> Reply:
    time.sleep(1.2)
    return Reply(f"慢回答：{text}", "answer")


@pytest.fixture
def real_engine(fresh_engine) -> ScriptedEngine:
    """The real dialogue engine (sessions wiped), recording calls and replies; no script."""
    return ScriptedEngine(fresh_engine)


@pytest.fixture
def scripted(inner_engine) -> ScriptedEngine:
    wrapped = ScriptedEngine(inner_engine)
    wrapped.script.update({
        "LONG_ANSWER": long_reply,
        "EXPLODE": explode,
        "CLARIFY_ME": clarify_reply,
        "FOLLOWUPS": followup_reply,
        "SLOW_ANSWER": slow_reply,
    })

    def hang(text: str) -> Reply:
        wrapped.release.wait(10)
        return Reply("太晚了", "answer")

    wrapped.script["HANG"] = hang
    yield wrapped
    wrapped.release.set()


def make_settings(api: FakeBotAPI, **overrides) -> Settings:
    values = dict(telegram_bot_token=api.token, telegram_base_url=api.base_url,
                  rate_limit_messages=50, rate_limit_window_s=30.0, log_message_text=False)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def api():
    fake = FakeBotAPI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def tg_settings(api) -> Settings:
    return make_settings(api)


@dataclass
class RunningBot:
    api: FakeBotAPI
    app: Application
    engine: ScriptedEngine
    stop: asyncio.Event
    task: asyncio.Task
    frontend: FrontEnd = field(init=False)

    def __post_init__(self) -> None:
        self.frontend = get_frontend(self.app)

    async def ask(self, chat_id: int, text: str, count: int = 1, **kwargs) -> list[SentMessage]:
        self.api.user_message(chat_id, text, **kwargs)
        return await self.api.wait_for_messages(chat_id, count)

    async def shutdown(self, timeout: float = 10.0) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


async def start_bot(api: FakeBotAPI, settings: Settings, engine, **serve_kwargs) -> RunningBot:
    app = build_application(settings, engine)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(app, settings, stop=stop, ready=ready, poll_timeout=1.0, **serve_kwargs))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=10,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the start-up error
    assert ready.is_set(), "bot did not start"
    return RunningBot(api, app, engine, stop, task)


@pytest.fixture
async def make_api():
    """Factory: `await make_api(flood_limit=5)` -> another started FakeBotAPI, stopped afterwards."""
    started: list[FakeBotAPI] = []

    async def factory(**kwargs) -> FakeBotAPI:
        fake = FakeBotAPI(**kwargs)
        await fake.start()
        started.append(fake)
        return fake

    yield factory
    for fake in started:
        await fake.stop()


@pytest.fixture
async def make_bot(api, scripted, make_api):
    """Factory: `await make_bot(rate_limit_messages=3)` -> a RunningBot on the fake server
    (`on=` another FakeBotAPI from make_api)."""
    started: list[RunningBot] = []

    async def factory(*, engine=None, serve_kwargs: dict | None = None, on: FakeBotAPI | None = None,
                      **settings_overrides) -> RunningBot:
        server = on or api
        running = await start_bot(server, make_settings(server, **settings_overrides), engine or scripted,
                                  **(serve_kwargs or {}))
        started.append(running)
        return running

    yield factory
    for running in started:
        if not running.task.done():
            await running.shutdown()


@pytest.fixture
async def bot(make_bot) -> RunningBot:
    """The real Application, long polling the fake Bot API over HTTP, on the scripted fake engine."""
    return await make_bot()


@pytest.fixture
async def real_bot(make_bot, real_engine) -> RunningBot:
    """The real Application, long polling the fake Bot API over HTTP, on the real dialogue engine."""
    return await make_bot(engine=real_engine)


@dataclass
class InProcessBot:
    """The Application with an in-process transport: each update is processed to the end."""

    api: FakeBotAPI
    app: Application
    engine: ScriptedEngine

    @property
    def frontend(self) -> FrontEnd:
        return get_frontend(self.app)

    async def feed(self) -> None:
        for data in self.api.take_updates():
            await self.app.process_update(Update.de_json(data, self.app.bot))

    async def send(self, chat_id: int, text: str | None = None, **kwargs) -> list[SentMessage]:
        """Inject a user message, process it, return what the bot sent in reply."""
        self.api.user_message(chat_id, text, **kwargs)
        await self.feed()
        return self.new(chat_id)

    async def press(self, chat_id: int, **kwargs) -> list[SentMessage]:
        self.api.press_button(chat_id, **kwargs)
        await self.feed()
        return self.new(chat_id)

    def new(self, chat_id: int) -> list[SentMessage]:
        unread = self.api.unread(chat_id)
        self.api._cursor[chat_id] += len(unread)
        return unread


async def _make_inproc(settings_overrides: dict, scripted: ScriptedEngine, api: FakeBotAPI | None = None) -> InProcessBot:
    api = api or FakeBotAPI()
    values = {"rate_limit_messages": 50, "rate_limit_window_s": 30.0, **settings_overrides}
    settings = Settings(_env_file=None, telegram_bot_token=api.token, **values)
    app = build_application(settings, scripted, request=api.request())
    await app.initialize()
    return InProcessBot(api, app, scripted)


@pytest.fixture
async def make_inproc(scripted):
    """Factory: `await make_inproc(rate_limit_messages=3)` -> a handler-level harness."""
    made: list[InProcessBot] = []

    async def factory(*, api: FakeBotAPI | None = None, **settings_overrides) -> InProcessBot:
        """`api=` another harness's FakeBotAPI: a second bot process serving the same chats."""
        harness = await _make_inproc(settings_overrides, scripted, api)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.app.shutdown()
        harness.frontend.close()


@pytest.fixture
async def inproc(make_inproc) -> InProcessBot:
    """Handler-level harness (no sockets, no polling)."""
    return await make_inproc()
