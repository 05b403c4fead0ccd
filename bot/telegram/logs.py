"""The Telegram front end's logging helpers; they live in bot.logs, shared by every entry point."""

from bot.logs import (  # noqa: F401
    KeyValueFormatter,
    configure_logging,
    format_event,
    keyed_hash,
    log_event,
    quiet_library_loggers,
    safe_traceback,
)
