"""Fixtures for the Telegram front end: a fake Bot API, a bot running against it, engines.

Both engines are `FakeEngine` (bot/fake_engine.py), which records every call and reply:

- `real_engine`: the fake in front of the session-wide real dialogue engine (tests/conftest.py's
  `fresh_engine`: the test knowledge store, sessions wiped per test), which answers every
  message: the tests on it send none of the fake's markers, so the fake only records. The
  end-to-end tests of what users see (`real_bot`) run on it.
- `scripted`: the fake on its own, for tests that need a controlled behaviour: an over-long
  answer, a slow or failing engine, ordering, shutdown. Texts carrying a marker (LONG_ANSWER,
  EXPLODE, FOLLOWUPS, ...) or one of a test's own triggers (`engine.script[...]`) get the
  fake's scripted reply. TELEGRAM_TEST_ENGINE=real passes everything else to the real engine
  instead of the fake's small conversation; the suite passes with both.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import pytest
from telegram import Update
from telegram.ext import Application

from bot.fake_engine import FakeEngine
from bot.settings import Settings
from bot.telegram import build_application, get_frontend, serve
from bot.telegram.fake_api import FakeBotAPI, SentMessage
from bot.telegram.handlers import FrontEnd

try:  # a real redis-server on loopback (tests/test_sessions.py starts it), for buttons shared through Redis
    from test_sessions import redis_client, redis_url  # noqa: F401
except ImportError:  # the fixtures live in tests/conftest.py instead
    pass


@pytest.fixture
def real_engine(fresh_engine) -> FakeEngine:
    """The real dialogue engine (sessions wiped) answering everything, its calls and replies recorded."""
    return FakeEngine(fallback=fresh_engine)


@pytest.fixture
def scripted(request) -> FakeEngine:
    """The fake engine; with TELEGRAM_TEST_ENGINE=real, the real one answers what the fake's
    markers and the test's own triggers do not."""
    real = request.getfixturevalue("fresh_engine") if os.environ.get("TELEGRAM_TEST_ENGINE") == "real" else None
    engine = FakeEngine(fallback=real)
    yield engine
    engine.release.set()  # a HANG call still waiting finishes


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
    engine: FakeEngine
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
    engine: FakeEngine

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


async def _make_inproc(settings_overrides: dict, scripted: FakeEngine, api: FakeBotAPI | None = None) -> InProcessBot:
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
