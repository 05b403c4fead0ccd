"""Reading a Telegram update: whether it is meant for the bot, and what kind it is.

In private chats everything is for the bot. In groups only a message that
mentions it, or replies to one of its messages, is.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


def replied_to_bot(message: Message, bot) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot.id)


def addressed_text(message: Message, bot) -> str | None:
    """The text meant for the bot (its mention removed), or None for group chatter."""
    text = message.text if message.text is not None else (message.caption or "")
    if message.chat.type == ChatType.PRIVATE:
        return text
    username = (bot.username or "").lower()
    if message.text is not None:
        entities = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    else:
        entities = message.parse_caption_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    mentions = [
        value for entity, value in entities.items()
        if (entity.type == MessageEntity.MENTION and username and value.lower() == "@" + username)
        or (entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id)
    ]
    if not mentions and not replied_to_bot(message, bot):
        return None
    for value in mentions:
        text = text.replace(value, " ")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def non_text_kind(message: Message) -> str:
    if message.sticker or message.animation or message.dice:
        return "sticker"
    if message.photo or message.video or message.video_note:
        return "photo"
    if message.voice or message.audio:
        return "voice"
    if message.document:
        return "document"
    if message.location or message.venue:
        return "location"
    if message.contact:
        return "contact"
    return "other"


def update_kind(update: object) -> str:
    if not isinstance(update, Update):
        return "none" if update is None else type(update).__name__
    for kind in ("callback_query", "edited_message", "message", "channel_post", "edited_channel_post"):
        if getattr(update, kind, None) is not None:
            return kind
    return "other"
