"""What every knowledge store does the same way, whichever layout holds the versions.

The layouts differ only in where things live (bot/store/local.py,
bot/store/server.py); reading and checking the pointer, publishing a version,
opening its collection and collecting old versions are the same for both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from bot.settings import Settings
from bot.store.manifest import Manifest, PointerDamagedError, StoreError, StoreMissingError


# A version's HNSW settings, so that every process finds the same neighbours. Chroma saves no
# HNSW index with a version of fewer than sync_threshold (1000) records and builds it anew in
# each process that reads it, and the graph differs from one process to the next; with
# Chroma's default ef_search of 100 so did the approximate neighbours, and `bot eval` figures
# wobbled between runs. A search whose ef_search is at least the number of vectors keeps every
# vector it reaches as a candidate: exact (the neighbours brute force finds) however the graph
# was built, for about half a millisecond more per query. The floor of 1024 covers a small
# version; a bigger one (1453 chunks with the paraphrases) gets its own count. One build
# thread is asked for too (kept in the collection's schema); chromadb 1.5.9's embedded engine
# still builds a different graph in each process, so exact search is what makes answers repeat.
HNSW_NUM_THREADS = 1
HNSW_SEARCH_EF_FLOOR = 1024


def hnsw_configuration(records: int = 0) -> dict:
    """The `hnsw` configuration of a version's collection that will hold `records` vectors."""
    return {"space": "cosine", "num_threads": HNSW_NUM_THREADS, "ef_search": max(HNSW_SEARCH_EF_FLOOR, records)}


