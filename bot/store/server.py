"""The server layout (`CHROMA_HOST` set): every version a collection on a Chroma server.

Collections `<name>__<version>` hold the versions; the pointer is the metadata
of the collection `<name>__pointer`; files published with a version are in
`<name>_blobs__<version>`; creating `<name>__lock` is the ingest mutex.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from bot.settings import Settings
from bot.store.base import KnowledgeStore, wait_for_lock
from bot.store.manifest import Manifest, StoreError


class ServerStore(KnowledgeStore):
    is_server = True
    BLOB_CHUNK = 256 * 1024  # bytes per record (documents are text: base64)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._server_client = None

    def describe(self) -> str:
        return f"Chroma server {self.settings.chroma_host}:{self.settings.chroma_port}, collection {self.base_name}"

    # --- the client ------------------------------------------------------------------
    def _server(self):
        if self._server_client is None:
            import chromadb

            try:
                self._server_client = chromadb.HttpClient(
                    host=self.settings.chroma_host,
                    port=self.settings.chroma_port,
                    settings=self._chroma_settings(),
                )
            except Exception as exc:
                raise StoreError(
                    f"Cannot reach the Chroma server at {self.settings.chroma_host}:"
                    f"{self.settings.chroma_port}: {exc}"
                ) from exc
        return self._server_client

    def client_for(self, version: str, create: bool = False):
        return self._server()

    def collection_name(self, version: str) -> str:
        return f"{self.base_name}__{version}"

    # --- pointer -----------------------------------------------------------------
    @property
    def _pointer_collection(self) -> str:
        return f"{self.base_name}__pointer"

    def pointer_token(self) -> Any:
        return self.read_manifest()

    def describe_pointer(self) -> str:
        return f"The knowledge store pointer (collection {self._pointer_collection})"

    def _read_pointer(self) -> str | None:
        try:
            col = self._server().get_collection(self._pointer_collection, embedding_function=None)
        except StoreError:
            raise
        except Exception:
            return None
        return (col.metadata or {}).get("manifest") or None

    def _write_pointer(self, manifest: Manifest) -> None:
        col = self._server().get_or_create_collection(self._pointer_collection, embedding_function=None)
        col.modify(metadata={"manifest": manifest.to_json()})

    # --- blobs: a collection beside the version's --------------------------------------
    def _blob_collection(self, version: str, create: bool = False):
        # "<name>_blobs__<version>" does not start with "<name>__", so it is never
        # mistaken for a version of its own.
        name = f"{self.base_name}_blobs__{version}"
        client = self._server()
        if create:
            return client.get_or_create_collection(name, embedding_function=None)
        return client.get_collection(name, embedding_function=None)

    def write_blob(self, version: str, name: str, data: bytes) -> None:
        import base64

        text = base64.b64encode(data).decode("ascii")
        parts = [text[i:i + self.BLOB_CHUNK] for i in range(0, len(text), self.BLOB_CHUNK)] or [""]
        col = self._blob_collection(version, create=True)
        col.add(ids=[f"{name}#{i:05d}" for i in range(len(parts))], documents=parts,
                embeddings=[[1.0]] * len(parts), metadatas=[{"blob": name}] * len(parts))

    def read_blob(self, manifest: Manifest, name: str) -> bytes | None:
        import base64

        try:
            got = self._blob_collection(manifest.version).get(where={"blob": name}, include=["documents"])
        except Exception:
            return None
        if not got["ids"]:
            return None
        parts = [doc for _, doc in sorted(zip(got["ids"], got["documents"]))]
        return base64.b64decode("".join(parts))

    # --- versions ------------------------------------------------------------------
    def record_version(self, manifest: Manifest) -> None:
        return  # a version's collection is complete once ingest publishes it

    def version_exists(self, version: str) -> bool:
        return True  # a missing collection is reported when it is opened

    def newest_complete_version(self, exclude: str | None = None) -> Manifest | None:
        return None  # versions keep no manifest of their own on a server

    def list_versions(self) -> list[str]:
        prefix = f"{self.base_name}__"
        names = [c if isinstance(c, str) else c.name for c in self._server().list_collections()]
        return sorted(
            n[len(prefix):] for n in names
            if n.startswith(prefix) and n not in (self._pointer_collection, f"{self.base_name}__lock")
        )

    def drop_version(self, version: str) -> None:
        for name in (self.collection_name(version), f"{self.base_name}_blobs__{version}"):
            try:
                self._server().delete_collection(name)
            except Exception:
                pass

    # --- the ingest lock: creating a collection fails when it exists -------------------
    def acquire_ingest_lock(self, deadline: float, stale_s: float) -> Callable[[], None]:
        """A lock older than `stale_s` was left by a killed ingest and is taken over."""
        client = self._server()
        name = f"{self.base_name}__lock"
        while True:
            try:
                client.create_collection(name, embedding_function=None, metadata={"since": time.time()})
                return lambda: self._release_lock(name)
            except Exception:
                try:
                    since = float((client.get_collection(name, embedding_function=None).metadata or {})
                                  .get("since", 0))
                except Exception:
                    continue  # released between the two calls: try again
                if time.time() - since > stale_s:
                    client.delete_collection(name)
                    continue
                wait_for_lock(deadline)

    def _release_lock(self, name: str) -> None:
        try:
            self._server().delete_collection(name)
        except Exception:
            pass
