"""The knowledge store: one definition shared by ingest (writer) and the bot (reader).

Chroma holds the chunks. Every ingest that changes anything writes a complete
new *version* (a fresh collection), then flips a small pointer to it. Readers
follow the pointer, so a running bot keeps answering from the old version while
ingest runs, and an ingest that fails or is killed half-way leaves the pointer,
and therefore the old knowledge, untouched.

Two layouts, chosen by settings:
- embedded (default): `CHROMA_PATH/versions/<version>/` is one PersistentClient
  directory per version and `CHROMA_PATH/CURRENT.json` is the pointer, replaced
  atomically with os.replace. One directory per version also means the bot and
  ingest never write the same Chroma files from two processes.
- server (`CHROMA_HOST` set): collections `<name>__<version>` on a Chroma server;
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

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.settings import Settings

MANIFEST_FORMAT = 1


class StoreError(RuntimeError):
    """The knowledge store is missing or unusable; the message says what to do."""


class StoreMissingError(StoreError):
    pass


class EmbeddingMismatchError(StoreError):
    pass


class PointerDamagedError(StoreError):
    """The pointer exists but cannot be followed; the message says what is wrong with it."""


@dataclass(frozen=True)
class Manifest:
    """What the pointer says about the current version."""

    version: str
    collection: str
    embedding_model: str
    dimension: int
    chunks: int
    units: int
    created_at: str
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        """Raises ValueError when `text` is not a manifest (not JSON, not an object, fields missing)."""
        data = json.loads(text)  # json.JSONDecodeError is a ValueError
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        missing = [k for k in ("version", "collection", "embedding_model", "dimension") if not data.get(k)]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        try:
            return cls(**known)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def new_version_id() -> str:
    # Sortable by time; the random tail keeps two ingests in one second apart.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def check_embedding_model(manifest: Manifest, model_name: str, dimension: int) -> None:
    if manifest.embedding_model != model_name or manifest.dimension != dimension:
        raise EmbeddingMismatchError(
            f"The knowledge store was built with embedding model {manifest.embedding_model!r} "
            f"({manifest.dimension} dimensions), but EMBEDDING_MODEL is {model_name!r} "
            f"({dimension} dimensions). Run `python -m ingest --rebuild` to rebuild the store "
            "with the configured model, or set EMBEDDING_MODEL back."
        )


class KnowledgeStore:
    """Opens versions of the store and flips the pointer; knows nothing of retrieval."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_name = settings.chroma_collection
        self.is_server = bool(settings.chroma_host)
        self.root = Path(settings.chroma_path)
        self._server_client = None
        self._local_clients: dict[str, Any] = {}

    # --- description ---------------------------------------------------------
    def describe(self) -> str:
        if self.is_server:
            return f"Chroma server {self.settings.chroma_host}:{self.settings.chroma_port}, collection {self.base_name}"
        return f"local Chroma at {self.root}"

    # --- clients -----------------------------------------------------------------
    def _chroma_settings(self):
        import chromadb.config

        return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)

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

    def _local(self, version: str, create: bool = False):
        client = self._local_clients.get(version)
        if client is None:
            import chromadb

            path = self.root / "versions" / version
            if create:
                path.mkdir(parents=True, exist_ok=True)
            elif not path.is_dir():
                # Reading must not create an empty version where a deleted one was.
                raise StoreError(f"The knowledge store's version {version} is missing at {path}. "
                                 "Run `python -m ingest` to repair the store.")
            client = chromadb.PersistentClient(path=str(path), settings=self._chroma_settings())
            self._local_clients[version] = client
        return client

    def client_for(self, version: str, create: bool = False):
        return self._server() if self.is_server else self._local(version, create)

    def collection_name(self, version: str) -> str:
        # Embedded: one directory per version, so the name can stay fixed.
        return f"{self.base_name}__{version}" if self.is_server else self.base_name

    # --- pointer -----------------------------------------------------------------
    @property
    def _pointer_file(self) -> Path:
        return self.root / "CURRENT.json"

    @property
    def _pointer_collection(self) -> str:
        return f"{self.base_name}__pointer"

    def pointer_token(self) -> Any:
        """A cheap value that changes whenever the pointer may have changed."""
        if self.is_server:
            return self.read_manifest()
        try:
            st = self._pointer_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def describe_pointer(self) -> str:
        if self.is_server:
            return f"The knowledge store pointer (collection {self._pointer_collection})"
        return f"The knowledge store pointer {self._pointer_file}"

    def read_manifest(self) -> Manifest | None:
        """The pointer's manifest; None when there is no pointer. Raises PointerDamagedError
        when there is one that is not a manifest."""
        if self.is_server:
            try:
                col = self._server().get_collection(self._pointer_collection, embedding_function=None)
            except StoreError:
                raise
            except Exception:
                return None
            text = (col.metadata or {}).get("manifest")
            if not text:
                return None
        else:
            try:
                text = self._pointer_file.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            except (OSError, UnicodeDecodeError) as exc:
                raise PointerDamagedError(f"{self.describe_pointer()} cannot be read ({exc})") from None
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
        if self.is_server:
            client = self._server()
            col = client.get_or_create_collection(self._pointer_collection, embedding_function=None)
            col.modify(metadata={"manifest": manifest.to_json()})
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._pointer_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._pointer_file)

    # --- versions ------------------------------------------------------------------
    def create_version_collection(self, version: str):
        """An empty collection for a new version (cosine space, no Chroma embedding function)."""
        client = self.client_for(version, create=True)
        return client.create_collection(
            self.collection_name(version),
            embedding_function=None,  # we always pass vectors; never Chroma's ONNX default
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"version": version},
        )

    def open_collection(self, manifest: Manifest):
        try:
            return self.client_for(manifest.version).get_collection(
                manifest.collection, embedding_function=None
            )
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"The knowledge store's current version {manifest.version} cannot be opened "
                f"({exc}). Run `python -m ingest --rebuild`."
            ) from exc

    def vector_store(self, manifest: Manifest, embedder):
        """The current version as a langchain vector store (dense retrieval goes through it)."""
        from langchain_chroma import Chroma

        return Chroma(
            client=self.client_for(manifest.version),
            collection_name=manifest.collection,
            embedding_function=embedder,
            create_collection_if_not_exists=False,
        )

    # --- blobs: files published with a version (the judgement model, the lexicon) ----
    BLOB_CHUNK = 256 * 1024  # bytes per record on a server (documents are text: base64)

    def _blob_collection(self, version: str, create: bool = False):
        # Server: a collection beside the version's ("<name>_blobs__<version>" does not
        # start with "<name>__", so it is never mistaken for a version of its own).
        name = f"{self.base_name}_blobs__{version}"
        client = self._server()
        if create:
            return client.get_or_create_collection(name, embedding_function=None)
        return client.get_collection(name, embedding_function=None)

    def write_blob(self, version: str, name: str, data: bytes) -> None:
        """Store `data` under `name` in a version that is being written (before publish)."""
        if not self.is_server:
            path = self.root / "versions" / version / f"{name}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        import base64

        text = base64.b64encode(data).decode("ascii")
        parts = [text[i:i + self.BLOB_CHUNK] for i in range(0, len(text), self.BLOB_CHUNK)] or [""]
        col = self._blob_collection(version, create=True)
        col.add(ids=[f"{name}#{i:05d}" for i in range(len(parts))], documents=parts,
                embeddings=[[1.0]] * len(parts), metadatas=[{"blob": name}] * len(parts))

    def read_blob(self, manifest: Manifest, name: str) -> bytes | None:
        """A blob of the version `manifest` names, or None when that version has none."""
        if not self.is_server:
            path = self.root / "versions" / manifest.version / f"{name}.bin"
            return path.read_bytes() if path.is_file() else None
        import base64

        try:
            got = self._blob_collection(manifest.version).get(where={"blob": name}, include=["documents"])
        except Exception:
            return None
        if not got["ids"]:
            return None
        parts = [doc for _, doc in sorted(zip(got["ids"], got["documents"]))]
        return base64.b64decode("".join(parts))
    # --- complete versions (embedded layout) --------------------------------------------
    def _version_manifest_file(self, version: str) -> Path:
        return self.root / "versions" / version / "MANIFEST.json"

    def record_version(self, manifest: Manifest) -> None:
        """Mark a fully written version complete: its own copy of the manifest, beside its data."""
        if self.is_server:
            return
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
        if self.is_server:
            return True  # a missing collection is reported when it is opened
        return (self.root / "versions" / version).is_dir()

    def newest_complete_version(self, exclude: str | None = None) -> Manifest | None:
        """The newest version whose own manifest says it is complete (embedded layout only)."""
        if self.is_server:
            return None
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
        if self.is_server:
            prefix = f"{self.base_name}__"
            names = [c if isinstance(c, str) else c.name for c in self._server().list_collections()]
            return sorted(
                n[len(prefix):] for n in names
                if n.startswith(prefix) and n not in (self._pointer_collection, f"{self.base_name}__lock")
            )
        versions_dir = self.root / "versions"
        if not versions_dir.is_dir():
            return []
        return sorted(p.name for p in versions_dir.iterdir() if p.is_dir())

    def drop_version(self, version: str) -> None:
        if self.is_server:
            for name in (self.collection_name(version), f"{self.base_name}_blobs__{version}"):
                try:
                    self._server().delete_collection(name)
                except Exception:
                    pass
            return
        client = self._local_clients.pop(version, None)
        if client is not None:
            # Release this client's files before removal (only this client: other
            # versions open in the same process keep working).
            try:
                client.close()
            except Exception:
                pass
        shutil.rmtree(self.root / "versions" / version, ignore_errors=True)

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
        self._fh = None
        self._server_lock: str | None = None

    def __enter__(self) -> "IngestLock":
        deadline = time.monotonic() + self.WAIT_S
        if self._store.is_server:
            self._acquire_server(deadline)
            return self
        import fcntl

        self._store.root.mkdir(parents=True, exist_ok=True)
        self._fh = open(self._store.root / ".ingest.lock", "w")
        while True:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                self._wait(deadline)

    def _acquire_server(self, deadline: float) -> None:
        client = self._store._server()
        name = f"{self._store.base_name}__lock"
        while True:
            try:
                client.create_collection(name, embedding_function=None, metadata={"since": time.time()})
                self._server_lock = name
                return
            except Exception:
                try:
                    since = float((client.get_collection(name, embedding_function=None).metadata or {})
                                  .get("since", 0))
                except Exception:
                    continue  # released between the two calls: try again
                if time.time() - since > self.LOCK_STALE_S:
                    client.delete_collection(name)
                    continue
                self._wait(deadline)

    @staticmethod
    def _wait(deadline: float) -> None:
        if time.monotonic() > deadline:
            raise StoreError("Another ingest is still running on this store; try again when it ends.")
        time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._server_lock is not None:
            try:
                self._store._server().delete_collection(self._server_lock)
            except Exception:
                pass
