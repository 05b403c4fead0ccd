"""A fake Telegram Bot API server on loopback, for tests, replays, demos and load benchmarks.

Standard library only (asyncio streams; httpx only to call a webhook). It
speaks enough of the Bot API for a PTB Application to run against it:
getMe, deleteWebhook/setWebhook/getWebhookInfo, setMyCommands/getMyCommands,
getUpdates (long polling), sendMessage, sendChatAction, answerCallbackQuery,
editMessageText, editMessageReplyMarkup, deleteMessage, close/logOut.

It checks what Telegram checks, so tests catch what production would reject:
Telegram-HTML validity (unknown tags, unescaped < and &, unclosed tags),
4,096-character messages, 1-64-byte callback_data, answering a callback
query twice. It enforces Telegram's overall flood limit: more than 30 calls
that name a chat (sendMessage, edits, chat actions, ...) within one second get
429 with retry_after, as Telegram answers, and `responses[429]` counts every
429 sent. And it injects faults: 429 flood control with retry_after, dropped
connections, 5xx, delays.

Typical use (one event loop)::

    api = FakeBotAPI()
    await api.start()                         # 127.0.0.1, free port
    settings = Settings(telegram_bot_token=api.token, telegram_base_url=api.base_url)
    ...run the bot...
    api.user_message(chat_id=42, text="花呗逾期会怎样")
    [reply] = await api.wait_for_messages(42)
    api.press_button(42, label="怎么协商")
    await api.stop()

From synchronous code or another thread, `ThreadedFakeBotAPI` runs it on its
own loop and exposes the same methods as blocking calls.

`python -m bot.telegram.fake_api [--port 8081] [--demo]` serves it standalone;
`--demo` plays one update of every kind to a bot started against it and
reports what came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import json
import math
import re
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from telegram.constants import (
    CallbackQueryLimit,
    ChatType,
    FloodLimit,
    InlineKeyboardButtonLimit,
    MessageLimit,
    ParseMode,
)
from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

DEFAULT_TOKEN = "123456789:FAKE-test-token_for-loopback-only"
MAX_TEXT_LEN = MessageLimit.MAX_TEXT_LENGTH
MAX_CALLBACK_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre",
    "a", "tg-spoiler", "span", "blockquote", "tg-emoji",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
# Fields that arrive JSON-encoded in form bodies (PTB encodes non-strings as JSON).
_JSON_FIELDS = {"reply_markup", "reply_parameters", "commands", "allowed_updates", "link_preview_options",
                "entities", "scope"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id", "cache_time",
               "max_connections"}
_BOOL_FIELDS = {"show_alert", "drop_pending_updates", "disable_notification", "disable_web_page_preview"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_telegram_html(text: str) -> str:
    """Validate Telegram HTML like the Bot API does and return the visible text.

    Raises ApiError(400, "Bad Request: can't parse entities: ...") on unknown
    tags, unescaped "<" or "&", mismatched or unclosed tags.
    """
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if not m:
                raise ApiError(400, f"Bad Request: can't parse entities: Unsupported start tag at byte offset {i}")
            closing, name, attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if name not in ALLOWED_TAGS:
                raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not stack or stack[-1] != name:
                    raise ApiError(400, f'Bad Request: can\'t parse entities: Unexpected end tag "{name}" at byte offset {i}')
                stack.pop()
            else:
                if name == "a" and "href" not in attrs:
                    raise ApiError(400, "Bad Request: can't parse entities: a tag without href")
                if name == "span" and "tg-spoiler" not in attrs:
                    raise ApiError(400, "Bad Request: can't parse entities: span without class tg-spoiler")
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ApiError(400, f"Bad Request: can't parse entities: Unescaped & at byte offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
            data = button.get("callback_data")
            if data is not None and not (1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA):
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


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
class Fault:
    status: int = 429
    retry_after: int | None = 1
    description: str | None = None
    drop: bool = False  # close the connection without an answer (a network error)
    delay_s: float = 0.0


class FakeBotAPI:
    """The fake server. `flood_limit` calls naming a chat per `flood_window_s` (Telegram's
    30 a second by default; None: no limit); beyond it, 429 with retry_after."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_id: int | None = None,
                 username: str = "debt_help_test_bot", first_name: str = "债务助手",
                 flood_limit: int | None = FloodLimit.MESSAGES_PER_SECOND, flood_window_s: float = 1.0) -> None:
        self.token = token
        self.flood_limit = flood_limit
        self.flood_window_s = flood_window_s
        self._flood_times: deque[float] = deque()  # accepted calls naming a chat, in the last window
        self.flood_limited: list[ApiCall] = []  # calls answered 429 because of the flood limit
        self.responses: Counter[int] = Counter()  # HTTP status -> how many answers (429s included)
        self.bot_id = bot_id if bot_id is not None else int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.calls: list[ApiCall] = []
        self.commands: list[dict] = []
        self.callback_answers: list[dict] = []
        self.chat_actions: list[dict] = []
        self.webhook: dict[str, Any] = {}
        self._sent: dict[int, list[SentMessage]] = defaultdict(list)
        self._by_id: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], dict] = {}
        self._chats: dict[int, dict] = {}
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._cursor: dict[int, int] = defaultdict(int)
        self._waiters: dict[object, asyncio.Event] = {}  # key -> event set on the next change
        self._closing = False
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._conn_tasks: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self.on_call: Callable[[ApiCall], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Pass as TELEGRAM_BASE_URL (PTB appends the token)."""
        if self.port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeBotAPI":
        self.host = host
        self._closing = False
        self._server = await asyncio.start_server(self._serve_connection, host, port, limit=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify(*list(self._waiters))
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._conn_tasks) + list(self._background):
            task.cancel()
        await asyncio.gather(*self._conn_tasks, *self._background, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> "FakeBotAPI":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request(self) -> "InProcessRequest":
        """A PTB transport that calls this fake directly, without HTTP (fast handler tests)."""
        return InProcessRequest(self)

    # --- faults ---------------------------------------------------------------------------------
    def fail_next(self, method: str, *, status: int = 429, retry_after: int | None = 1, times: int = 1,
                  description: str | None = None, drop: bool = False, delay_s: float = 0.0) -> None:
        """Make the next `times` calls of `method` fail (429 with retry_after by default).

        drop=True closes the connection without an answer instead (PTB: NetworkError);
        delay_s holds the answer back first (longer than PTB's read timeout: TimedOut).
        """
        for _ in range(times):
            self._faults[method].append(Fault(status, retry_after if status == 429 else None,
                                              description, drop, delay_s))

    # --- injecting updates -------------------------------------------------------------------------
    def user(self, user_id: int, first_name: str = "测试用户") -> dict:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}

    def chat(self, chat_id: int, chat_type: str | None = None) -> dict:
        if chat_id in self._chats and chat_type is None:
            return self._chats[chat_id]
        chat_type = chat_type or (ChatType.PRIVATE if chat_id > 0 else ChatType.SUPERGROUP)
        chat = {"id": chat_id, "type": str(chat_type)}
        if chat_type == ChatType.PRIVATE:
            chat["first_name"] = "测试用户"
        else:
            chat["title"] = "测试群"
        self._chats[chat_id] = chat
        return chat

    def inject(self, update: dict) -> int:
        """Queue a raw update (its update_id is assigned here) and return the update_id."""
        update = dict(update)
        update["update_id"] = next(self._update_ids)
        if self.webhook.get("url"):
            task = asyncio.get_running_loop().create_task(self._post_webhook(update))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._updates.append(update)
        self._notify("updates")
        return update["update_id"]

    def take_updates(self) -> list[dict]:
        """Remove and return the queued updates (to feed an Application directly, without polling)."""
        updates, self._updates = self._updates, []
        return updates

    def user_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        chat_type: str | None = None,
        kind: str = "text",
        caption: str | None = None,
        mention_bot: bool = False,
        reply_to_message_id: int | None = None,
        edit_of: int | None = None,
        first_name: str = "测试用户",
    ) -> dict:
        """Inject a message from a user and return it (as Telegram would send it).

        kind: text | sticker | photo | voice | audio | video | video_note |
        animation | document | location | venue | contact | dice | poll.
        mention_bot prefixes "@<bot username> " with its mention entity;
        a text starting with "/" gets its bot_command entity; reply_to_message_id
        may name one of the bot's messages; edit_of=<message_id> sends an
        edited_message update for that earlier message instead.
        """
        chat = self.chat(chat_id, chat_type)
        if user_id is None:
            if chat["type"] != ChatType.PRIVATE:
                raise ValueError("user_id is required in groups")
            user_id = chat_id
        message: dict[str, Any] = {
            "message_id": edit_of if edit_of is not None else next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id, first_name),
        }
        entities: list[dict] = []
        if text is not None and mention_bot:
            text = f"@{self.username} {text}"
            entities.append({"type": "mention", "offset": 0, "length": utf16_len(self.username) + 1})
        if text is not None and text.startswith("/"):
            command = text.split()[0]
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        if kind == "text":
            if text is None:
                raise ValueError("text is required for kind='text'")
            message["text"] = text
            if entities:
                message["entities"] = entities
        else:
            message.update(_media(kind))
            if caption is not None or (text is not None and kind in ("photo", "video", "document", "animation", "audio", "voice")):
                cap = caption if caption is not None else text
                if mention_bot and caption is not None:
                    cap = f"@{self.username} {cap}"
                message["caption"] = cap
                if entities:
                    message["caption_entities"] = [e for e in entities if e["type"] == "mention"]
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._message_dict(chat_id, reply_to_message_id)
        if edit_of is not None:
            message["edit_date"] = int(time.time())
            self.inject({"edited_message": message})
        else:
            self._user_messages[(chat_id, message["message_id"])] = message
            self.inject({"message": message})
        return message

    def press_button(self, chat_id: int, *, user_id: int | None = None, label: str | None = None,
                     data: str | None = None, message_id: int | None = None) -> str:
        """Press an inline button on one of the bot's messages; returns the callback query id.

        Without message_id, the newest bot message in the chat that has the
        button. `label` matches a button's text exactly or as a prefix.
        """
        chat = self.chat(chat_id)
        if user_id is None:
            user_id = chat_id if chat["type"] == ChatType.PRIVATE else None
            if user_id is None:
                raise ValueError("user_id is required in groups")
        candidates = [self._by_id[(chat_id, message_id)]] if message_id is not None else reversed(self._sent[chat_id])
        for sent in candidates:
            for text, callback_data in sent.buttons:
                if (label is not None and (text == label or text.startswith(label))) or (
                        data is not None and callback_data == data) or (label is None and data is None):
                    return self.press(chat_id, sent.message_id, callback_data or "", user_id=user_id)
        raise LookupError(f"no button {label or data!r} in chat {chat_id}")

    def press(self, chat_id: int, message_id: int, data: str, *, user_id: int) -> str:
        """Inject a callback_query with exactly this data (even stale or forged data)."""
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        self.inject({"callback_query": {
            "id": query_id,
            "from": self.user(user_id),
            "message": self._message_dict(chat_id, message_id),
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }})
        return query_id

    # --- observing the bot -------------------------------------------------------------------------
    def messages(self, chat_id: int) -> list[SentMessage]:
        return list(self._sent[chat_id])

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_messages(self, chat_id: int, count: int = 1, *, timeout: float = 10.0) -> list[SentMessage]:
        """The next `count` messages the bot sends to `chat_id` (a per-chat cursor advances)."""
        start = self._cursor[chat_id]
        await self._wait_until(lambda: len(self._sent[chat_id]) >= start + count, timeout,
                               lambda: f"{len(self._sent[chat_id]) - start} of {count} messages in chat {chat_id}",
                               key=("chat", chat_id))
        self._cursor[chat_id] = start + count
        return self._sent[chat_id][start:start + count]

    def unread(self, chat_id: int) -> list[SentMessage]:
        return self._sent[chat_id][self._cursor[chat_id]:]

    async def wait_for_call(self, method: str, predicate: Callable[[ApiCall], bool] | None = None, *,
                            count: int = 1, timeout: float = 10.0) -> list[ApiCall]:
        def matching() -> list[ApiCall]:
            return [c for c in self.calls if c.method == method and (predicate is None or predicate(c))]
        await self._wait_until(lambda: len(matching()) >= count, timeout, lambda: f"{len(matching())} {method} calls",
                               key="calls")
        return matching()

    async def settle(self, quiet_s: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the bot has made no call except getUpdates for `quiet_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            last = max((c.at for c in self.calls if c.method != "getUpdates"), default=0.0)
            if time.monotonic() - last >= quiet_s:
                return
            await asyncio.sleep(quiet_s / 3)
        raise TimeoutError("the bot kept calling the API")

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float,
                          describe: Callable[[], str] | None = None, key: object = "any") -> None:
        """Wait until predicate() holds, re-checking whenever `key` (or anything, for "any") changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out: {describe() if describe else 'condition not met'}")
            event = self._waiters.get(key)
            if event is None:
                event = self._waiters[key] = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _notify(self, *keys: object) -> None:
        for key in (*keys, "any"):
            event = self._waiters.pop(key, None)
            if event is not None:
                event.set()

    # --- the API ------------------------------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        """Handle one Bot API call; returns (HTTP status, JSON body). Raises _Drop for dropped calls."""
        status, body = await self._call(method, params)
        self.responses[status] += 1
        return status, body

    async def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        params = _normalise(params)
        record = ApiCall(method, params, time.monotonic())
        self.calls.append(record)
        if self.on_call is not None:
            self.on_call(record)
        self._notify("calls")
        faults = self._faults.get(method)
        if faults:
            fault = faults.popleft()
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.drop:
                raise _Drop()
            if fault.status != 200:
                description = fault.description or {429: f"Too Many Requests: retry after {fault.retry_after}",
                                                    500: "Internal Server Error",
                                                    502: "Bad Gateway"}.get(fault.status, "Error")
                return fault.status, ApiError(fault.status, description, fault.retry_after).payload()
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, ApiError(404, "Not Found").payload()
        try:
            self._check_flood(record)
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            return exc.code, exc.payload()
        finally:
            chat_id = params.get("chat_id")
            self._notify("calls", ("chat", chat_id))
        return 200, {"ok": True, "result": result}

    def _check_flood(self, record: ApiCall) -> None:
        """Telegram's overall limit: at most `flood_limit` calls naming a chat in any window."""
        if self.flood_limit is None or "chat_id" not in record.params:
            return
        window = self._flood_times
        while window and record.at - window[0] >= self.flood_window_s:
            window.popleft()
        if len(window) >= self.flood_limit:
            retry_after = max(1, math.ceil(window[0] + self.flood_window_s - record.at))
            self.flood_limited.append(record)
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        window.append(record.at)

    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def _m_getMe(self, p: dict) -> dict:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def _m_deleteWebhook(self, p: dict) -> bool:
        self.webhook = {}
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_setWebhook(self, p: dict) -> bool:
        self.webhook = {"url": p.get("url"), "secret_token": p.get("secret_token"),
                        "allowed_updates": p.get("allowed_updates")}
        for update in self._updates:  # pending updates go to the webhook now
            task = asyncio.get_running_loop().create_task(self._post_webhook(update))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._updates.clear()
        return True

    def _m_getWebhookInfo(self, p: dict) -> dict:
        return {"url": self.webhook.get("url") or "", "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    def _m_setMyCommands(self, p: dict) -> bool:
        commands = p.get("commands") or []
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.get("command", "")) or not command.get("description"):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return True

    def _m_getMyCommands(self, p: dict) -> list:
        return self.commands

    def _m_deleteMyCommands(self, p: dict) -> bool:
        self.commands = []
        return True

    def _m_close(self, p: dict) -> bool:
        return True

    def _m_logOut(self, p: dict) -> bool:
        return True

    async def _m_getUpdates(self, p: dict) -> list:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        offset = p.get("offset") or 0
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = p.get("limit") or 100
        timeout = min(float(p.get("timeout") or 0), 50.0)
        with contextlib.suppress(TimeoutError):
            await self._wait_until(lambda: bool(self._updates) or self._closing, timeout, key="updates")
        return self._updates[:limit]

    def _m_sendChatAction(self, p: dict) -> bool:
        self._require_chat(p)
        self.chat_actions.append({"chat_id": p.get("chat_id"), "action": p.get("action"), "at": time.monotonic()})
        return True

    def _checked_text(self, p: dict) -> tuple[str, str, object]:
        """(text, what a user sees of it, reply markup), refused as Telegram refuses them."""
        text = p.get("text")
        if text is None or not str(text).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        plain = self._visible(str(text), p.get("parse_mode"))
        markup = p.get("reply_markup")
        _check_markup(markup)
        return str(text), plain, markup

    def _m_sendMessage(self, p: dict) -> dict:
        chat_id = self._require_chat(p)
        text, plain, markup = self._checked_text(p)
        reply_to = (p.get("reply_parameters") or {}).get("message_id") or p.get("reply_to_message_id")
        sent = SentMessage(next(self._message_ids), chat_id, str(text), plain, p.get("parse_mode"),
                           markup, reply_to, time.monotonic(), history=[plain])
        self._sent[chat_id].append(sent)
        self._by_id[(chat_id, sent.message_id)] = sent
        return self._message_dict(chat_id, sent.message_id)

    def _m_editMessageText(self, p: dict) -> dict:
        sent = self._find(p)
        text, plain, markup = self._checked_text(p)
        if str(text) == sent.text and markup == sent.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
        sent.text, sent.plain, sent.parse_mode, sent.reply_markup = str(text), plain, p.get("parse_mode"), markup
        sent.edits += 1
        sent.history.append(plain)
        return self._message_dict(sent.chat_id, sent.message_id)

    def _m_editMessageReplyMarkup(self, p: dict) -> dict:
        sent = self._find(p)
        markup = p.get("reply_markup")
        _check_markup(markup)
        if markup == sent.reply_markup or (not markup and not sent.reply_markup):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
        sent.reply_markup = markup or None
        sent.edits += 1
        return self._message_dict(sent.chat_id, sent.message_id)

    def _m_deleteMessage(self, p: dict) -> bool:
        sent = self._find(p)
        self._sent[sent.chat_id] = [m for m in self._sent[sent.chat_id] if m is not sent]
        self._by_id.pop((sent.chat_id, sent.message_id), None)
        return True

    def _m_answerCallbackQuery(self, p: dict) -> bool:
        query_id = str(p.get("callback_query_id"))
        if query_id not in self._open_queries:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        text = p.get("text")
        if text is not None and len(text) > CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        self.callback_answers.append({"callback_query_id": query_id, "text": text,
                                      "show_alert": bool(p.get("show_alert"))})
        return True

    # --- helpers -----------------------------------------------------------------------------------------
    def _require_chat(self, p: dict) -> int:
        chat_id = p.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _find(self, p: dict) -> SentMessage:
        chat_id = self._require_chat(p)
        sent = self._by_id.get((chat_id, p.get("message_id")))
        if sent is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return sent

    @staticmethod
    def _visible(text: str, parse_mode: str | None) -> str:
        if parse_mode is None:
            plain = text
        elif parse_mode.upper() == ParseMode.HTML:
            plain = parse_telegram_html(text)
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode} in this fake")
        if utf16_len(plain) > MAX_TEXT_LEN:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    def _message_dict(self, chat_id: int, message_id: int) -> dict:
        sent = self._by_id.get((chat_id, message_id))
        if sent is None:
            user_message = self._user_messages.get((chat_id, message_id))
            if user_message is None:
                raise LookupError(f"no message {message_id} in chat {chat_id}")
            return user_message
        message: dict[str, Any] = {"message_id": sent.message_id, "date": int(time.time()),
                                   "chat": self.chat(chat_id), "from": self._bot_user(), "text": sent.plain}
        if sent.edits:
            message["edit_date"] = int(time.time())
        if sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message

    async def _post_webhook(self, update: dict) -> None:
        import httpx

        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(20):
                try:
                    await client.post(self.webhook["url"], json=update, headers=headers)
                    return
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)

    # --- HTTP ------------------------------------------------------------------------------------------------
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self._connections.add(writer)
        try:
            while not self._closing:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                verb, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                try:
                    if headers.get("transfer-encoding", "").lower() == "chunked":
                        body = await _read_chunked(reader)
                    else:
                        body = await reader.readexactly(int(headers.get("content-length") or 0))
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return  # the client gave up on this request (e.g. a cancelled call)
                try:
                    status, payload = await self._dispatch(verb, target, headers, body)
                except _Drop:
                    writer.transport.abort()
                    return
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                          409: "Conflict", 429: "Too Many Requests"}.get(status, "Error")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n".encode("latin-1") + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(writer)
            if task is not None:
                self._conn_tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, verb: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        parts = urlsplit(target)
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", parts.path)
        if not match:
            return 404, ApiError(404, "Not Found").payload()
        if match.group(1) != self.token:
            return 401, ApiError(401, "Unauthorized").payload()
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        content_type = headers.get("content-type", "")
        if body:
            if content_type.startswith("application/json"):
                params.update(json.loads(body.decode("utf-8")))
            elif content_type.startswith("multipart/form-data"):
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name and not part.get_filename():
                        params[name] = part.get_payload(decode=True).decode("utf-8")
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return await self.call(match.group(2), params)


