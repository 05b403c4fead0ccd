"""Structured (key=value) logging without private data, for every entry point.

`configure_logging` is called by `python -m bot` (every command) and
`python -m ingest` before anything logs; it replaces whatever console handler
ran first (a library's or `logging.basicConfig`), so every line on stderr is
`ts=... level=... logger=... event=...|msg="..."`, one line per record.

By default no message text and no raw Telegram user or chat id is logged:
users appear as a short keyed hash (`user=3fa1c09b2e`), stable for one bot
token, so one user's events can be followed without knowing who they are.
Exceptions are logged with their types and frames only, never their messages
(which can quote user text). LOG_MESSAGE_TEXT=true adds message text, for
local debugging only.
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
    """`ts=... level=info logger=... event=... k=v`; plain messages go into msg="...".

    One line per record: an exception goes into `trace="..."` (types and frames,
    no messages, see safe_traceback).
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        head = (f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} level={record.levelname.lower()} "
                f"logger={record.name}")
        body = message if message.startswith("event=") else f"msg={_value(message)}"
        line = f"{head} {body}"
        if record.exc_info and record.exc_info[1] is not None:
            line += " trace=" + _value(safe_traceback(record.exc_info[1]))
        return line


# Libraries that would otherwise log every request URL, and with it the bot token.
_QUIET = ("httpx", "httpcore", "telegram.request")
# Libraries whose INFO lines say nothing an operator needs.
_CHATTY = ("chromadb", "jieba")


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


class _ConsoleHandler(logging.StreamHandler):
    """The handler configure_logging installs (a type of its own, so it can be found again)."""


def is_installed_console_handler(handler: logging.Handler) -> bool:
    """True for a handler configure_logging installed."""
    return isinstance(handler, _ConsoleHandler)


def _is_console(handler: logging.Handler) -> bool:
    """A handler writing to the process's stderr or stdout: basicConfig's, a library's or ours.

    Handlers writing elsewhere (files, pytest's capture) are left alone."""
    if isinstance(handler, _ConsoleHandler):
        return True
    if type(handler) is not logging.StreamHandler:
        return False
    stream = getattr(handler, "stream", None)
    return stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)


def configure_logging(level: str = "INFO", log_message_text: bool = False, stream=None) -> None:
    """key=value logs on stderr (or `stream`), whatever configured logging before.

    Replaces any console handler on the root logger (logging.basicConfig's,
    or a previous call's) with one using KeyValueFormatter; handlers that
    write elsewhere are kept. Quietens the libraries that would log the bot
    token or user text. Safe to call more than once.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if _is_console(handler):
            root.removeHandler(handler)
    handler = _ConsoleHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _CHATTY:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    quiet_library_loggers(log_message_text)
