"""What Telegram checks in a call: Telegram-HTML, lengths, keyboards; and its error answers."""

from __future__ import annotations

import html
import re
from typing import Any

from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

DEFAULT_TOKEN = "123456789:FAKE-test-token_for-loopback-only"
MAX_TEXT_LEN = MessageLimit.MAX_TEXT_LENGTH
MAX_CALLBACK_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre",
    "a", "tg-spoiler", "span", "blockquote", "tg-emoji",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")


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


def check_markup(markup: Any) -> None:
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


class DropConnection(Exception):
    """Internal: answer a call by dropping the connection."""
