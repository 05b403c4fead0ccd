"""The fake server: its state, lifecycle and fault injection; the rest comes from its mixins."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any

from telegram.constants import FloodLimit

from bot.telegram.fake_api.checks import DEFAULT_TOKEN
from bot.telegram.fake_api.http import HttpMixin, InProcessRequest
from bot.telegram.fake_api.methods import MethodsMixin
from bot.telegram.fake_api.records import ApiCall, Fault, SentDocument, SentMessage
from bot.telegram.fake_api.updates import UpdatesMixin


class FakeBotAPI(UpdatesMixin, MethodsMixin, HttpMixin):
    """The fake server. `flood_limit` calls naming a chat per `flood_window_s` (Telegram's
    30 a second by default; None: no limit); beyond it, 429 with retry_after."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_id: int | None = None,
                 username: str = "debt_help_test_bot", first_name: str = "债务助手",
                 flood_limit: int | None = FloodLimit.MESSAGES_PER_SECOND, flood_window_s: float = 1.0) -> None:
        self.token = token
        self.flood_limit = flood_limit
        self.flood_window_s = flood_window_s
        self._flood_times: deque[float] = deque()  # accepted calls naming a chat, in the last window
        self.flood_limited: list[ApiCall] = []  # calls answered 429 because of the flood limit
        self.responses: Counter[int] = Counter()  # HTTP status -> how many answers (429s included)
        self.bot_id = bot_id if bot_id is not None else int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.calls: list[ApiCall] = []
        self.commands: list[dict] = []
        self.callback_answers: list[dict] = []
        self.chat_actions: list[dict] = []
        self.webhook: dict[str, Any] = {}
        self._sent: dict[int, list[SentMessage]] = defaultdict(list)
        self._documents: dict[int, list[SentDocument]] = defaultdict(list)
        self._by_id: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], dict] = {}
        self._chats: dict[int, dict] = {}
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._cursor: dict[int, int] = defaultdict(int)
        self._waiters: dict[object, asyncio.Event] = {}  # key -> event set on the next change
        self._closing = False
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._conn_tasks: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self.on_call: Callable[[ApiCall], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Pass as TELEGRAM_BASE_URL (PTB appends the token)."""
        if self.port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeBotAPI":
        self.host = host
        self._closing = False
        self._server = await asyncio.start_server(self._serve_connection, host, port, limit=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify(*list(self._waiters))
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._conn_tasks) + list(self._background):
            task.cancel()
        await asyncio.gather(*self._conn_tasks, *self._background, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> "FakeBotAPI":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request(self) -> "InProcessRequest":
        """A PTB transport that calls this fake directly, without HTTP (fast handler tests)."""
        return InProcessRequest(self)

    # --- faults ---------------------------------------------------------------------------------
    def fail_next(self, method: str, *, status: int = 429, retry_after: int | None = 1, times: int = 1,
                  description: str | None = None, drop: bool = False, delay_s: float = 0.0) -> None:
        """Make the next `times` calls of `method` fail (429 with retry_after by default).

        drop=True closes the connection without an answer instead (PTB: NetworkError);
        delay_s holds the answer back first (longer than PTB's read timeout: TimedOut).
        """
        for _ in range(times):
            self._faults[method].append(Fault(status, retry_after if status == 429 else None,
                                              description, drop, delay_s))
