"""A `draft` reply (a complaint draft, a negotiation script) also goes out as a .txt file,
so the user can copy it whole or forward it as it is. Plain UTF-8 text: the reply's
text, then its sources, as the chat showed them."""

from __future__ import annotations

import logging

from telegram import InputFile
from telegram.error import TelegramError

from bot.reply import Reply
from bot.telegram import texts
from bot.telegram.format import source_label
from bot.telegram.logs import log_event

log = logging.getLogger("bot.telegram")


def draft_file(reply: Reply) -> tuple[str, bytes]:
    """(file name, content) for a draft: named after its heading (【投诉草稿】 -> 投诉草稿.txt)."""
    heading = next((line for line in reply.text.splitlines() if line.startswith("【")), "")
    name = heading.split("】", 1)[0].lstrip("【") if "】" in heading else ""
    lines = [reply.text.strip()]
    labels = list(dict.fromkeys(source_label(source) for source in reply.sources if source.title))
    if labels:
        lines += ["", texts.SOURCES_LABEL, *[f"{i}. {label}" for i, label in enumerate(labels, 1)]]
    # A BOM and CRLF line ends: Windows Notepad opens it as Chinese text, not mojibake.
    content = "\ufeff" + "\r\n".join("\n".join(lines).split("\n")) + "\r\n"
    return f"{name or texts.DRAFT_FILE_NAME}.txt", content.encode("utf-8")


async def send_draft_file(bot, chat_id: int, reply: Reply) -> bool:
    """Send the draft as a document; a failure is logged, not raised (the text is already in the chat)."""
    filename, content = draft_file(reply)
    try:
        await bot.send_document(chat_id, InputFile(content, filename=filename), caption=texts.DRAFT_FILE_CAPTION)
        return True
    except TelegramError as exc:
        log_event(log, "draft_file_failed", level=logging.WARNING, error=type(exc).__name__)
        return False
