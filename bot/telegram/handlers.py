"""Telegram handlers: commands, questions, buttons, non-text, edits, groups, errors.

`FrontEnd` holds what the handlers share: the engine, the bridge its calls go
through (bot/telegram/bridge.py: worker threads, timeout, one turn at a time
per conversation), the per-user rate limiter and the suggestion buttons.
Handler methods never block the event loop.

Conversations are keyed by chat and user (`conversation_id`), as a keyed hash:
the engine and its session store never see a raw Telegram id.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from telegram import BotCommand, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.reply import Reply
from bot.settings import Settings
from bot.telegram import texts
from bot.telegram.bridge import ENGINE_TIMEOUT_S, EngineBridge, ShuttingDown
from bot.telegram.buttons import ButtonStore
from bot.telegram.engine import Engine
from bot.telegram.format import topics_keyboard
from bot.telegram.logs import keyed_hash, log_event, safe_traceback
from bot.telegram.ratelimit import RetryingRateLimiter, UserRateLimiter
from bot.telegram.sending import answer_query, send_reply
from bot.telegram.streaming import STREAM_EDIT_INTERVAL_S, EditPacer, PartialStream
from bot.telegram.typing_action import typing_shown
from bot.telegram.updates import addressed_text, is_private, non_text_kind, replied_to_bot, update_kind

log = logging.getLogger("bot.telegram")

Context = ContextTypes.DEFAULT_TYPE



class FrontEnd:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        engine_workers: int | None = None,
        engine_timeout_s: float = ENGINE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        retrying: RetryingRateLimiter | None = None,
        stream_edit_interval_s: float = STREAM_EDIT_INTERVAL_S,
        buttons: ButtonStore | None = None,
    ) -> None:
        self.settings = settings
        # What suggestion buttons mean, shared by every process (Redis) and kept over restarts.
        self.buttons = buttons or ButtonStore.open(settings)
        self.retrying = retrying
        self.engine = engine
        self.edit_pacer = EditPacer(stream_edit_interval_s)
        self.bridge = EngineBridge(engine_workers, engine_timeout_s)
        self.limiter = UserRateLimiter(settings.rate_limit_messages, settings.rate_limit_window_s, clock)
        self._secret = settings.telegram_bot_token or "debt-help-bot"
        self.stopping = False
        self.closed = False

    # --- identities --------------------------------------------------------------------
    def conversation_id(self, chat_id: int, user_id: int) -> str:
        return "tg:" + keyed_hash(self._secret, f"conversation:{chat_id}:{user_id}", 24)

    def user_tag(self, user_id: int | None) -> str | None:
        return None if user_id is None else keyed_hash(self._secret, f"user:{user_id}")

    # --- wiring ---------------------------------------------------------------------------
    def register(self, app: Application) -> None:
        not_edited = ~filters.UpdateType.EDITED
        app.add_handler(CommandHandler("start", self.cmd_start))
        app.add_handler(CommandHandler("help", self.cmd_help))
        app.add_handler(CommandHandler("topics", self.cmd_topics))
        app.add_handler(CommandHandler("complain", self.cmd_complain))
        # The guided flows live in the engine (bot/flows): these commands are passed to it as text.
        app.add_handler(CommandHandler(["complaint", "negotiate", "cancel"], self.cmd_flow))
        app.add_handler(CommandHandler("reset", self.cmd_reset))
        app.add_handler(CommandHandler("forget", self.cmd_forget))
        app.add_handler(MessageHandler(filters.UpdateType.EDITED, self.on_edited))
        app.add_handler(MessageHandler(filters.COMMAND & not_edited, self.on_unknown_command))
        app.add_handler(MessageHandler(filters.TEXT & not_edited, self.on_text))
        app.add_handler(MessageHandler(~filters.StatusUpdate.ALL & not_edited, self.on_non_text))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_error_handler(self.on_error)

    async def set_commands(self, bot) -> bool:
        """Register the command menu (setMyCommands); a failure is logged, not fatal."""
        try:
            await bot.set_my_commands([BotCommand(name, description) for name, description in texts.COMMANDS])
            return True
        except TelegramError as exc:
            log_event(log, "set_commands_failed", level=logging.WARNING, error=type(exc).__name__)
            return False

    def begin_shutdown(self) -> None:
        self.stopping = True

    def abort_inflight(self) -> None:
        """Stop waiting for engine calls: their handlers tell the user to ask again."""
        self.stopping = True
        self.bridge.abort()
        if self.retrying is not None:
            self.retrying.stop_retrying()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bridge.close()
            self.buttons.close()

    # --- commands ----------------------------------------------------------------------------
    async def cmd_start(self, update: Update, context: Context) -> None:
        if await self._admit(update, context):
            # The topics keyboard too: a first question is one tap away.
            await self._send_static(update, context, texts.WELCOME, "start", markup=topics_keyboard())

    async def cmd_help(self, update: Update, context: Context) -> None:
        if await self._admit(update, context):
            await self._send_static(update, context, texts.HELP, "help")

    async def cmd_topics(self, update: Update, context: Context) -> None:
        if await self._admit(update, context):
            await self._send_static(update, context, texts.TOPICS_INTRO, "topics", markup=topics_keyboard())

    async def cmd_complain(self, update: Update, context: Context) -> None:
        if await self._admit(update, context):
            await self._answer(update, context, texts.COMPLAIN_QUESTIONS, via="complain")

    async def cmd_flow(self, update: Update, context: Context) -> None:
        if await self._admit(update, context) and update.effective_message is not None:
            command = (update.effective_message.text or "").split()[0].split("@", 1)[0].lower()
            await self._answer(update, context, command, via=command.lstrip("/"))

    async def cmd_reset(self, update: Update, context: Context) -> None:
        if await self._admit(update, context):
            await self._answer(update, context, None, via="reset", call=self.engine.reset)

    async def cmd_forget(self, update: Update, context: Context) -> None:
        if not await self._admit(update, context):
            return
        # (Nothing about the chat is kept with its buttons: the engine's forget is all there is.)
        await self._answer(update, context, None, via="forget", call=self.engine.forget)

    async def on_unknown_command(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or update.effective_user is None:
            return
        if not is_private(update):
            # A bare /command in a group may be meant for another bot.
            command = (message.text or "").split()[0]
            username = (context.bot.username or "").lower()
            if not (username and command.lower().endswith("@" + username)) and not replied_to_bot(message, context.bot):
                return
        if await self._admit(update, context):
            await self._send_static(update, context, texts.UNKNOWN_COMMAND, "unknown_command")

    # --- messages --------------------------------------------------------------------------------
    async def on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or update.effective_user is None or update.effective_chat is None:
            return
        text = addressed_text(message, context.bot)
        if text is None:
            return  # a group message not meant for us
        if not await self._admit(update, context):
            return
        if not text.strip():
            await self._send_static(update, context, texts.GROUP_EMPTY_MENTION, "empty_mention")
            return
        await self._answer(update, context, text.strip(), via="text")

    async def on_non_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or update.effective_user is None or update.effective_chat is None:
            return
        caption = addressed_text(message, context.bot)
        if caption is None:
            return
        if not await self._admit(update, context):
            return
        kind = non_text_kind(message)
        if caption.strip() and kind in ("photo", "document", "voice"):
            # A screenshot with a question under it: say what we cannot read, answer what we can.
            await self._send_static(update, context, texts.CAPTION_ONLY, f"caption_{kind}")
            await self._answer(update, context, caption.strip(), via=f"caption_{kind}")
            return
        await self._send_static(update, context, texts.NON_TEXT[kind], f"non_text_{kind}")

    async def on_edited(self, update: Update, context: Context) -> None:
        message = update.edited_message
        if message is None or update.effective_user is None:
            return  # edited channel posts
        if addressed_text(message, context.bot) is None:
            return
        if await self._admit(update, context):
            await self._send_static(update, context, texts.EDITED, "edited")

    # --- buttons ------------------------------------------------------------------------------
    async def on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or update.effective_chat is None:
            return
        if not await self._admit(update, context):
            return
        prefix, _, key = (query.data or "").partition(":")
        question: str | None = None
        if prefix == "t" and key.isdigit() and int(key) < len(texts.TOPICS):
            question = texts.TOPICS[int(key)][1]
        elif prefix in ("q", "c") and key:
            question = await self.buttons.lookup(key)
        if question is None:
            await answer_query(query, texts.BUTTON_EXPIRED)
            log_event(log, "button_expired", user=self.user_tag(update.effective_user.id))
            return
        await answer_query(query)
        if prefix == "c":
            # Clarification options are one-shot: take them away once one is chosen.
            with contextlib.suppress(TelegramError):
                await query.edit_message_reply_markup(reply_markup=None)
        via = "topic" if prefix == "t" else "button"
        await self._answer(update, context, question, via=via, header=question)

    # --- errors ------------------------------------------------------------------------------------
    async def on_error(self, update: object, context: Context) -> None:
        error = context.error
        user_id = update.effective_user.id if isinstance(update, Update) and update.effective_user else None
        fields = {
            "error": type(error).__name__ if error else None,
            "update": update_kind(update),
            "user": self.user_tag(user_id),
        }
        if self.settings.log_message_text and error is not None:
            fields["detail"] = str(error)
        log_event(log, "handler_error", level=logging.ERROR, **fields)
        if error is not None:
            log.error("%s", safe_traceback(error))
        if not isinstance(update, Update) or update.effective_chat is None or isinstance(error, Forbidden):
            return
        if update.callback_query:
            await answer_query(update.callback_query)
        try:
            await context.bot.send_message(update.effective_chat.id, texts.ERROR)
        except TelegramError as exc:
            log_event(log, "error_notice_failed", level=logging.WARNING, error=type(exc).__name__)

    # --- the answering path ---------------------------------------------------------------------
    async def _answer(
        self,
        update: Update,
        context: Context,
        text: str | Sequence[str] | None,
        *,
        via: str,
        header: str | None = None,
        call: Callable[..., Reply] | None = None,
    ) -> None:
        """Ask the engine and send its reply; off the event loop, one call at a time per conversation.

        `text` may be several fixed questions (/complain): each is answered in
        turn, as one block of messages; only the last reply keeps its buttons,
        minus suggestions that repeat what was just shown.
        """
        chat = update.effective_chat
        user = update.effective_user
        assert chat is not None and user is not None
        conversation = self.conversation_id(chat.id, user.id)
        reply_to = None
        if chat.type != ChatType.PRIVATE and update.message is not None:
            reply_to = update.message.message_id
        stream: PartialStream | None = None
        requests: list[tuple[Callable[..., Reply], tuple, dict]]
        if call is not None:
            requests = [(call, (conversation,), {})]
        else:
            questions = [text] if isinstance(text, str) else list(text or [])
            requests = [(self.engine.handle, (conversation, q), {}) for q in questions]
            if len(questions) == 1:
                # One question: its answer may stream (bot.dialogue streams only with a language model).
                stream = PartialStream(self.edit_pacer, context.bot, chat.id, header=header, reply_to=reply_to)
                requests[0][2]["on_partial"] = stream.on_partial
        started = time.perf_counter()
        async with self.bridge.one_at_a_time(conversation):
            try:
                async with typing_shown(context.bot, chat.id):
                    replies = [await self.bridge.call(fn, *args, **kwargs) for fn, args, kwargs in requests]
            except ShuttingDown:
                if stream is not None:
                    await stream.discard()
                with contextlib.suppress(TelegramError):
                    await context.bot.send_message(chat.id, texts.SHUTTING_DOWN)
                log_event(log, "aborted_on_shutdown", user=self.user_tag(user.id), via=via)
                return
            except BaseException:
                if stream is not None:
                    await stream.discard()  # no half answer stays behind; the error handler speaks
                raise
            engine_ms = (time.perf_counter() - started) * 1000.0
            placeholder = await stream.close() if stream is not None else None
            if len(replies) > 1:
                shown = {source.title for reply in replies for source in reply.sources}
                last = replies[-1]
                replies = [replace(reply, suggestions=[]) for reply in replies[:-1]]
                replies.append(replace(last, suggestions=[q for q in last.suggestions if q not in shown]))
            chunks = 0
            for index, reply in enumerate(replies):
                chunks += await send_reply(context.bot, self.buttons, chat.id, reply,
                                           header=header if index == 0 else None,
                                           reply_to=reply_to if index == 0 else None,
                                           placeholder=placeholder if index == 0 else None)
        fields = {
            "user": self.user_tag(user.id),
            "chat": chat.type,
            "via": via,
            "kind": ",".join(reply.kind for reply in replies),
            "sources": sum(len(reply.sources) for reply in replies),
            "suggestions": len(replies[-1].suggestions),
            "chunks": chunks,
            "engine_ms": engine_ms,
            "total_ms": (time.perf_counter() - started) * 1000.0,
        }
        if stream is not None and stream.partials:
            fields["partials"] = stream.partials
            fields["edits"] = stream.edits
        if self.settings.log_message_text:
            fields["text"] = text if isinstance(text, str) or text is None else " | ".join(text)
        log_event(log, "reply", **fields)

    # --- helpers --------------------------------------------------------------------------------------
    async def _admit(self, update: Update, context: Context) -> bool:
        """The per-user rate limit. Over it: one polite notice per window, then silence."""
        user = update.effective_user
        if user is None:
            return False
        verdict = self.limiter.check(user.id)
        if verdict.allowed:
            return True
        log_event(log, "rate_limited", user=self.user_tag(user.id), notified=verdict.notify,
                  retry_in_s=verdict.retry_in_s)
        seconds = max(1, int(verdict.retry_in_s + 0.999))
        notice = texts.RATE_LIMITED.format(seconds=seconds)
        if update.callback_query is not None:
            await answer_query(update.callback_query, notice if verdict.notify else None)
        elif verdict.notify and update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, notice)
        return False

    async def _send_static(self, update: Update, context: Context, html_text: str, what: str, *,
                           markup=None) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        reply_to = None
        if chat.type != ChatType.PRIVATE and update.effective_message is not None:
            reply_to = update.effective_message.message_id
        await context.bot.send_message(
            chat.id,
            html_text,
            reply_markup=markup,
            reply_parameters=ReplyParameters(reply_to) if reply_to else None,
        )
        log_event(log, "static_reply", what=what, user=self.user_tag(update.effective_user.id if update.effective_user else None),
                  chat=chat.type)
