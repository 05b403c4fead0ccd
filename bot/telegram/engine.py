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
    # An engine may also take `on_partial` (keyword): `handle(conversation_id, text,
    # on_partial=None)`, calling `on_partial(text_so_far)` from its thread as an
    # answer streams in, and returning the final Reply (bot.dialogue does, with a
    # language model configured). The front end then shows the partial text and
    # replaces it with the final reply; engines without the parameter never stream.

    def reset(self, conversation_id: str) -> Reply: ...

    def forget(self, conversation_id: str) -> Reply: ...
