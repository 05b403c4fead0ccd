"""FakeBotAPI from synchronous code: its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bot.telegram.fake_api.server import FakeBotAPI


class ThreadedFakeBotAPI:
    """FakeBotAPI on its own event loop in a background thread, with blocking methods.

    Every FakeBotAPI method or attribute is available: coroutines are run on the
    server's loop and waited for, plain methods are called on that loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        self.api: FakeBotAPI = self._run(self._make(args, kwargs))

    async def _make(self, args: tuple, kwargs: dict) -> FakeBotAPI:
        return FakeBotAPI(*args, **kwargs)

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "ThreadedFakeBotAPI":
        self._run(self.api.start(host, port))
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._run(self.api.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "ThreadedFakeBotAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.api, name)
        if not callable(attribute):
            return attribute
        if asyncio.iscoroutinefunction(attribute):
            return lambda *a, **k: self._run(attribute(*a, **k))

        async def call(*a: Any, **k: Any) -> Any:
            return attribute(*a, **k)
        return lambda *a, **k: self._run(call(*a, **k))
