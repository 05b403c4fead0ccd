"""Injecting updates as Telegram would send them, and observing what the bot sent (FakeBotAPI's half that tests drive)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from telegram.constants import ChatType

from bot.telegram.fake_api.checks import utf16_len
from bot.telegram.fake_api.records import ApiCall, SentDocument, SentMessage


class UpdatesMixin:
    """FakeBotAPI's updates and observations; its state is set up in FakeBotAPI.__init__."""

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

    def documents(self, chat_id: int) -> list[SentDocument]:
        return list(self._documents[chat_id])

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
