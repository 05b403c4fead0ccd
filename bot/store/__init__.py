"""The knowledge store: one definition shared by ingest (writer) and the bot (reader).

Chroma holds the chunks. Every ingest that changes anything writes a complete
new *version* (a fresh collection), then flips a small pointer to it. Readers
follow the pointer, so a running bot keeps answering from the old version while
ingest runs, and an ingest that fails or is killed half-way leaves the pointer,
and therefore the old knowledge, untouched.

Two layouts, chosen by settings (`open_store`), behind one interface
(bot/store/base.py's KnowledgeStore):
- embedded (default, bot/store/local.py): `CHROMA_PATH/versions/<version>/` is one PersistentClient
  directory per version and `CHROMA_PATH/CURRENT.json` is the pointer, replaced
  atomically with os.replace. One directory per version also means the bot and
  ingest never write the same Chroma files from two processes. Retrieval reads a
  published version with Chroma's engine directly (bot/store/chroma_reader.py).
- server (`CHROMA_HOST` set, bot/store/server.py): collections `<name>__<version>` on a Chroma server;
  the pointer is the metadata of the collection `<name>__pointer`.

The pointer carries the manifest: which embedding model and dimension built the
version, so a reader with another model fails with a clear message instead of
returning nonsense. Each embedded version also keeps its own copy
(`versions/<version>/MANIFEST.json`, written once the version is complete,
before the pointer flips to it). Ingest keeps the current version and the one
before it, so when the pointer is damaged (not valid JSON, not a manifest, or
naming a version that is gone) readers answer from the newest complete version
and say once, in one line, what is wrong and that `python -m ingest` repairs it;
the next ingest does.
"""

from __future__ import annotations

import time

from bot.settings import Settings
from bot.store.base import KnowledgeStore
from bot.store.local import LocalStore
from bot.store.manifest import (
    MANIFEST_FORMAT,
    EmbeddingMismatchError,
    Manifest,
    PointerDamagedError,
    StoreError,
    StoreMissingError,
    check_embedding_model,
    new_version_id,
)
from bot.store.server import ServerStore

__all__ = [
    "MANIFEST_FORMAT", "EmbeddingMismatchError", "IngestLock", "KnowledgeStore", "LocalStore", "Manifest",
    "PointerDamagedError", "ServerStore", "StoreError", "StoreMissingError", "check_embedding_model",
    "new_version_id", "open_store",
]


def open_store(settings: Settings) -> KnowledgeStore:
    """The store in the layout the settings name: a Chroma server when CHROMA_HOST is set."""
    return ServerStore(settings) if settings.chroma_host else LocalStore(settings)


class IngestLock:
    """Keeps two ingests from racing on the same store.

    Embedded: an flock on a file beside the versions (released by the kernel
    if the process dies). Server: creating a `<name>__lock` collection is the
    mutex (creation fails when it exists); a lock older than LOCK_STALE_S was
    left by a killed ingest and is taken over.
    """

    WAIT_S = 60.0
    LOCK_STALE_S = 600.0

    def __init__(self, store: KnowledgeStore) -> None:
        self._store = store
        self._release = None

    def __enter__(self) -> "IngestLock":
        self._release = self._store.acquire_ingest_lock(time.monotonic() + self.WAIT_S, self.LOCK_STALE_S)
        return self

    def __exit__(self, *exc) -> None:
        if self._release is not None:
            self._release()
