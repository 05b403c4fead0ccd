"""Per-user sliding-window rate limiting, and retrying Telegram's flood control.

Two different limits live here:
- `UserRateLimiter`: how many messages one user may send us per window
  (RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_S). Over the limit the user gets
  one polite notice per window; further messages in that window are dropped.
- `RetryingRateLimiter`: PTB's hook around every Bot API request we make. It is
  PTB's `AIORateLimiter`, which throttles what we send to stay under Telegram's
  flood limits (about 30 messages a second overall, 20 a minute per group),
  plus bounded retries: when Telegram still answers 429 (RetryAfter) every
  request waits what it asks and the failed one is retried; on network errors
  and timeouts it backs off and retries. A broken network surfaces as an error
  (and the error handler) instead of a hang.
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

from telegram.constants import FloodLimit
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

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


# How we stay under Telegram's flood limits. PTB's AIORateLimiter meters requests
# with leaky buckets: a bucket of N per period lets N through at once and then N
# per period, so up to 2N can land inside one period. Small bursts and a
# sustained rate below the limit keep every second (and every minute in a group)
# under what Telegram allows, with room for requests that arrive bunched up: when
# the event loop is held up for a moment (engine threads busy, a loaded machine),
# requests let through one by one before it leave together after it. At 25 a
# second with bursts of 3, the load benchmark on a loaded 2-core machine still saw
# an occasional 31st call in a second; 21 with bursts of 3 leaves room for 6.
OVERALL_PER_S = 21.0  # sustained, all chats together (Telegram: FloodLimit.MESSAGES_PER_SECOND = 30)
OVERALL_BURST = 3  # at most 3 + 21 = 24 let through in any one second
GROUP_PER_MIN = 17.0  # sustained, per group (Telegram: FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP = 20)
GROUP_BURST = 2  # at most 2 + 17 = 19 in any one minute
assert OVERALL_BURST + OVERALL_PER_S < FloodLimit.MESSAGES_PER_SECOND
assert GROUP_BURST + GROUP_PER_MIN < FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP


class RetryingRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (throttling), with our bounded retries on flood control and network errors.

    - Throttling: requests that name a chat wait for room in the overall
      bucket, and in the group's bucket for groups (see OVERALL_PER_S above).
    - Chat actions ("typing…") are cosmetic: sent only when they would not
      take the last free slot, never queued, never retried.
    - RetryAfter: every request pauses for what Telegram asks (plus a little
      jitter) and the failed one is retried, at most `max_flood_retries` times
      and never for a wait above `max_retry_after_s`.
    - NetworkError / TimedOut (not BadRequest, which is also a NetworkError in
      PTB): exponential backoff, at most `max_network_retries` times.
    getUpdates never comes through here (PTB's Updater has its own retry loop).

    A retried sendMessage whose first attempt timed out after reaching Telegram
    can show up twice; we accept that over losing an answer.
    """

    NO_RETRY = frozenset({"sendChatAction"})
    COSMETIC = frozenset({"sendChatAction"})

    def __init__(
        self,
        *,
        overall_per_s: float = OVERALL_PER_S,
        overall_burst: int = OVERALL_BURST,
        group_per_min: float = GROUP_PER_MIN,
        group_burst: int = GROUP_BURST,
        max_flood_retries: int = 3,
        max_retry_after_s: float = 60.0,
        max_network_retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
    ) -> None:
        # AIORateLimiter's own RetryAfter handling is off (max_retries=0): ours is
        # bounded and logged. PTB would also log each 429 it hands on as an ERROR
        # with a traceback; our telegram_retry / telegram_gave_up lines say it.
        super().__init__(
            overall_max_rate=overall_burst,
            overall_time_period=overall_burst / overall_per_s,
            group_max_rate=group_burst,
            group_time_period=group_burst * 60.0 / group_per_min,
            max_retries=0,
        )
        logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
        self.max_flood_retries = max_flood_retries
        self.max_retry_after_s = max_retry_after_s
        self.max_network_retries = max_network_retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._stopped = asyncio.Event()
        self._flood_gate = asyncio.Event()  # cleared while a 429's wait runs: every request holds
        self._flood_gate.set()
        self._flood_waiting = 0
        self.flood_controlled = 0  # 429s received
        self.skipped_chat_actions = 0

    def stop_retrying(self) -> None:
        """At shutdown: cut waits short and fail instead of retrying."""
        self._stopped.set()

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not asyncio.sleep:  # injected (tests)
            await self._sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _flood_wait(self, seconds: float) -> None:
        """Wait out a 429, holding every other request meanwhile."""
        self._flood_waiting += 1
        self._flood_gate.clear()
        try:
            await self._wait(seconds)
        finally:
            self._flood_waiting -= 1
            if self._flood_waiting == 0:
                self._flood_gate.set()

    def _room_to_spare(self, data: dict[str, Any]) -> bool:
        """Whether this chat's buckets could take this request and one more right now.

        Cosmetic requests go out only then: they never take the last slot, so
        under load Telegram's allowance goes to answers, while a bot that is not
        busy still shows "typing…".
        """
        if not self._flood_gate.is_set():
            return False
        chat_id = data.get("chat_id")
        if chat_id is None:
            return True
        overall = getattr(self, "_base_limiter", None)  # AIORateLimiter's buckets
        if overall is not None and not overall.has_capacity(2):
            return False
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        if isinstance(chat_id, int) and chat_id > 0:
            return True  # a private chat: no group bucket
        group = getattr(self, "_group_limiters", {}).get(chat_id)
        return group is None or group.has_capacity(2)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint in self.COSMETIC and not self._room_to_spare(data):
            self.skipped_chat_actions += 1
            return True  # what Telegram answers to a chat action
        flood_retries = 0
        network_retries = 0
        while True:
            if not self._flood_gate.is_set() and not self._stopped.is_set():
                await self._flood_gate.wait()
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, None)
            except RetryAfter as exc:
                self.flood_controlled += 1
                wait_s = _retry_after_s(exc)
                if (endpoint in self.NO_RETRY or flood_retries >= self.max_flood_retries
                        or wait_s > self.max_retry_after_s or self._stopped.is_set()):
                    log_event(log, "telegram_gave_up", level=logging.WARNING, endpoint=endpoint,
                              reason="flood_control", retry_after_s=wait_s, attempts=flood_retries + 1)
                    raise
                flood_retries += 1
                log_event(log, "telegram_retry", level=logging.WARNING, endpoint=endpoint,
                          reason="flood_control", wait_s=wait_s, attempt=flood_retries)
                await self._flood_wait(wait_s + random.uniform(0.0, 0.1))
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