class KnowledgeStore:
    """Opens versions of the store and flips the pointer; knows nothing of retrieval.

    Build one with `open_store(settings)`, which picks the layout.
    """

    is_server = False  # the pointer is read over the network (readers check it less often)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_name = settings.chroma_collection
        self.root = Path(settings.chroma_path)

    # --- what each layout provides -------------------------------------------------
    def describe(self) -> str:
        raise NotImplementedError

    def client_for(self, version: str, create: bool = False):
        raise NotImplementedError

    def collection_name(self, version: str) -> str:
        raise NotImplementedError

    def pointer_token(self) -> Any:
        """A cheap value that changes whenever the pointer may have changed."""
        raise NotImplementedError

    def describe_pointer(self) -> str:
        raise NotImplementedError

    def _read_pointer(self) -> str | None:
        """The pointer's text; None when there is no pointer."""
        raise NotImplementedError

    def _write_pointer(self, manifest: Manifest) -> None:
        """Point at `manifest`'s version, in one atomic step."""
        raise NotImplementedError

    def write_blob(self, version: str, name: str, data: bytes) -> None:
        """Store `data` under `name` in a version that is being written (before publish)."""
        raise NotImplementedError

    def read_blob(self, manifest: Manifest, name: str) -> bytes | None:
        """A blob of the version `manifest` names, or None when that version has none."""
        raise NotImplementedError

    def record_version(self, manifest: Manifest) -> None:
        """Mark a fully written version complete."""
        raise NotImplementedError

    def version_exists(self, version: str) -> bool:
        raise NotImplementedError

    def newest_complete_version(self, exclude: str | None = None) -> Manifest | None:
        raise NotImplementedError

    def list_versions(self) -> list[str]:
        raise NotImplementedError

    def drop_version(self, version: str) -> None:
        raise NotImplementedError

    def acquire_ingest_lock(self, deadline: float, stale_s: float) -> Callable[[], None]:
        """Wait (until `deadline`, time.monotonic()) to be the only ingest; returns the release."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------
    def _chroma_settings(self):
        import chromadb.config

        return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)

    def read_manifest(self) -> Manifest | None:
        """The pointer's manifest; None when there is no pointer. Raises PointerDamagedError
        when there is one that is not a manifest."""
        text = self._read_pointer()
        if text is None:
            return None
        try:
            return Manifest.from_json(text)
        except json.JSONDecodeError as exc:
            raise PointerDamagedError(f"{self.describe_pointer()} is not valid JSON "
                                      f"({exc.msg}: line {exc.lineno} column {exc.colno})") from None
        except ValueError as exc:
            raise PointerDamagedError(f"{self.describe_pointer()} is not a valid manifest ({exc})") from None

    def require_manifest(self) -> Manifest:
        manifest = self.read_manifest()
        if manifest is None:
            raise StoreMissingError(
                f"No knowledge store at {self.describe()}. Run `python -m ingest` first "
                "(`make setup` does it for you)."
            )
        return manifest

    def resolve_pointer(self) -> tuple[Manifest | None, str | None]:
        """(the version to answer from, what is wrong with the pointer).

        A sound pointer gives (its manifest, None); a damaged one (not a manifest, or
        naming a version that is gone) gives (the newest complete version or None, the
        problem). Raises StoreMissingError when there is no pointer at all."""
        named = None
        try:
            manifest = self.require_manifest()
            if self.version_exists(manifest.version):
                return manifest, None
            named = manifest.version
            problem = f"{self.describe_pointer()} names version {named}, which is gone"
        except PointerDamagedError as exc:
            problem = str(exc)
        return self.newest_complete_version(exclude=named), problem

    def current_manifest(self) -> tuple[Manifest, str | None]:
        """The version to answer from, and None, or, when the pointer is damaged, the newest
        complete version and one line saying what is wrong and how to repair it.

        Raises StoreMissingError without a pointer, and PointerDamagedError (saying what is
        wrong) when the pointer is damaged and no complete version is left."""
        manifest, problem = self.resolve_pointer()
        if problem is None:
            return manifest, None
        if manifest is None:
            raise PointerDamagedError(f"{problem}, and no other complete version is left. "
                                      "Run `python -m ingest` to rebuild the store.")
        return manifest, (f"{problem}; answering from the newest complete version {manifest.version}. "
                          "Run `python -m ingest` to repair the pointer.")

    def publish(self, manifest: Manifest) -> None:
        """Make `manifest` the current version in one atomic step (its version is complete:
        its own copy of the manifest is written first)."""
        self.record_version(manifest)
        self._write_pointer(manifest)

    def create_version_collection(self, version: str, records: int = 0):
        """An empty collection for a new version that will hold `records` vectors (cosine space,
        exact and deterministic search: hnsw_configuration; no Chroma embedding function)."""
        client = self.client_for(version, create=True)
        return client.create_collection(
            self.collection_name(version),
            embedding_function=None,  # we always pass vectors; never Chroma's ONNX default
            configuration={"hnsw": hnsw_configuration(records)},
            metadata={"version": version},
        )

    def open_collection(self, manifest: Manifest):
        return self._opening(manifest, lambda: self.client_for(manifest.version).get_collection(
            manifest.collection, embedding_function=None))

    def open_reader(self, manifest: Manifest):
        """A published version's collection for reading only (retrieval): what open_collection
        gives, unless the layout has a cheaper way to read (bot/store/local.py)."""
        return self.open_collection(manifest)

    def read_records(self, manifest: Manifest, collection) -> dict:
        """Every record's document and metadata: retrieval's first read of a version, where
        damaged files show (the engine reads the records only now); a failure is a StoreError."""
        return self._opening(manifest, lambda: collection.get(include=["documents", "metadatas"]))

    def _opening(self, manifest: Manifest, open_it: Callable[[], Any]):
        """open_it(), with any failure but a StoreError said as one."""
        try:
            return open_it()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"The knowledge store's current version {manifest.version} cannot be opened "
                f"({exc}). Run `python -m ingest --rebuild`."
            ) from exc

    def collect_garbage(self, current: str, previous: str | None) -> list[str]:
        """Drop every version except the current one and `previous` (the version the
        pointer named before `current` was published, None on a first ingest),
        including orphans left by failed or killed runs. Keeping `previous` lets a
        bot that has not yet noticed the flip still read the version before it.

        Kept by identity, not by name order: an orphan sorts between the two
        versions, and versions made within one second sort by their random tail.
        """
        versions = self.list_versions()
        keep = {current} | ({previous} if previous else set())
        dropped = []
        for version in versions:
            if version not in keep:
                self.drop_version(version)
                dropped.append(version)
        return dropped


def wait_for_lock(deadline: float) -> None:
    """A short pause before trying a held ingest lock again; StoreError once `deadline` passes."""
    if time.monotonic() > deadline:
        raise StoreError("Another ingest is still running on this store; try again when it ends.")
    time.sleep(0.2)
