"""What the Telegram front end needs from the dialogue engine (bot.dialogue.DialogueEngine)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.reply import Reply


@runtime_checkable
class Engine(Protocol):
    """Synchronous and CPU-bound: the front end calls it from worker threads.

    Implementations must be safe to call from several threads at once for
    different conversation ids; calls for one conversation id are serialised
    by the front end.
    """

    def handle(self, conversation_id: str, text: str) -> Reply: ...

    def reset(self, conversation_id: str) -> Reply: ...

    def forget(self, conversation_id: str) -> Reply: ...
