"""Streaming an answer into Telegram: a placeholder message, edited as the text comes in.

The engine calls `on_partial` on its worker thread; PartialStream shows that
text in one message, paced per chat by EditPacer (edits count against
Telegram's per-chat limit), and `finish_placeholder` puts the final reply in
that same message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import ReplyParameters
from telegram.error import BadRequest, TelegramError

from bot.reply import Reply
from bot.telegram import texts
from bot.telegram.format import MAX_MESSAGE_LEN, render_reply, utf16_len
from bot.telegram.logs import log_event

log = logging.getLogger("bot.telegram")

# At most one edit of a streamed answer per chat this often (Telegram allows
# about one message a second per chat, and edits count).
STREAM_EDIT_INTERVAL_S = 1.2


class EditPacer:
    """When each chat may next get a streamed edit: shared by all the streams of a front end."""

    def __init__(self, interval_s: float = STREAM_EDIT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._edits: dict[int, float] = {}  # chat id -> loop time of its last streamed edit

    def due(self, chat_id: int, now: float) -> float:
        """Loop time at which this chat may get its next streamed edit."""
        last = self._edits.get(chat_id)
        return now if last is None else max(now, last + self.interval_s)

    def edited(self, chat_id: int, now: float) -> None:
        self._edits[chat_id] = now
        if len(self._edits) > 4096:  # forget chats that have not streamed for a while
            horizon = now - self.interval_s
            for key in [k for k, at in self._edits.items() if at < horizon]:
                del self._edits[key]


class Placeholder:
    """The message a streamed answer is being shown in, and the HTML it shows now."""

    __slots__ = ("message_id", "html")

    def __init__(self, message_id: int, html: str) -> None:
        self.message_id = message_id
        self.html = html


class PartialStream:
    """Shows a streaming answer: a placeholder message on the first partial, then edits.

    `on_partial` is handed to the engine and called on its worker thread; it
    only passes the text to the event loop. There, the first partial is sent
    as a new message, and later ones are edited into it, at most one edit per
    chat every `stream_edit_interval_s`, always showing the newest text and
    skipping edits that would not change anything. `close()` stops it and
    returns the placeholder for the final edit (`finish_placeholder`).
    """

    def __init__(self, pacer: EditPacer, bot, chat_id: int, *, header: str | None = None,
                 reply_to: int | None = None) -> None:
        self.pacer = pacer
        self.bot = bot
        self.chat_id = chat_id
        self.header = header
        self.reply_to = reply_to
        self.loop = asyncio.get_running_loop()
        self.partials = 0  # partial texts received
        self.edits = 0  # edits made while streaming (not counting the final one)
        self.placeholder: Placeholder | None = None
        self._latest: str | None = None
        self._closed = False
        self._failed = False  # a send or edit failed: stop showing partials, the final still goes out
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # --- the worker thread ----------------------------------------------------------------------
    def on_partial(self, text: str) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: the bot is stopping
            self.loop.call_soon_threadsafe(self._feed, text)

    # --- the event loop ----------------------------------------------------------------------------
    def _feed(self, text: str) -> None:
        if self._closed or not isinstance(text, str) or not text.strip():
            return
        self.partials += 1
        self._latest = text
        if self._task is None:
            self._task = asyncio.create_task(self._pump())
        self._wake.set()

    def render(self, text: str) -> str:
        """The first message's worth of a partial answer, marked as still coming."""
        suffix = texts.STREAMING_SUFFIX
        limit = MAX_MESSAGE_LEN - utf16_len(suffix)
        return render_reply(Reply(text, "answer"), question=self.header, limit=limit)[0] + suffix

    async def _pump(self) -> None:
        while not self._closed and not self._failed:
            self._wake.clear()
            if self._latest is not None:
                if self.placeholder is not None:
                    now = self.loop.time()
                    delay = self.pacer.due(self.chat_id, now) - now
                    if delay > 0:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._closing(), delay)
                        if self._closed:
                            return
                html_text = self.render(self._latest)
                if self.placeholder is None or html_text != self.placeholder.html:
                    await self._show(html_text)
            if not self._closed:
                await self._wake.wait()

    async def _closing(self) -> None:
        while not self._closed:
            self._wake.clear()
            await self._wake.wait()

    async def _show(self, html_text: str) -> None:
        try:
            if self.placeholder is None:
                message = await self.bot.send_message(
                    self.chat_id,
                    html_text,
                    reply_parameters=ReplyParameters(self.reply_to) if self.reply_to else None,
                )
                self.placeholder = Placeholder(message.message_id, html_text)
            else:
                await self.bot.edit_message_text(
                    html_text,
                    chat_id=self.chat_id,
                    message_id=self.placeholder.message_id,
                )
                self.placeholder.html = html_text
                self.edits += 1
        except TelegramError as exc:
            self._failed = True
            log_event(log, "stream_update_failed", level=logging.WARNING, error=type(exc).__name__,
                      placeholder=self.placeholder is not None)
        finally:
            self.pacer.edited(self.chat_id, self.loop.time())

    async def close(self) -> Placeholder | None:
        """No more partials; wait for a send or edit in progress. Returns the placeholder, if any."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        return self.placeholder

    async def discard(self) -> None:
        """The answer failed: stop, and take the partial answer away."""
        placeholder = await self.close()
        if placeholder is not None:
            with contextlib.suppress(TelegramError):
                await self.bot.delete_message(self.chat_id, placeholder.message_id)


async def finish_placeholder(bot, chat_id: int, placeholder: Placeholder, html_text: str, markup) -> bool:
    """Edit the final text (and buttons) into a streamed answer's message.

    False when that message cannot be edited any more (e.g. the user deleted
    it): the caller then sends the text as a new message instead.
    """
    if html_text == placeholder.html and markup is None:
        return True  # already showing exactly this
    try:
        await bot.edit_message_text(
            html_text,
            chat_id=chat_id,
            message_id=placeholder.message_id,
            reply_markup=markup,
        )
        return True
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return True
        log_event(log, "stream_final_edit_failed", level=logging.WARNING, error=type(exc).__name__)
        return False
