"""Per-user sliding-window rate limiting, and retrying Telegram's flood control.

Two different limits live here:
- `UserRateLimiter`: how many messages one user may send us per window
  (RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_S). Over the limit the user gets
  one polite notice per window; further messages in that window are dropped.
- `RetryingRateLimiter`: PTB's hook around every Bot API request we make. When
  Telegram answers 429 (RetryAfter) it waits and retries; on network errors and
  timeouts it backs off and retries. Both are bounded, so a broken network
  surfaces as an error (and the error handler) instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import random
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

from bot.telegram.logs import log_event

log = logging.getLogger("bot.telegram.ratelimit")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    notify: bool = False  # over the limit and no notice sent yet in this window
    retry_in_s: float = 0.0


class UserRateLimiter:
    """At most `limit` events per `window_s` seconds per key (a user id, kept in memory only)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[int, deque[float]] = {}
        self._notified_until: dict[int, float] = {}
        self._last_sweep = clock()

    def check(self, key: int) -> Verdict:
        now = self._clock()
        self._sweep(now)
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window_s:
            events.popleft()
        if len(events) < self.limit:
            events.append(now)
            return Verdict(True)
        retry_in = max(0.0, self.window_s - (now - events[0]))
        notify = self._notified_until.get(key, 0.0) <= now
        if notify:
            self._notified_until[key] = now + retry_in
        return Verdict(False, notify, retry_in)

    def forget(self, key: int) -> None:
        self._events.pop(key, None)
        self._notified_until.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Drop idle users now and then so memory stays bounded by active users."""
        if now - self._last_sweep < self.window_s:
            return
        self._last_sweep = now
        for key in [k for k, ev in self._events.items() if not ev or now - ev[-1] >= self.window_s]:
            del self._events[key]
        for key in [k for k, until in self._notified_until.items() if until <= now]:
            del self._notified_until[key]


def _retry_after_s(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type becomes timedelta in v23
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class RetryingRateLimiter(BaseRateLimiter[None]):
    """Retries Bot API requests on flood control (RetryAfter) and network errors.

    - RetryAfter: wait what Telegram asks (plus a little jitter) and retry, at
      most `max_flood_retries` times and never for a wait above `max_retry_after_s`.
    - NetworkError / TimedOut (not BadRequest, which is also a NetworkError in
      PTB): exponential backoff, at most `max_network_retries` times.
    - Chat actions ("typing…") are cosmetic and never retried.
    getUpdates never comes through here (PTB's Updater has its own retry loop).

    A retried sendMessage whose first attempt timed out after reaching Telegram
    can show up twice; we accept that over losing an answer.
    """

    NO_RETRY = frozenset({"sendChatAction"})

    def __init__(
        self,
        *,
        max_flood_retries: int = 3,
        max_retry_after_s: float = 60.0,
        max_network_retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
    ) -> None:
        self.max_flood_retries = max_flood_retries
        self.max_retry_after_s = max_retry_after_s
        self.max_network_retries = max_network_retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._stopped = asyncio.Event()

    def stop_retrying(self) -> None:
        """At shutdown: cut waits short and fail instead of retrying."""
        self._stopped.set()

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not asyncio.sleep:  # injected (tests)
            await self._sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        flood_retries = 0
        network_retries = 0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait_s = _retry_after_s(exc)
                if (endpoint in self.NO_RETRY or flood_retries >= self.max_flood_retries
                        or wait_s > self.max_retry_after_s or self._stopped.is_set()):
                    log_event(log, "telegram_gave_up", level=logging.WARNING, endpoint=endpoint,
                              reason="flood_control", retry_after_s=wait_s, attempts=flood_retries + 1)
                    raise
                flood_retries += 1
                log_event(log, "telegram_retry", level=logging.WARNING, endpoint=endpoint,
                          reason="flood_control", wait_s=wait_s, attempt=flood_retries)
                await self._wait(wait_s + random.uniform(0.0, 0.1))
            except NetworkError as exc:
                if isinstance(exc, BadRequest):
                    raise
                if (endpoint in self.NO_RETRY or network_retries >= self.max_network_retries
                        or self._stopped.is_set()):
                    log_event(log, "telegram_gave_up", level=logging.WARNING, endpoint=endpoint,
                              reason=type(exc).__name__, attempts=network_retries + 1)
                    raise
                wait_s = self.backoff_s * (2 ** network_retries)
                network_retries += 1
                log_event(log, "telegram_retry", level=logging.WARNING, endpoint=endpoint,
                          reason=type(exc).__name__, wait_s=wait_s, attempt=network_retries)
                await self._wait(wait_s)
