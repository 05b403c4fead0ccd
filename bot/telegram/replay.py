"""Replaying conversation fixtures through the Telegram front end: `python -m bot replay --via telegram`.

`TelegramReplay` starts the local fake Bot API (bot/telegram/fake_api.py) and
the real `Application` (`build_application` + `serve`) on one event loop in a
background thread, and is itself a synchronous replay transport:
`transport(conversation_id, text) -> Reply`.

Each replay conversation gets a fresh private chat. A turn is sent as a user
message in that chat (so `/reset` and `/forget` go through the command
handlers), and the transport waits until the Application has finished with
that update, then reads what the bot sent.

A Telegram message carries neither a reply's kind nor its sources' ids, so the
engine the Application uses is wrapped in `RecordingEngine`, which keeps the
Reply objects it returns per conversation. The Reply handed back to the
replay is built from both:

- `text`: what Telegram shows (HTML tags stripped, entities decoded), all of
  the turn's messages joined by a blank line, without the sources line;
- `suggestions`: the inline buttons, as the question each one asks when pressed;
- `kind` and `sources` (with their ids): from the engine's Reply;

and the transport checks that they agree: the engine's text must be in what
Telegram showed (bullets and line breaks aside), and every reply's sources
line must be there. A difference is a front-end bug and fails the turn. A
turn the front end answers by itself, without the engine (`/start`, `/help`,
a message it cannot read), gets kind `notice` for commands and `clarify` for
unusable input; the bot's error message re-raises the engine's exception.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import random
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.reply import Reply, Source
from bot.telegram import texts
from bot.telegram.app import build_application, get_frontend, serve
from bot.telegram.fake_api import FakeBotAPI, SentMessage
from bot.telegram.format import _tidy, sources_line

START_TIMEOUT_S = 30.0
TURN_TIMEOUT_S = 90.0  # longer than the front end's own engine timeout (60 s)
OBSERVER_GROUP = 1_000  # handlers in later groups run after the front end's handler has finished

# Replies the front end sends by itself, without asking the engine: the kind a replay sees.
STATIC_KINDS: dict[str, str] = {
    **{html.unescape(re.sub(r"<[^>]+>", "", t)): "notice"
       for t in (texts.WELCOME, texts.HELP, texts.TOPICS_INTRO, texts.UNKNOWN_COMMAND)},
    # Unusable input: like the engine's "clarify", it asks for a typed question.
    **{t: "clarify" for t in (*texts.NON_TEXT.values(), texts.EDITED, texts.GROUP_EMPTY_MENTION,
                              texts.CAPTION_ONLY)},
}
_WHITESPACE = re.compile(r"\s+")


class TelegramReplayError(Exception):
    """What Telegram showed does not match the engine's reply, or the bot did not answer."""


