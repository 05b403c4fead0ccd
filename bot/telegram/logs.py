"""Structured (key=value) logging for the Telegram front end, without private data.

By default no message text and no raw Telegram user or chat id is logged:
users appear as a short keyed hash (`user=3fa1c09b2e`), stable for one bot
token, so one user's events can be followed without knowing who they are.
LOG_MESSAGE_TEXT=true adds message text, for local debugging only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
import traceback
from typing import Any

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@+")


def _value(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.1f}"
    text = str(value)
    if text and all(ch in _SAFE for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_event(event: str, **fields: Any) -> str:
    parts = [f"event={_value(event)}"]
    parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
    return " ".join(parts)


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, "%s", format_event(event, **fields))


def keyed_hash(secret: str, value: object, length: int = 10) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:length]


def safe_traceback(exc: BaseException) -> str:
    """The traceback frames and exception types, without exception messages.

    Exception messages can carry user text (e.g. an error quoting its input),
    so only the types are kept; the frames still point at the failing line.
    """
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        lines.extend(line.rstrip("\n") for line in traceback.format_tb(current.__traceback__))
        current = current.__cause__ or current.__context__
        if current is not None:
            lines.append("-- caused by / during --")
    return "\n".join(lines)


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=info logger=... event=... k=v`; plain messages go into msg="..."."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        head = (f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} level={record.levelname.lower()} "
                f"logger={record.name}")
        body = message if message.startswith("event=") else f"msg={_value(message)}"
        line = f"{head} {body}"
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + safe_traceback(record.exc_info[1])
        return line


# Libraries that would otherwise log every request URL, and with it the bot token.
_QUIET = ("httpx", "httpcore", "telegram.request")


def quiet_library_loggers(log_message_text: bool = False) -> None:
    """Keep the bot token and user text out of library logs.

    httpx/httpcore log request URLs (which contain the token) at INFO; PTB logs
    every Bot API call's parameters (message text, chat ids) at DEBUG. So the
    former are held at WARNING, and PTB at INFO unless LOG_MESSAGE_TEXT is on.
    """
    for name in _QUIET:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    if not log_message_text:
        logger = logging.getLogger("telegram")
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))


def configure_logging(level: str = "INFO", log_message_text: bool = False) -> None:
    """key=value logs on stderr, unless the process already configured logging.

    Always quietens the HTTP client loggers: at INFO they log request URLs,
    which contain the bot token.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(KeyValueFormatter())
        root.addHandler(handler)
        root.setLevel(level.upper())
    quiet_library_loggers(log_message_text)
