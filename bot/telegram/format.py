"""Turning a `Reply` into Telegram messages: HTML, compact sources, splitting, buttons.

Every dynamic string (answer text, source titles, suggestions, the user's own
question) goes through `html.escape`; the only markup is the tags written here.
Splitting works on the plain text first and escapes each piece afterwards, so a
split can never land inside a tag or an entity.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from bot.reply import Reply
from bot.telegram import texts

# Telegram's limit for one message's text (after entity parsing). We measure the
# HTML source, which is never shorter than what Telegram counts, in UTF-16 code
# units as Telegram does.
MAX_MESSAGE_LEN = MessageLimit.MAX_TEXT_LENGTH  # 4096
MAX_SOURCES = 5
MAX_REFS = 3  # documents shown per source entry
MAX_BUTTON_LABEL = 40  # characters shown on a suggestion button
MAX_CALLBACK_BYTES = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_BULLET = re.compile(r"^(\s*)[-*•]\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def _circled(n: int) -> str:
    return _CIRCLED[n - 1] if 1 <= n <= len(_CIRCLED) else f"({n})"


def _tidy(text: str) -> str:
    """Plain text -> plain text with "- " bullets as "• " and no trailing spaces."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(_BULLET.sub(lambda m: m.group(1) + "• ", line.rstrip()))
    return "\n".join(lines).strip()


def source_label(source) -> str:
    """An entry's title, then what it rests on, compactly: `title — 《条例》（国务院，2013-01-21）`.
    At most MAX_REFS documents per entry; a secondary one carries 公开资料 (bot/reply.py)."""
    title = " ".join((source.title or "").split())
    refs = [ref.compact() for ref in getattr(source, "refs", ())[:MAX_REFS]]
    if not title or not refs:
        return title
    more = "等" if len(source.refs) > MAX_REFS else ""
    return f"{title} — {'；'.join(refs)}{more}"


def sources_line(reply: Reply) -> str | None:
    """`<i>来源：① title — document（publisher，date） ② ...</i>`, distinct, at most MAX_SOURCES."""
    titles: list[str] = []
    for source in reply.sources:
        title = source_label(source)
        if title and title not in titles:
            titles.append(title)
    if not titles:
        return None
    parts = [f"{_circled(i)} {escape(title)}" for i, title in enumerate(titles[:MAX_SOURCES], 1)]
    return f"<i>{texts.SOURCES_LABEL}{' '.join(parts)}</i>"


def _hard_split(text: str, limit: int) -> list[str]:
    """Split plain text so each escaped piece fits in `limit`; prefers line breaks."""
    pieces: list[str] = []
    current = ""
    current_len = 0
    for line in text.split("\n"):
        candidate_len = current_len + (1 if current else 0) + utf16_len(escape(line))
        if current and candidate_len <= limit:
            current += "\n" + line
            current_len = candidate_len
            continue
        if current:
            pieces.append(current)
            current, current_len = "", 0
        if utf16_len(escape(line)) <= limit:
            current, current_len = line, utf16_len(escape(line))
            continue
        # One line longer than a whole message: cut it by characters.
        for ch in line:
            ch_len = utf16_len(escape(ch))
            if current_len + ch_len > limit:
                pieces.append(current)
                current, current_len = "", 0
            current += ch
            current_len += ch_len
    if current:
        pieces.append(current)
    return pieces


def split_html_paragraphs(paragraphs: Sequence[str], limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """Pack already-rendered HTML paragraphs into messages of at most `limit`.

    Paragraphs are joined by a blank line and never split here; callers make
    sure each one fits (see `render_reply`).
    """
    chunks: list[str] = []
    current = ""
    for paragraph in paragraphs:
        if not paragraph:
            continue
        joined = f"{current}\n\n{paragraph}" if current else paragraph
        if utf16_len(joined) <= limit:
            current = joined
        else:
            if current:
                chunks.append(current)
            current = paragraph
    if current:
        chunks.append(current)
    return chunks


def render_reply(reply: Reply, *, question: str | None = None, limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """The reply as one or more Telegram HTML messages, in order.

    `question` (a pressed button's question) is shown first, in bold, so the
    chat shows what was asked. Long answers are split at paragraph boundaries;
    a paragraph longer than a whole message is split at line breaks, and a line
    longer than that by characters. The sources line goes at the very end.
    """
    paragraphs: list[str] = []
    if question:
        for piece in _hard_split(" ".join(question.split()), limit - len("<b></b>")):
            paragraphs.append(f"<b>{escape(piece)}</b>")
    body = _tidy(reply.text or "")
    for paragraph in _PARAGRAPH_BREAK.split(body):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        for piece in _hard_split(paragraph, limit):
            paragraphs.append(escape(piece))
    line = sources_line(reply)
    if line:
        if utf16_len(line) > limit:  # absurdly many/long titles: drop the styling, keep text
            paragraphs.extend(escape(p) for p in _hard_split(html.unescape(line[3:-4]), limit))
        else:
            paragraphs.append(line)
    if not paragraphs:
        paragraphs.append(escape("…"))
    return split_html_paragraphs(paragraphs, limit)


# --- buttons ------------------------------------------------------------------------------

def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_BUTTON_LABEL else text[: MAX_BUTTON_LABEL - 1] + "…"


def topics_keyboard(columns: int = 3) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(label, callback_data=f"t:{i}") for i, (label, _) in enumerate(texts.TOPICS)]
    rows = [buttons[i : i + columns] for i in range(0, len(buttons), columns)]
    return InlineKeyboardMarkup(rows)


def suggestion_texts(suggestions: Sequence[str]) -> list[str]:
    """The suggestions that become buttons: whitespace tidied, blanks and repeats dropped."""
    picked: list[str] = []
    for suggestion in suggestions:
        text = " ".join((suggestion or "").split())
        if text and text not in picked:
            picked.append(text)
    return picked


def button_key(text: str) -> str:
    """The short key a suggestion's button carries: 12 URL-safe characters derived from its text.

    Telegram limits callback_data to 64 bytes, and suggestions are Chinese
    questions (3 bytes a character), so a button holds this key and the text is
    looked up (bot/telegram/buttons.py). Derived from the text, the same
    suggestion gets the same key in every process and after every restart.
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def suggestions_keyboard(suggestions: Sequence[str], *, one_shot: bool) -> InlineKeyboardMarkup | None:
    """One button per row; callback data is "q:" or "c:" and the suggestion's `button_key`.

    `one_shot` (clarification options) uses prefix "c:" so pressing one removes
    the options; follow-up suggestions ("q:") stay pressable.
    """
    prefix = "c" if one_shot else "q"
    rows = [[InlineKeyboardButton(_label(text), callback_data=f"{prefix}:{button_key(text)}")]
            for text in suggestion_texts(suggestions)]
    return InlineKeyboardMarkup(rows) if rows else None
