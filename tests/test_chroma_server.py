"""Ingest and retrieval against a real Chroma server (`chroma run`) on loopback.

The server is started by this module from the `chroma` executable installed
next to the running Python, so it runs wherever the test suite runs (CI too).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.embeddings import Embedder
from helpers_knowledge import KNOWLEDGE, make_settings, replace_once, tiny_knowledge

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _chroma_executable() -> str:
    candidate = Path(sys.executable).parent / "chroma"
    found = str(candidate) if candidate.exists() else shutil.which("chroma")
    assert found, f"the `chroma` executable is missing (looked in {candidate.parent} and PATH)"
    return found


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    import chromadb
    import chromadb.config

    root = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen([_chroma_executable(), "run", "--path", str(root / "data"), "--host", HOST,
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "server.log").read_text(errors="replace")
            try:
                client = chromadb.HttpClient(host=HOST, port=port,
                                             settings=chromadb.config.Settings(anonymized_telemetry=False))
                client.heartbeat()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError("the Chroma server did not answer within 60 s:\n"
                                         + (root / "server.log").read_text(errors="replace"))
                time.sleep(0.2)
        yield client, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _server_knowledge(dest: Path) -> Path:
    """The tiny FAQ plus the real cleaned article: ~40 chunks."""
    tiny_knowledge(dest)
    (dest / "article").mkdir()
    shutil.copy(KNOWLEDGE / "article" / "article.md", dest / "article" / "article.md")
    return dest


def _collections(client, base: str) -> set[str]:
    names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    return {n for n in names if n.startswith(base + "__")}


class _FailOnSecondBatch(Embedder):
    def __init__(self, real: Embedder) -> None:
        self.real, self.calls = real, 0
        self.name, self.dimension = real.name, real.dimension

    def encode(self, texts):
        self.calls += 1
        if self.calls >= 2:
            raise RuntimeError("embedding backend crashed")
        return self.real.encode(texts)


def test_ingest_and_retrieval_through_a_chroma_server(chroma_server, tmp_path, monkeypatch):
    from bot.embeddings import get_embedder
    from bot.retrieval import Retriever
    from bot.store import open_store
    from ingest import service as service_module
    from ingest.service import IngestService

    client, port = chroma_server
    base = "debt_help_test"
    knowledge = _server_knowledge(tmp_path / "knowledge")
    settings = make_settings(tmp_path, knowledge, chroma_host=HOST, chroma_port=port,
                             chroma_collection=base, store_refresh_s=0)
    service = IngestService(settings)

    first = service.run()
    assert first.added and first.embedded == first.chunks and first.chunks > 20
    v1 = first.version
    assert _collections(client, base) == {f"{base}__pointer", f"{base}__{v1}"}
    assert client.get_collection(f"{base}__{v1}").count() == first.chunks
    manifest = open_store(settings).require_manifest()
    assert (manifest.version, manifest.embedding_model, manifest.dimension) == (v1, "usem3", 512)
    assert not (tmp_path / "chroma").exists()  # nothing written locally in server mode

    retriever = Retriever(settings)
    assert retriever.search("催收骚扰我 怎么投诉").top.unit.id == "tiny-complain"
    assert retriever.search("还一点点会不会被催收得更猛").top.unit.heading == "还一点点会不会被催收得更猛"

    again = service.run()
    assert (again.added, again.updated, again.removed) == ([], [], [])
    assert again.changed is False and again.embedded == 0 and again.version == v1
    assert _collections(client, base) == {f"{base}__pointer", f"{base}__{v1}"}

    faq = knowledge / "faq" / "tiny.yaml"
    replace_once(faq, "就主动联系客服说明情况。", "就主动联系客服说明困难，申请分期。")
    second = service.run()
    assert second.updated == ["tiny-overdue"] and second.embedded == 1
    v2 = second.version
    assert v2 != v1 and open_store(settings).require_manifest().version == v2
    # The open retriever notices the new pointer on its next search.
    assert retriever.search("hb逾期了怎么办").top.unit.id == "tiny-overdue"
    assert "申请分期" in retriever.units["tiny-overdue"].body and retriever.load().version == v2
    assert _collections(client, base) == {f"{base}__pointer", f"{base}__{v1}", f"{base}__{v2}"}

    # A run that fails half-way leaves v2 serving and no collection behind.
    replace_once(faq, "申请分期。", "申请延期或分期。")
    monkeypatch.setattr(service_module, "EMBED_BATCH", 1)
    replace_once(faq, "    - 去哪里投诉催收\n", "    - 去哪里投诉催收\n    - 催收太凶了找谁投诉\n")
    with pytest.raises(RuntimeError, match="embedding backend crashed"):
        IngestService(settings, embedder=_FailOnSecondBatch(get_embedder("usem3"))).run()
    assert open_store(settings).require_manifest().version == v2
    assert _collections(client, base) == {f"{base}__pointer", f"{base}__{v1}", f"{base}__{v2}"}
    assert retriever.search("hb逾期了怎么办").top.unit.id == "tiny-overdue"
    monkeypatch.undo()

    third = service.run()
    assert third.updated == ["tiny-complain", "tiny-overdue"] and third.embedded == 2
    v3 = third.version
    # The oldest version's collection is garbage-collected; the previous one is kept.
    assert _collections(client, base) == {f"{base}__pointer", f"{base}__{v2}", f"{base}__{v3}"}
    assert "申请延期或分期" in retriever.units["tiny-overdue"].body
    assert retriever.search("催收太凶了找谁投诉").top.unit.id == "tiny-complain"



def test_two_ingests_on_one_server_take_turns(chroma_server, tmp_path):
    """While one ingest holds the server's lock a second one waits, and the lock is
    released afterwards (a lock left by a killed ingest would block for good otherwise)."""
    import threading

    from bot.store import IngestLock, StoreError, open_store
    from ingest.service import IngestService

    client, port = chroma_server
    base = "debt_help_lock"
    knowledge = _server_knowledge(tmp_path / "knowledge")
    settings = make_settings(tmp_path, knowledge, chroma_host=HOST, chroma_port=port, chroma_collection=base)
    store = open_store(settings)

    held = IngestLock(store)
    held.__enter__()
    assert f"{base}__lock" in _collections(client, base)
    waiting = IngestLock(store)
    waiting.WAIT_S = 0.5
    with pytest.raises(StoreError, match="Another ingest"):
        waiting.__enter__()

    release = threading.Timer(1.0, held.__exit__, args=(None, None, None))
    release.start()
    report = IngestService(settings).run()  # waits for the release, then ingests
    release.join()
    assert report.changed and report.version
    assert f"{base}__lock" not in _collections(client, base)
    assert f"{base}__{report.version}" in _collections(client, base)  # the lock was never taken for a version

    # A lock left behind by a killed ingest is taken over once it is stale.
    client.create_collection(f"{base}__lock", embedding_function=None, metadata={"since": 0.0})
    assert IngestService(settings).run(rebuild=True).changed