class _Drop(Exception):
    """Internal: answer a call by dropping the connection."""


def _normalise(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            elif key in _INT_FIELDS:
                with contextlib.suppress(ValueError):
                    value = int(value)
            elif key in _BOOL_FIELDS:
                value = value.lower() in ("true", "1")
        out[key] = value
    return out


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _media(kind: str) -> dict:
    file = {"file_id": f"fake-{kind}", "file_unique_id": f"u-{kind}"}
    return {
        "sticker": {"sticker": {**file, "type": "regular", "width": 512, "height": 512,
                                "is_animated": False, "is_video": False, "emoji": "🙂"}},
        "photo": {"photo": [{**file, "width": 90, "height": 90}]},
        "voice": {"voice": {**file, "duration": 3}},
        "audio": {"audio": {**file, "duration": 30}},
        "video": {"video": {**file, "width": 320, "height": 240, "duration": 5}},
        "video_note": {"video_note": {**file, "length": 240, "duration": 5}},
        "animation": {"animation": {**file, "width": 320, "height": 240, "duration": 2}},
        "document": {"document": {**file, "file_name": "账单.pdf", "mime_type": "application/pdf"}},
        "location": {"location": {"latitude": 31.23, "longitude": 121.47}},
        "venue": {"venue": {"location": {"latitude": 31.23, "longitude": 121.47}, "title": "某地",
                            "address": "某路1号"}},
        "contact": {"contact": {"phone_number": "+860000000000", "first_name": "某人"}},
        "dice": {"dice": {"emoji": "🎲", "value": 3}},
        "poll": {"poll": {"id": "p1", "question": "?", "options": [{"text": "a", "voter_count": 0, "persistent_id": "o1"}],
                          "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
                          "type": "regular", "allows_multiple_answers": False,
                          "allows_revoting": False, "members_only": False}},
    }[kind]


class InProcessRequest(BaseRequest):
    """PTB transport straight into a FakeBotAPI: same checks, no sockets."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=None, write_timeout=None, connect_timeout=None,
                         pool_timeout=None) -> tuple[int, bytes]:
        api_method = url.rstrip("/").rsplit("/", 1)[-1]
        params = dict(request_data.json_parameters) if request_data else {}
        try:
            status, payload = await self.api.call(api_method, params)
        except _Drop as exc:
            raise NetworkError("fake: connection dropped") from exc
        return status, json.dumps(payload).encode("utf-8")


class ThreadedFakeBotAPI:
    """FakeBotAPI on its own event loop in a background thread, with blocking methods.

    Every FakeBotAPI method or attribute is available: coroutines are run on the
    server's loop and waited for, plain methods are called on that loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        self.api: FakeBotAPI = self._run(self._make(args, kwargs))

    async def _make(self, args: tuple, kwargs: dict) -> FakeBotAPI:
        return FakeBotAPI(*args, **kwargs)

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "ThreadedFakeBotAPI":
        self._run(self.api.start(host, port))
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._run(self.api.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "ThreadedFakeBotAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.api, name)
        if not callable(attribute):
            return attribute
        if asyncio.iscoroutinefunction(attribute):
            return lambda *a, **k: self._run(attribute(*a, **k))

        async def call(*a: Any, **k: Any) -> Any:
            return attribute(*a, **k)
        return lambda *a, **k: self._run(call(*a, **k))


# --- standalone server and demo -----------------------------------------------------------------------------

DEMO_USERS = (4201, 4202, 4203)  # steps are spread over three users to stay under the rate limit
DEMO_GROUP = -100777
DEMO_GROUP_MEMBER = 4204


async def run_demo(api: FakeBotAPI, *, timeout: float = 30.0, out=sys.stdout) -> bool:
    """Play one update of every kind to a bot and report what came back. True if all were answered.

    The bot must be running against `api` (e.g. `python -m bot telegram` with
    TELEGRAM_BASE_URL/TELEGRAM_BOT_TOKEN pointing here).
    """
    a, b, c = DEMO_USERS
    group = dict(user_id=DEMO_GROUP_MEMBER, chat_type="supergroup")
    first_c: list[int] = []
    steps: list[tuple[str, int, int, Callable[[], Any]]] = [
        ("/start", a, 1, lambda: api.user_message(a, "/start")),
        ("/help", a, 1, lambda: api.user_message(a, "/help")),
        ("question", a, 1, lambda: api.user_message(a, "花呗逾期一个月会怎么样")),
        ("follow-up button", a, 1, lambda: api.press_button(a)),
        ("/reset", a, 1, lambda: api.user_message(a, "/reset")),
        ("/forget", a, 1, lambda: api.user_message(a, "/forget")),
        ("/topics", b, 1, lambda: api.user_message(b, "/topics")),
        ("topic button 催收边界", b, 1, lambda: api.press_button(b, label="催收边界")),
        ("/complain", b, 2, lambda: api.user_message(b, "/complain")),
        ("unknown command", b, 1, lambda: api.user_message(b, "/foo")),
        ("sticker", c, 1, lambda: first_c.append(api.user_message(c, kind="sticker")["message_id"])),
        ("photo", c, 1, lambda: api.user_message(c, kind="photo")),
        ("voice", c, 1, lambda: api.user_message(c, kind="voice")),
        ("document", c, 1, lambda: api.user_message(c, kind="document")),
        ("location", c, 1, lambda: api.user_message(c, kind="location")),
        ("edited message", c, 1, lambda: api.user_message(c, "改过的问题", edit_of=first_c[0])),
        ("group: chatter (no reply expected)", DEMO_GROUP, 0, lambda: api.user_message(DEMO_GROUP, "大家好", **group)),
        ("group: mention", DEMO_GROUP, 1,
         lambda: api.user_message(DEMO_GROUP, "催收可以打给我家人吗", mention_bot=True, **group)),
    ]
    ok = True
    print("waiting for the bot to poll…", file=out, flush=True)
    await api.wait_for_call("getUpdates", timeout=120)
    print(f"commands registered: {[cmd['command'] for cmd in api.commands]}", file=out)
    for title, chat_id, count, action in steps:
        print(f"\n## {title}", file=out)
        try:
            action()
            if count == 0:
                await api.settle(0.5)
                messages = api.unread(chat_id)
                if messages:
                    raise AssertionError(f"expected no reply, got {len(messages)}")
                print("(no reply, as expected)", file=out)
                continue
            messages = await api.wait_for_messages(chat_id, count, timeout=timeout)
        except (TimeoutError, LookupError, AssertionError) as exc:
            print(f"FAILED: {exc}", file=out)
            ok = False
            continue
        for message in messages:
            print(message.plain if len(message.plain) <= 400 else message.plain[:400] + "…", file=out)
            if message.buttons:
                print("  [buttons] " + " | ".join(text for text, _ in message.buttons), file=out)
    await api.settle(0.5)
    extra = sum(len(api.unread(chat)) for chat in (*DEMO_USERS, DEMO_GROUP))
    if extra:
        ok = False
        print(f"\nUNEXPECTED extra messages: {extra}", file=out)
    print("\nDEMO " + ("PASSED: every update answered" if ok else "FAILED"), file=out, flush=True)
    return ok


async def _main_async(args: argparse.Namespace) -> int:
    api = FakeBotAPI(args.token)
    await api.start(args.host, args.port)
    print(f"fake Bot API on {api.base_url}\n"
          f"  TELEGRAM_BASE_URL={api.base_url} TELEGRAM_BOT_TOKEN={api.token} python -m bot telegram",
          flush=True)
    if args.verbose:
        api.on_call = lambda c: c.method != "getUpdates" and print(
            f"{c.method} {json.dumps(c.params, ensure_ascii=False)[:200]}", flush=True)
    try:
        if args.demo:
            return 0 if await run_demo(api) else 1
        await asyncio.Event().wait()
        return 0
    finally:
        await api.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.telegram.fake_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--demo", action="store_true", help="play one update of every kind, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every call the bot makes")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main_async(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
