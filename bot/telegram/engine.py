"""What the Telegram front end needs from the dialogue engine (bot.dialogue.DialogueEngine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bot.reply import Reply


@runtime_checkable
class Engine(Protocol):
    """Synchronous and CPU-bound: the front end calls it from worker threads.

    Implementations must be safe to call from several threads at once for
    different conversation ids; calls for one conversation id are serialised
    by the front end.
    """

    def handle(
        self, conversation_id: str, text: str, on_partial: Callable[[str], None] | None = None
    ) -> Reply:
        """One turn. An engine that streams calls `on_partial(text_so_far)` from its
        thread as the answer comes in (bot.dialogue does, with a language model
        configured); the front end shows that text and replaces it with the final
        Reply. An engine that never streams ignores `on_partial`."""
        ...

    def reset(self, conversation_id: str) -> Reply: ...

    def forget(self, conversation_id: str) -> Reply: ...
