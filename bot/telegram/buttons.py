"""What a suggestion button means, kept where every bot process finds it, also after a restart.

A button carries a short key derived from its suggestion's text
(`format.button_key`), and the text is stored under that key in the same kind
of store the conversations use (bot/sessions.py):

- with REDIS_URL, in Redis: every bot process behind a load balancer resolves
  every button, whichever process showed it;
- otherwise in a SQLite file beside SESSION_DB (`telegram-buttons.sqlite3`):
  a restarted bot still knows the buttons it showed before.

The same suggestion always gets the same key, so storing it again is harmless:
no read-modify-write, nothing for two processes to race on. A record holds only
the suggestion's text, which is a knowledge-base title or a fixed option, never
a user's words or ids, and no chat it was shown in; it expires BUTTON_TTL_S
after it was last shown. A small in-process cache saves most store round trips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.sessions import RedisSessionStore, SessionStore, SQLiteSessionStore
from bot.settings import Settings
from bot.telegram.format import button_key, suggestion_texts
from bot.telegram.logs import log_event

log = logging.getLogger("bot.telegram.buttons")

BUTTON_TTL_S = 30 * 24 * 3600  # a button not shown again for this long stops working (a toast says so)
RESAVE_AFTER_S = 24 * 3600  # one process refreshes a record it shows again at most this often
CACHE_SIZE = 2048
REDIS_PREFIX = "debt-help:button:"
SQLITE_NAME = "telegram-buttons.sqlite3"


def open_button_backend(settings: Settings) -> SessionStore:
    """Redis when REDIS_URL is set (shared by every process), else a SQLite file beside SESSION_DB."""
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url, idle_timeout_s=BUTTON_TTL_S, prefix=REDIS_PREFIX)
    return SQLiteSessionStore(Path(settings.session_db).with_name(SQLITE_NAME), idle_timeout_s=BUTTON_TTL_S)


class ButtonStore:
    """Suggestion text by button key, in a shared store with an in-process cache."""

    def __init__(self, backend: SessionStore, *, clock: Callable[[], float] = time.monotonic,
                 cache_size: int = CACHE_SIZE) -> None:
        self._backend = backend
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (text, stored at)

    @classmethod
    def open(cls, settings: Settings) -> "ButtonStore":
        return cls(open_button_backend(settings))

    @staticmethod
    def _record_id(key: str) -> str:
        return f"button:{key}"

    async def remember(self, suggestions: Sequence[str]) -> None:
        """Store what these suggestions' buttons mean before the buttons are sent.

        A store that fails is logged, not raised: the answer still goes out, and
        this process still resolves the buttons from its cache.
        """
        now = self._clock()
        due = []
        for text in suggestion_texts(suggestions):
            key = button_key(text)
            cached = self._cache.get(key)
            if cached is None or now - cached[1] >= RESAVE_AFTER_S:
                due.append((key, text))
            else:
                self._cache.move_to_end(key)
        if not due:
            return
        try:
            await asyncio.to_thread(self._save, due)
            stored_at = now
        except Exception as exc:  # noqa: BLE001  (any backend failure: keep answering)
            log_event(log, "button_store_failed", level=logging.WARNING, op="save", error=type(exc).__name__)
            stored_at = float("-inf")  # try the store again next time it is shown
        for key, text in due:
            self._put(key, text, stored_at)

    async def lookup(self, key: str) -> str | None:
        """The suggestion a button stands for, or None (unknown, expired or forged)."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached[0]
        try:
            record = await asyncio.to_thread(self._backend.load, self._record_id(key))
        except Exception as exc:  # noqa: BLE001
            log_event(log, "button_store_failed", level=logging.WARNING, op="load", error=type(exc).__name__)
            return None
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str) or button_key(text) != key:
            return None
        self._put(key, text, self._clock())
        return text

    def close(self) -> None:
        close: Any = getattr(self._backend, "close", None)
        if close is not None:
            close()

    def _save(self, due: list[tuple[str, str]]) -> None:
        for key, text in due:
            self._backend.save(self._record_id(key), {"text": text})

    def _put(self, key: str, text: str, stored_at: float) -> None:
        self._cache[key] = (text, stored_at)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
