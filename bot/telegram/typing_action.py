"""The "typing…" chat action, shown while the engine works on an answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from telegram.constants import ChatAction
from telegram.error import TelegramError

TYPING_INTERVAL_S = 4.5  # Telegram shows "typing…" for about 5 s per chat action
TYPING_SETTLE_S = 1.0  # at most this long for an in-flight chat action before answering


@contextlib.asynccontextmanager
async def typing_shown(bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" now and every few seconds until the block ends."""
    done = asyncio.Event()

    async def keep_typing() -> None:
        while not done.is_set():
            try:
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError:
                pass  # cosmetic; never worth failing an answer
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_INTERVAL_S)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        done.set()
        # Let a chat action already on its way finish first, so "typing…"
        # does not land after the answer; never wait long for it.
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, TYPING_SETTLE_S)
