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
engine is not the one this was written for (another chromadb release: its calls
do not take the parameters named in ENGINE_CALLS), `open_version_reader` returns
None and the store opens the collection through chromadb as before. The engine is
called with keyword arguments, so a parameter renamed or moved fails loudly
instead of being passed another's value.
"""

from __future__ import annotations

import logging
import re
import resource
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# chromadb.config.DEFAULT_TENANT / DEFAULT_DATABASE, where PersistentClient keeps collections.
TENANT = "default_tenant"
DATABASE = "default_database"

# The engine's calls this module makes, with the parameters it passes (chromadb 1.x's
# chromadb/api/rust.py passes the same ones). An engine whose signatures lack any of
# them is not driven directly.
ENGINE_CALLS = {
    "__init__": ("allow_reset", "sqlite_db_config", "hnsw_cache_size", "persist_path"),
    "get_collection": ("name", "tenant", "database"),
    "get": ("collection_id", "ids", "where", "limit", "offset", "where_document", "include", "tenant", "database"),
    "query": ("collection_id", "ids", "query_embeddings", "n_results", "where", "where_document", "include",
              "tenant", "database"),
}


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
        model = self._engine.get_collection(name=collection_name, tenant=TENANT, database=DATABASE)
        self.id = str(model.id)
        self.name = model.name
        self.metadata = model.metadata

    def get(self, include: list[str] | None = None) -> dict:
        """Every record: Collection.get(include=...) without filters."""
        include = list(include if include is not None else ["metadatas", "documents"])
        got = self._engine.get(collection_id=self.id, ids=None, where=None, limit=None, offset=0,
                               where_document=None, include=include, tenant=TENANT, database=DATABASE)
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
        got = self._engine.query(collection_id=self.id, ids=None, query_embeddings=vectors, n_results=n_results,
                                 where=None, where_document=None, include=include, tenant=TENANT, database=DATABASE)
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


def engine_mismatch(engine) -> str | None:
    """What about this engine differs from the calls VersionReader makes; None when nothing does."""
    try:
        engine.SqliteDBConfig, engine.MigrationHash.MD5, engine.MigrationMode.Apply  # noqa: B018
        for call, wanted in ENGINE_CALLS.items():
            function = engine.Bindings if call == "__init__" else getattr(engine.Bindings, call)
            signature = function.__text_signature__ or ""
            names = set(re.findall(r"(\w+)\s*(?:=|,|\))", signature))
            missing = [name for name in wanted if name not in names]
            if missing:
                return f"Bindings.{call}{signature or '(no signature)'} lacks {', '.join(missing)}"
    except AttributeError as exc:
        return str(exc)
    return None


def open_version_reader(path: Path, collection_name: str) -> VersionReader | None:
    """A reader for the version at `path`, or None when this chromadb's engine cannot be
    driven this way (then use chromadb's client). A missing collection raises, as chromadb does."""
    try:
        import chromadb_rust_bindings as engine
    except ImportError as exc:
        log.debug("chroma engine not importable (%s): reading through chromadb", exc)
        return None
    problem = engine_mismatch(engine)
    if problem is not None:
        log.debug("chroma engine not usable directly (%s): reading through chromadb", problem)
        return None
    try:
        return VersionReader(path, collection_name)
    except (TypeError, AttributeError) as exc:  # what the engine takes or returns changed
        log.debug("chroma engine not usable directly (%s): reading through chromadb", exc)
        return None
