"""The Bot API methods the fake answers (`_m_<method>`), with Telegram's checks and flood limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from typing import Any

from telegram.constants import CallbackQueryLimit, ParseMode

from bot.telegram.fake_api.checks import (
    MAX_TEXT_LEN,
    ApiError,
    DropConnection,
    check_markup,
    parse_telegram_html,
    utf16_len,
)
from bot.telegram.fake_api.records import ApiCall, SentDocument, SentMessage

# Fields that arrive JSON-encoded in form bodies (PTB encodes non-strings as JSON).
_JSON_FIELDS = {"reply_markup", "reply_parameters", "commands", "allowed_updates", "link_preview_options",
                "entities", "scope"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id", "cache_time",
               "max_connections"}
_BOOL_FIELDS = {"show_alert", "drop_pending_updates", "disable_notification", "disable_web_page_preview"}


class MethodsMixin:
    """FakeBotAPI's API methods; its state is set up in FakeBotAPI.__init__."""

    # --- the API ------------------------------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        """Handle one Bot API call; returns (HTTP status, JSON body). Raises DropConnection for dropped calls."""
        status, body = await self._call(method, params)
        self.responses[status] += 1
        return status, body

    async def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        params = normalise_params(params)
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
                raise DropConnection()
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
        check_markup(markup)
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

    def _m_sendDocument(self, p: dict) -> dict:
        chat_id = self._require_chat(p)
        document = p.get("document")
        if isinstance(document, dict):  # an uploaded file (multipart)
            filename, content = document.get("filename"), document.get("content") or b""
        elif isinstance(document, str) and document:  # a file_id or URL
            filename, content = None, b""
        else:
            raise ApiError(400, "Bad Request: there is no document in the request")
        caption = p.get("caption")
        if caption is not None and utf16_len(self._visible(str(caption), p.get("parse_mode"))) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        sent = SentDocument(next(self._message_ids), chat_id, filename, content, caption)
        self._documents[chat_id].append(sent)
        return {"message_id": sent.message_id, "date": int(time.time()), "chat": self.chat(chat_id),
                "from": self._bot_user(), "caption": caption,
                "document": {"file_id": f"fake-doc-{sent.message_id}", "file_unique_id": f"u-doc-{sent.message_id}",
                             "file_name": filename, "file_size": len(content)}}

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
        check_markup(markup)
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


def normalise_params(params: dict[str, Any]) -> dict[str, Any]:
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
