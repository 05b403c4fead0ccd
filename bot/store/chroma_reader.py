"""Reading a published version with Chroma's engine, without importing the chromadb package.

`import chromadb` costs about 0.6 s of CPU: the package imports every client, an
HTTP stack, telemetry and embedding functions, and checks ~160 method signatures
with `overrides`; then PersistentClient builds a System of components. That was
a quarter of the cold start of `python -m bot ask`. To read an embedded version
none of it is needed: PersistentClient hands every call to
`chromadb_rust_bindings`, the engine shipped in the same wheel, through a thin
shim (chromadb/api/rust.py). `VersionReader` calls the engine as that shim does
for the two reads retrieval makes, and returns what Collection.get and
Collection.query return for them (tests/test_chroma_reader.py compares the two).

Only published versions are read this way: they are complete and never written
again, so no writer's engine and this one ever share unwritten data. When the
engine is not the one this was written for (another chromadb release),
`open_version_reader` returns None and the store opens the collection through
chromadb as before.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# chromadb.config.DEFAULT_TENANT / DEFAULT_DATABASE, where PersistentClient keeps collections.
TENANT = "default_tenant"
DATABASE = "default_database"


class VersionReader:
    """One version's collection, read-only: `get` and `query` as on a chromadb Collection."""

    def __init__(self, path: Path, collection_name: str) -> None:
        import chromadb_rust_bindings as engine

        # chromadb.config.Settings' defaults, which PersistentClient passes on: migrations
        # "apply" (a no-op on a store written by this release) with md5 hashes.
        sqlite = engine.SqliteDBConfig(hash_type=engine.MigrationHash.MD5,
                                       migration_mode=engine.MigrationMode.Apply,
                                       url=str(path / "chroma.sqlite3"))
        # As RustBindingsAPI sizes it: each HNSW index keeps 5 files open.
        cache_size = resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 5
        self._engine = engine.Bindings(allow_reset=False, sqlite_db_config=sqlite, persist_path=str(path),
                                       hnsw_cache_size=cache_size)
        model = self._engine.get_collection(collection_name, TENANT, DATABASE)
        self.id = str(model.id)
        self.name = model.name
        self.metadata = model.metadata

    def get(self, include: list[str] | None = None) -> dict:
        """Every record: Collection.get(include=...) without filters."""
        include = list(include if include is not None else ["metadatas", "documents"])
        got = self._engine.get(self.id, None, None, None, 0, None, include, TENANT, DATABASE)
        return {
            "ids": got.ids,
            "embeddings": np.array(got.embeddings) if "embeddings" in include else got.embeddings,
            "documents": got.documents,
            "uris": got.uris if "uris" in include else None,
            "included": include,
            "data": None,
            "metadatas": got.metadatas,
        }

    def query(self, query_embeddings: list, n_results: int = 10, include: list[str] | None = None) -> dict:
        """The nearest records to each vector: Collection.query(query_embeddings=..., n_results=..., include=...)."""
        include = list(include if include is not None else ["metadatas", "documents", "distances"])
        if n_results <= 0:  # as chromadb's validate_n_results says it
            raise TypeError(f"Number of requested results {n_results}, cannot be negative, or zero.")
        # Collection.query sends float32 arrays to the engine.
        vectors = [np.asarray(vector, dtype=np.float32) for vector in query_embeddings]
        got = self._engine.query(self.id, None, vectors, n_results, None, None, include, TENANT, DATABASE)
        embeddings = got.embeddings
        if "embeddings" in include and embeddings is not None:
            embeddings = [np.array(e) for e in embeddings]
        return {
            "ids": got.ids,
            "embeddings": embeddings,
            "documents": got.documents,
            "uris": got.uris if "uris" in include else None,
            "included": include,
            "data": None,
            "metadatas": got.metadatas,
            "distances": got.distances,
        }

    def close(self) -> None:
        """Release the version's files (before the version is removed)."""
        self.__dict__.pop("_engine", None)


def open_version_reader(path: Path, collection_name: str) -> VersionReader | None:
    """A reader for the version at `path`, or None when this chromadb's engine cannot be
    driven this way (then use chromadb's client). A missing collection raises, as chromadb does."""
    try:
        import chromadb_rust_bindings as engine

        engine.Bindings, engine.SqliteDBConfig, engine.MigrationHash.MD5, engine.MigrationMode.Apply  # noqa: B018
    except (ImportError, AttributeError) as exc:
        log.debug("chroma engine not usable directly (%s): reading through chromadb", exc)
        return None
    try:
        return VersionReader(path, collection_name)
    except TypeError as exc:  # the engine's signatures changed
        log.debug("chroma engine not usable directly (%s): reading through chromadb", exc)
        return None