class RecordingEngine:
    """The engine the Application uses, keeping every Reply (or exception) per conversation id."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._results: dict[str, list[Reply | BaseException]] = defaultdict(list)

    def handle(self, conversation_id: str, text: str, on_partial=None) -> Reply:
        return self._record(conversation_id, self.inner.handle, conversation_id, text, on_partial=on_partial)

    def reset(self, conversation_id: str) -> Reply:
        return self._command(conversation_id, "reset")

    def forget(self, conversation_id: str) -> Reply:
        return self._command(conversation_id, "forget")

    def _command(self, conversation_id: str, name: str) -> Reply:
        method = getattr(self.inner, name, None)
        if callable(method):
            return self._record(conversation_id, method, conversation_id)
        # An engine with only handle() (enough for `--via engine`) gets the command as text.
        return self._record(conversation_id, self.inner.handle, conversation_id, f"/{name}")

    def take(self, conversation_id: str) -> list[Reply | BaseException]:
        """The results recorded for this conversation since the last take, oldest first."""
        with self._lock:
            return self._results.pop(conversation_id, [])

    def _record(self, conversation_id: str, fn, *args, **kwargs) -> Reply:
        try:
            reply = fn(*args, **kwargs)
        except BaseException as exc:
            with self._lock:
                self._results[conversation_id].append(exc)
            raise
        with self._lock:
            self._results[conversation_id].append(reply)
        return reply

    def __getattr__(self, name: str) -> Any:  # close(), sessions, ...
        return getattr(self.inner, name)


def _squeeze(text: str) -> str:
    """Text for comparing what the engine wrote with what Telegram shows: bullets as
    the front end writes them ("- " -> "• "), and no whitespace at all."""
    return _WHITESPACE.sub("", _tidy(text))


@dataclass
class _Chat:
    chat_id: int
    conversation: str  # the front end's conversation id for this chat


class TelegramReplay:
    """A replay transport through the real Telegram front end and the fake Bot API.

    Use as a context manager; the engine is not closed here (its owner does that).
    """

    def __init__(self, engine: Any, settings: Any, *, turn_timeout_s: float = TURN_TIMEOUT_S) -> None:
        self.engine = RecordingEngine(engine)
        self.settings = settings
        self.turn_timeout_s = turn_timeout_s
        self.api: FakeBotAPI | None = None
        self.app: Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Future | None = None
        self._chats: dict[str, _Chat] = {}
        # Fresh chats per conversation; a random start keeps them apart from earlier
        # replays that share an engine (and its session store) in the same process.
        self._chat_ids = itertools.count(random.randrange(10**9, 2 * 10**9) * 1000)
        self._done: dict[tuple[int, int], asyncio.Event] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "TelegramReplay":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="replay-telegram", daemon=True)
        self._thread.start()
        try:
            self._run(self._start(), START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        self.api = await FakeBotAPI().start()
        settings = self.settings.model_copy(update={
            "telegram_bot_token": self.api.token,
            "telegram_base_url": self.api.base_url,
            "webhook_url": None,
            # A replay sends turns back to back; the per-user limit is not what it tests.
            "rate_limit_messages": 1_000_000,
            "rate_limit_window_s": 1.0,
        })
        self.app = build_application(settings, self.engine)
        self.app.add_handler(TypeHandler(Update, self._processed), group=OBSERVER_GROUP)
        self._stop, ready = asyncio.Event(), asyncio.Event()
        self._serving = asyncio.ensure_future(serve(self.app, settings, stop=self._stop, ready=ready,
                                                    poll_timeout=1.0))
        waiting = asyncio.ensure_future(ready.wait())
        await asyncio.wait({self._serving, waiting}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._serving.done():
            self._serving.result()  # the start-up error
            raise RuntimeError("the Telegram front end stopped while starting")
        if not ready.is_set():
            raise TimeoutError("the Telegram front end did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._loop.is_running():
            try:
                self._run(self._shutdown(), START_TIMEOUT_S)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        if self._stop is not None and self._serving is not None:
            self._stop.set()
            await asyncio.gather(self._serving, return_exceptions=True)
        if self.api is not None:
            await self.api.stop()

    def _run(self, coro, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- the transport -------------------------------------------------------------------------------
    def __call__(self, conversation_id: str, text: str) -> Reply:
        if self._loop is None:
            raise RuntimeError("TelegramReplay is not started")
        return self._run(self._turn(conversation_id, text), self.turn_timeout_s + 5)

    def chat_for(self, conversation_id: str) -> _Chat:
        chat = self._chats.get(conversation_id)
        if chat is None:
            assert self.app is not None
            chat_id = next(self._chat_ids)
            # A private chat: the user's id is the chat's id.
            chat = self._chats[conversation_id] = _Chat(chat_id, get_frontend(self.app).conversation_id(chat_id, chat_id))
        return chat

    async def _turn(self, conversation_id: str, text: str) -> Reply:
        assert self.api is not None
        chat = self.chat_for(conversation_id)
        self.engine.take(chat.conversation)
        loop = asyncio.get_running_loop()
        started = loop.time()
        message = self.api.user_message(chat.chat_id, text)
        key = (chat.chat_id, message["message_id"])
        done = self._done.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(done.wait(), self.turn_timeout_s)
        finally:
            self._done.pop(key, None)
        sent = self.api.unread(chat.chat_id)
        self.api._cursor[chat.chat_id] += len(sent)
        reply = await self._reply(chat, sent, self.engine.take(chat.conversation))
        reply.latency_ms = (loop.time() - started) * 1000.0
        return reply

    async def _processed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Runs after the front end's own handler (and its error handler) has finished the update."""
        message = update.effective_message
        if message is not None:
            self._done.setdefault((message.chat_id, message.message_id), asyncio.Event()).set()

    # --- rebuilding the Reply ------------------------------------------------------------------------
    async def _reply(self, chat: _Chat, sent: list[SentMessage], results: list[Reply | BaseException]) -> Reply:
        for result in results:
            if isinstance(result, BaseException):
                raise result  # the user was told texts.ERROR; the replay reports the engine's error
        replies: list[Reply] = list(results)  # type: ignore[arg-type]
        if not sent:
            raise TelegramReplayError("the bot sent no message")
        paragraphs = [p for message in sent for p in message.plain.split("\n\n")]
        for reply in replies:
            line = sources_line(reply)
            if line is None:
                continue
            shown = html.unescape(re.sub(r"<[^>]+>", "", line))
            if shown not in paragraphs:
                raise TelegramReplayError(f"the sources line {shown!r} is not in what Telegram showed")
            paragraphs.remove(shown)
        text = "\n\n".join(p for p in paragraphs if p.strip())
        suggestions = [await self._button_question(label, data)
                       for message in sent for label, data in message.buttons]
        if not replies:
            return self._static_reply(text, suggestions)
        squeezed = _squeeze(text)
        for reply in replies:
            if _squeeze(reply.text or "") not in squeezed:
                raise TelegramReplayError("Telegram showed a text that differs from the engine's reply:\n"
                                          f"  engine:   {reply.text!r}\n  telegram: {text!r}")
        sources: list[Source] = []
        for reply in replies:
            sources.extend(s for s in reply.sources if s.id not in {known.id for known in sources})
        return Reply(text, replies[0].kind, sources, suggestions)

    def _static_reply(self, text: str, suggestions: list[str]) -> Reply:
        if text == texts.ERROR:
            raise TelegramReplayError("the bot answered with its error message (see its log)")
        if text in (texts.SHUTTING_DOWN,) or text.startswith(texts.RATE_LIMITED.split("{", 1)[0]):
            raise TelegramReplayError(f"the bot did not answer: {text}")
        return Reply(text, STATIC_KINDS.get(text, "notice"), [], suggestions)  # type: ignore[arg-type]

    async def _button_question(self, label: str, data: str | None) -> str:
        """What pressing the button sends to the engine (labels may be shortened)."""
        prefix, _, key = (data or "").partition(":")
        if prefix == "t" and key.isdigit() and int(key) < len(texts.TOPICS):
            return texts.TOPICS[int(key)][1]
        assert self.app is not None
        return (await get_frontend(self.app).buttons.lookup(key) if key else None) or label
