"""The engine bridge: how the async front end calls the synchronous dialogue engine.

Every engine call runs on a worker thread (the event loop never blocks), gives
up after a timeout, stops waiting when the bot shuts down, and runs one at a
time per conversation: the one place the front end orders a conversation's
turns, so its replies are sent in the order they were asked. (The dialogue
engine's own turn lock guards session state, across processes too; this one
also keeps a second question's reply from overtaking the first's.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from bot.reply import Reply

ENGINE_TIMEOUT_S = 60.0  # an engine call longer than this is treated as an error


class ShuttingDown(Exception):
    """The bot is stopping and gave up waiting for an engine call."""


class EngineTimeout(Exception):
    """The engine did not answer within ENGINE_TIMEOUT_S."""


def default_engine_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2)))


class EngineBridge:
    def __init__(self, workers: int | None = None, timeout_s: float = ENGINE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.executor = ThreadPoolExecutor(max_workers=workers or default_engine_workers(),
                                           thread_name_prefix="engine")
        self._locks: dict[str, list] = {}  # conversation id -> [asyncio.Lock, users]
        self._abort = asyncio.Event()

    async def call(self, fn: Callable[..., Reply], *args: str, **kwargs) -> Reply:
        """`fn(*args, **kwargs)` on a worker thread; ShuttingDown or EngineTimeout if it does not return."""
        if self._abort.is_set():
            raise ShuttingDown()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        abort = asyncio.ensure_future(self._abort.wait())
        try:
            done, _ = await asyncio.wait({future, abort}, timeout=self.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            abort.cancel()
        if future in done:
            return future.result()
        future.cancel()  # only helps if it had not started; a running thread finishes on its own
        if abort in done:
            raise ShuttingDown()
        raise EngineTimeout(f"engine did not answer within {self.timeout_s:.0f}s")

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, conversation: str) -> AsyncIterator[None]:
        """Holds the conversation's turn: the next one waits until this block ends."""
        entry = self._locks.get(conversation)
        if entry is None:
            entry = self._locks[conversation] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(conversation, None)

    def abort(self) -> None:
        """Stop waiting for engine calls, now and from now on: they raise ShuttingDown."""
        self._abort.set()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
