"""Putting a Reply into Telegram messages, and acknowledging button presses."""

from __future__ import annotations

import logging

from telegram import ReplyParameters
from telegram.error import BadRequest, TelegramError

from bot.reply import Reply
from bot.telegram.buttons import ButtonStore
from bot.telegram.drafts import send_draft_file
from bot.telegram.format import render_reply, suggestions_keyboard
from bot.telegram.logs import log_event
from bot.telegram.streaming import Placeholder, finish_placeholder

log = logging.getLogger("bot.telegram")


async def send_reply(
    bot,
    buttons: ButtonStore,
    chat_id: int,
    reply: Reply,
    *,
    header: str | None = None,
    reply_to: int | None = None,
    placeholder: Placeholder | None = None,
) -> int:
    """Send the reply as HTML message(s); buttons go on the last one. Returns the count.

    With a `placeholder` (a streamed answer's message), its first part is
    edited into that message and the rest, if any, is sent after it.
    """
    chunks = render_reply(reply, question=header)
    markup = None
    if reply.suggestions:
        await buttons.remember(reply.suggestions)
        markup = suggestions_keyboard(reply.suggestions, one_shot=reply.kind == "clarify")
    for index, chunk in enumerate(chunks):
        if index == 0 and placeholder is not None and await finish_placeholder(
                bot, chat_id, placeholder, chunk, markup if len(chunks) == 1 else None):
            continue
        await bot.send_message(
            chat_id,
            chunk,
            reply_markup=markup if index == len(chunks) - 1 else None,
            reply_parameters=ReplyParameters(reply_to) if reply_to and index == 0 else None,
        )
    if reply.kind == "draft":  # a draft also comes as a file to copy or forward
        await send_draft_file(bot, chat_id, reply)
    return len(chunks)


async def answer_query(query, text: str | None = None) -> None:
    """Acknowledge a button press (with a short notice, if any); never fails the update."""
    try:
        await query.answer(text=text)
    except BadRequest:
        pass  # too old to answer; the reply itself still goes out
    except TelegramError as exc:
        log_event(log, "answer_callback_failed", level=logging.WARNING, error=type(exc).__name__)
