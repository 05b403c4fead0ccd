"""The embedded layout: one Chroma directory per version, a pointer file beside them.

`CHROMA_PATH/versions/<version>/` is one PersistentClient directory per
version and `CHROMA_PATH/CURRENT.json` is the pointer, replaced atomically with
os.replace. One directory per version also means the bot and ingest never write
the same Chroma files from two processes. Each version keeps its own copy of
the manifest (`MANIFEST.json`, written once it is complete), so a damaged
pointer can fall back to the newest complete version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bot.settings import Settings
from bot.store.base import KnowledgeStore, wait_for_lock
from bot.store.manifest import Manifest, PointerDamagedError, StoreError

if TYPE_CHECKING:
    from bot.store.chroma_reader import VersionReader


class LocalStore(KnowledgeStore):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._local_clients: dict[str, Any] = {}
        self._readers: dict[str, VersionReader] = {}

    def describe(self) -> str:
        return f"local Chroma at {self.root}"

    # --- clients -----------------------------------------------------------------
    def client_for(self, version: str, create: bool = False):
        client = self._local_clients.get(version)
        if client is None:
            import chromadb

            path = self._version_path(version, create)
            client = chromadb.PersistentClient(path=str(path), settings=self._chroma_settings())
            self._local_clients[version] = client
        return client

    def _version_path(self, version: str, create: bool = False) -> Path:
        path = self.root / "versions" / version
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            # Reading must not create an empty version where a deleted one was.
            raise StoreError(f"The knowledge store's version {version} is missing at {path}. "
                             "Run `python -m ingest` to repair the store.")
        return path

    def open_reader(self, manifest: Manifest):
        """Chroma's engine without the chromadb package (bot/store/chroma_reader.py): a published
        version is never written again. A version this store already has a chromadb client for
        (ingest writing it, or reading it to reuse vectors) is read through that client."""
        version = manifest.version
        if version in self._local_clients:
            return self.open_collection(manifest)
        reader = self._readers.get(version)
        if reader is None:
            from bot.store.chroma_reader import open_version_reader

            path = self._version_path(version)
            reader = self._opening(manifest, lambda: open_version_reader(path, manifest.collection))
            if reader is None:  # a chromadb release whose engine this cannot drive
                return self.open_collection(manifest)
            self._readers[version] = reader
        return reader

    def collection_name(self, version: str) -> str:
        return self.base_name  # one directory per version, so the name can stay fixed

    # --- pointer -----------------------------------------------------------------
    @property
    def _pointer_file(self) -> Path:
        return self.root / "CURRENT.json"

    def pointer_token(self) -> Any:
        try:
            st = self._pointer_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def describe_pointer(self) -> str:
        return f"The knowledge store pointer {self._pointer_file}"

    def _read_pointer(self) -> str | None:
        try:
            return self._pointer_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PointerDamagedError(f"{self.describe_pointer()} cannot be read ({exc})") from None

    def _write_pointer(self, manifest: Manifest) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._pointer_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._pointer_file)

    # --- blobs: files published with a version (the judgement model, the lexicon) ----
    def write_blob(self, version: str, name: str, data: bytes) -> None:
        path = self.root / "versions" / version / f"{name}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read_blob(self, manifest: Manifest, name: str) -> bytes | None:
        path = self.root / "versions" / manifest.version / f"{name}.bin"
        return path.read_bytes() if path.is_file() else None

    # --- versions ------------------------------------------------------------------
    def _version_manifest_file(self, version: str) -> Path:
        return self.root / "versions" / version / "MANIFEST.json"

    def record_version(self, manifest: Manifest) -> None:
        """Its own copy of the manifest, beside its data."""
        path = self._version_manifest_file(manifest.version)
        if not path.parent.is_dir():
            raise StoreError(f"The knowledge store's version {manifest.version} is missing at {path.parent}. "
                             "Run `python -m ingest`.")
        try:
            if Manifest.from_json(path.read_text(encoding="utf-8")) == manifest:
                return
        except (OSError, ValueError):
            pass
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    def version_exists(self, version: str) -> bool:
        return (self.root / "versions" / version).is_dir()

    def newest_complete_version(self, exclude: str | None = None) -> Manifest | None:
        """The newest version whose own manifest says it is complete."""
        for version in sorted(self.list_versions(), reverse=True):  # version ids sort by time
            if version == exclude:
                continue
            try:
                manifest = Manifest.from_json(self._version_manifest_file(version).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # an older layout, or left by an ingest that did not finish
            if manifest.version == version:
                return manifest
        return None

    def list_versions(self) -> list[str]:
        versions_dir = self.root / "versions"
        if not versions_dir.is_dir():
            return []
        return sorted(p.name for p in versions_dir.iterdir() if p.is_dir())

    def drop_version(self, version: str) -> None:
        reader = self._readers.pop(version, None)
        if reader is not None:
            reader.close()
        client = self._local_clients.pop(version, None)
        if client is not None:
            # Release this client's files before removal (only this client: other
            # versions open in the same process keep working).
            try:
                client.close()
            except Exception:
                pass
        shutil.rmtree(self.root / "versions" / version, ignore_errors=True)

    # --- the ingest lock: an flock, released by the kernel if the process dies ------------
    def acquire_ingest_lock(self, deadline: float, stale_s: float) -> Callable[[], None]:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".ingest.lock", "w")
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh.close
            except BlockingIOError:
                try:
                    wait_for_lock(deadline)
                except BaseException:
                    fh.close()
                    raise
