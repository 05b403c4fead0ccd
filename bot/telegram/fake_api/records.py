"""What the fake keeps: every call, every message the bot sent, the faults to inject."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass


class ApiCall:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()


@dataclass


class SentMessage:
    """A message the bot sent (updated in place by edits)."""

    message_id: int
    chat_id: int
    text: str  # as sent: Telegram HTML when parse_mode is HTML
    plain: str  # what a user sees
    parse_mode: str | None
    reply_markup: dict | None
    reply_to_message_id: int | None
    at: float
    edits: int = 0
    history: list[str] = field(default_factory=list)  # every text it showed (plain), oldest first

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b.get("text", ""), b.get("callback_data")) for row in rows for b in row]


@dataclass
class SentDocument:
    """A file the bot sent (sendDocument): its name, bytes and caption."""

    message_id: int
    chat_id: int
    filename: str | None
    content: bytes
    caption: str | None


@dataclass
class Fault:
    status: int = 429
    retry_after: int | None = 1
    description: str | None = None
    drop: bool = False  # close the connection without an answer (a network error)
    delay_s: float = 0.0
