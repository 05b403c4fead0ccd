"""Building and running the PTB Application: long polling, or a webhook when WEBHOOK_URL is set."""

from __future__ import annotations

import asyncio
import logging
import signal
from urllib.parse import urlparse

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import Application, Defaults
from telegram.request import BaseRequest

from bot.settings import Settings, get_settings
from bot.telegram.engine import Engine
from bot.telegram.handlers import FrontEnd
from bot.telegram.logs import configure_logging, keyed_hash, log_event, quiet_library_loggers
from bot.telegram.ratelimit import RetryingRateLimiter

log = logging.getLogger("bot.telegram")

# Updates the bot acts on; everything else Telegram can send is not requested.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
# How many updates PTB processes at once. Each user's messages are still
# answered one at a time and in order (a lock per conversation).
CONCURRENT_UPDATES = 256
# On SIGTERM/SIGINT: stop fetching updates at once, give answers in progress
# this long to go out, then tell the users still waiting to ask again.
SHUTDOWN_GRACE_S = 3.0
FRONTEND_KEY = "frontend"
# Every message is Telegram HTML (bot/telegram/format.py escapes all dynamic text),
# never shows a link preview, and a reply to a deleted message still goes out.
DEFAULTS = Defaults(
    parse_mode=ParseMode.HTML,
    link_preview_options=LinkPreviewOptions(is_disabled=True),
    allow_sending_without_reply=True,
)


def file_base_url(base_url: str) -> str:
    """The file download base for a Bot API base: .../bot -> .../file/bot."""
    stripped = base_url.rstrip("/")
    if stripped.endswith("/bot"):
        return stripped[: -len("/bot")] + "/file/bot"
    return stripped + "/file/bot"


def webhook_secret(token: str) -> str:
    """The secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token; derived, so no extra setting."""
    return keyed_hash(token, "webhook-secret", 48)


def build_application(
    settings: Settings,
    engine: Engine,
    *,
    request: BaseRequest | None = None,
    engine_workers: int | None = None,
) -> Application:
    """The Application with every handler registered; nothing is started yet.

    `request` replaces the HTTP transport (tests use an in-process fake).
    """
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    quiet_library_loggers(settings.log_message_text)  # no token or user text in library logs
    retrying = RetryingRateLimiter()
    frontend = FrontEnd(settings, engine, engine_workers=engine_workers, retrying=retrying)
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .defaults(DEFAULTS)
        .concurrent_updates(CONCURRENT_UPDATES)
        .rate_limiter(retrying)
    )
    if settings.telegram_base_url:
        builder = builder.base_url(settings.telegram_base_url).base_file_url(file_base_url(settings.telegram_base_url))
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    application.bot_data[FRONTEND_KEY] = frontend
    frontend.register(application)
    return application


def get_frontend(application: Application) -> FrontEnd:
    return application.bot_data[FRONTEND_KEY]


async def _start_receiving(application: Application, settings: Settings, poll_timeout: float) -> str:
    assert application.updater is not None
    if not settings.webhook_url:
        await application.updater.start_polling(
            timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
        )
        return "polling"
    try:
        import tornado  # noqa: F401  (PTB's webhook server)
    except ImportError as exc:
        raise RuntimeError(
            'Webhook mode (WEBHOOK_URL) needs the "python-telegram-bot[webhooks]" extra (tornado).'
        ) from exc
    await application.updater.start_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlparse(settings.webhook_url).path.lstrip("/"),
        webhook_url=settings.webhook_url,
        secret_token=webhook_secret(settings.telegram_bot_token or ""),
        allowed_updates=ALLOWED_UPDATES,
        drop_pending_updates=False,
    )
    return "webhook"


async def serve(
    application: Application,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    poll_timeout: float = 10.0,
    handle_signals: bool = False,
    shutdown_grace_s: float = SHUTDOWN_GRACE_S,
) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT with `handle_signals`), then shut down gracefully.

    Shutdown: stop receiving updates, let answers in progress finish for
    `shutdown_grace_s`, then abort the rest with a short "please ask again"
    message, close the Application and the engine's worker threads.
    """
    frontend = get_frontend(application)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()

    def on_signal(signum: int) -> None:
        if stop.is_set():  # a second signal: stop waiting for anything
            frontend.abort_inflight()
        log_event(log, "signal", name=signal.Signals(signum).name)
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await application.initialize()
        await frontend.set_commands(application.bot)
        mode = await _start_receiving(application, settings, poll_timeout)
        await application.start()
        log_event(log, "telegram_started", mode=mode, bot="@" + (application.bot.username or "?"),
                  engine=type(frontend.engine).__name__)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        started = loop.time()
        frontend.begin_shutdown()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            stopping = asyncio.ensure_future(application.stop())
            done, _ = await asyncio.wait({stopping}, timeout=shutdown_grace_s)
            if not done:
                frontend.abort_inflight()
            await stopping
        await application.shutdown()
        frontend.close()
        for signum in signals:
            loop.remove_signal_handler(signum)
        log_event(log, "telegram_stopped", shutdown_s=loop.time() - started)


def run(settings: Settings | None = None, *, engine: Engine | None = None) -> None:
    """`python -m bot telegram`: load the engine, then serve until SIGTERM/SIGINT."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_message_text)
    if not settings.telegram_bot_token:
        raise SystemExit("TELEGRAM_BOT_TOKEN is not set.")
    if engine is None:
        from bot.dialogue import build_engine  # loads the store: a few seconds

        engine = build_engine(settings)
    application = build_application(settings, engine)
    from telegram.error import InvalidToken

    try:
        asyncio.run(serve(application, settings, handle_signals=True))
    except InvalidToken:
        # Not a crash to debug: a setting to fix. (The token itself is not repeated.)
        raise SystemExit("The Bot API rejected TELEGRAM_BOT_TOKEN. Check the token from @BotFather"
                         " (and TELEGRAM_BASE_URL, if set).") from None
