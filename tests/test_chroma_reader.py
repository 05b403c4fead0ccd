"""Retrieval reads published versions with Chroma's engine directly (bot/store/chroma_reader.py):
the same records and neighbours as through chromadb's client, without importing chromadb."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from helpers_knowledge import ROOT, make_settings, tiny_knowledge

INCLUDES = (["documents", "metadatas"], ["metadatas"], ["documents"], ["embeddings"], [])


def _stores(settings):
    """(the version's chromadb collection, VersionReader on the same version)."""
    from bot.store import open_store
    from bot.store.chroma_reader import VersionReader

    through_chromadb, direct = open_store(settings), open_store(settings)
    manifest = through_chromadb.require_manifest()
    reader = direct.open_reader(manifest)
    assert isinstance(reader, VersionReader)
    return through_chromadb.open_collection(manifest), reader


def _plain(value):
    """Arrays as lists (with their type kept apart), so results compare with ==."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _same(a: dict, b: dict) -> bool:
    return _plain(a) == _plain(b)


def test_reader_gets_what_chromadb_gets():
    from bot.settings import get_settings

    collection, reader = _stores(get_settings())
    for include in INCLUDES:
        assert _same(collection.get(include=include), reader.get(include=include)), include
    assert reader.get(include=[])["ids"] and reader.name == collection.name


def test_reader_finds_the_neighbours_chromadb_finds(tmp_path):
    from ingest.service import IngestService

    # Few enough records that Chroma's HNSW search visits all of them: exact, so both
    # engines (each builds its own index from the stored records) must agree exactly.
    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    assert IngestService(settings).run().chunks == 8
    collection, reader = _stores(settings)
    vectors = collection.get(include=["embeddings"])["embeddings"]
    rng = np.random.default_rng(7)
    queries = [v + rng.normal(scale=0.05, size=v.shape) for v in vectors] + [rng.normal(size=vectors[0].shape)]
    for include in (["documents", "metadatas", "distances"], ["distances"], ["embeddings", "documents"]):
        for n in (1, 5, 8):
            for vector in queries:
                query = [(vector / np.linalg.norm(vector)).astype(np.float32).tolist()]
                want = collection.query(query_embeddings=query, n_results=n, include=include)
                assert _same(want, reader.query(query_embeddings=query, n_results=n, include=include))


def test_a_version_being_written_is_read_through_its_writer(tmp_path):
    from bot.store import open_store
    from ingest.service import IngestService

    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    IngestService(settings).run()
    store = open_store(settings)
    manifest = store.require_manifest()
    writer_collection = store.open_collection(manifest)  # this store has a chromadb client for it
    assert type(store.open_reader(manifest)) is type(writer_collection)


def test_ask_does_not_import_chromadb():
    """The cold start of `python -m bot ask` stays free of chromadb's import (about 0.6 s)."""
    probe = ("import json, sys\nfrom bot.__main__ import main\n"
             "code = main(['ask', '--json', '花呗逾期一个月会怎么催收'])\n"
             "print(json.dumps({'code': code, 'chromadb': 'chromadb' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "chromadb": False}


def _engine_like(real, **signatures):
    """A stand-in for chromadb_rust_bindings whose Bindings calls have the given text signatures
    (the real ones otherwise): what another chromadb release's engine would show."""
    import types

    calls = {name: getattr(real.Bindings, name).__text_signature__ for name in ("get_collection", "get", "query")}
    calls.update({name: sig for name, sig in signatures.items() if name != "__init__"})
    members = {name: types.SimpleNamespace(__text_signature__=sig) for name, sig in calls.items()}
    bindings = types.SimpleNamespace(**members, __text_signature__=signatures.get(
        "__init__", real.Bindings.__text_signature__))
    return types.SimpleNamespace(Bindings=bindings, SqliteDBConfig=real.SqliteDBConfig,
                                 MigrationHash=real.MigrationHash, MigrationMode=real.MigrationMode)


def test_an_engine_with_other_calls_is_read_through_chromadb(tmp_path, monkeypatch):
    import chromadb_rust_bindings as real

    from bot.store import open_store
    from bot.store.chroma_reader import VersionReader, engine_mismatch
    from ingest.service import IngestService

    assert engine_mismatch(real) is None
    renamed = _engine_like(real, query="($self, collection_id, ids, query_embeddings, k, where=..., "
                                       "where_document=None, include=..., tenant=..., database=...)")
    assert "n_results" in engine_mismatch(renamed)
    assert engine_mismatch(_engine_like(real, get=None)) is not None  # no signature to check
    assert engine_mismatch(_engine_like(real, __init__="(sqlite_db_config, persist_path=None)")) is not None

    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    IngestService(settings).run()
    manifest = open_store(settings).require_manifest()
    assert isinstance(open_store(settings).open_reader(manifest), VersionReader)
    monkeypatch.setitem(sys.modules, "chromadb_rust_bindings", renamed)
    fallback = open_store(settings).open_reader(manifest)
    assert not isinstance(fallback, VersionReader)
    assert fallback.get(include=[])["ids"]  # chromadb's own Collection, reading the same version


def test_a_damaged_version_is_one_line_not_a_traceback(tmp_path):
    """A version whose files are damaged where only reading its records shows it (Chroma opens
    the collection, then fails to read the record log): one line saying to rebuild."""
    import sqlite3
    from pathlib import Path

    from helpers_knowledge import ingest_env

    from ingest.service import IngestService

    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    version = IngestService(settings).run().version
    with sqlite3.connect(Path(settings.chroma_path) / "versions" / version / "chroma.sqlite3") as db:
        db.execute("DROP TABLE embeddings_queue")
    done = subprocess.run([sys.executable, "-m", "bot", "ask", "--json", "花呗逾期一个月会怎么催收"],
                          env=ingest_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"version {version} cannot be opened" in lines[0], lines
    assert "ingest --rebuild" in lines[0]
