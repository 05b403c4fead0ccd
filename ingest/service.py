"""The one ingest service behind `python -m ingest` and anything else that ingests.

A run: load and validate knowledge/ -> chunk -> compare with the current version
-> (unless nothing changed) write a complete new version, embedding only chunks
whose text is new and copying the vectors of unchanged ones -> flip the pointer.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from bot.calibration import check_prompts, manifest_extra
from bot.embeddings import Embedder, embedder_for
from bot.lexicon import Lexicon
from bot.settings import Settings
from bot.store import (IngestLock, KnowledgeStore, Manifest, StoreMissingError, check_embedding_model,
                       new_version_id, open_store)
from ingest.chunking import Chunk, chunk_units
from ingest.answerability_build import ANSWERABILITY_FORMAT, tuning_questions
from ingest.entry_classifier_build import ENTRY_CLASSIFIER_FORMAT
from ingest.judgement_build import JUDGEMENT_FORMAT, MODEL_KIND, build_judge
from ingest.judgement_data import LabelledMessage, content_hash, load_labelled_messages
from ingest.knowledge import load_knowledge
from ingest.lexicon_check import load_lexicon
from ingest.problems import KnowledgeError

log = logging.getLogger(__name__)

EMBED_BATCH = 64
WRITE_BATCH = 256


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    version: str | None = None
    previous_version: str | None = None
    dry_run: bool = False
    rebuild: bool = False
    changed: bool = False
    duration_s: float = 0.0
    store: str = ""
    embedding_model: str = ""
    judgement: str = "none"  # rebuilt | reused | none (no knowledge/judgement folder)
    judgement_messages: int = 0
    # What was wrong with the store's pointer (not valid, or naming a version that is gone);
    # the run points it at a complete version again (unless a dry run).
    pointer_problem: str | None = None

    def as_json(self) -> dict:
        data = asdict(self)
        for key in ("added", "updated", "removed"):
            data[f"{key}_ids"] = data[key]
            data[key] = len(data[key])
        return data

    def summary(self) -> str:
        verb = "would change" if self.dry_run else "changed"
        if not self.changed:
            head = f"Knowledge is up to date ({self.unchanged} unchanged, {self.chunks} chunks); nothing written."
        else:
            head = (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                    f"{self.unchanged} unchanged; {self.chunks} chunks ({self.embedded} embedded, "
                    f"{self.reused} reused)")
            head += " - dry run, nothing written." if self.dry_run else f"; now serving version {self.version}."
        lines = [head]
        if self.pointer_problem:
            lines.insert(0, f"{self.pointer_problem}. " + (
                "It would be repaired." if self.dry_run else f"Repaired: the pointer names version {self.version}."))
        for key in ("added", "updated", "removed"):
            ids = getattr(self, key)
            if ids:
                lines.append(f"  {key} ({verb}): " + ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else ""))
        return "\n".join(lines)


ProgressFactory = Callable[[int], object]


def _no_progress(total: int):
    class _Null:
        def update(self, n: int) -> None: ...
        def close(self) -> None: ...
    return _Null()


class IngestService:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 store: KnowledgeStore | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.store = store or open_store(settings)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        return self._embedder

    def run(self, *, knowledge_dir: Path | None = None, dry_run: bool = False, rebuild: bool = False,
            progress: ProgressFactory = _no_progress) -> IngestReport:
        started = time.perf_counter()
        folder = Path(knowledge_dir or self.settings.knowledge_dir)
        knowledge = load_knowledge(folder)  # raises KnowledgeError
        messages, lexicon = self._load_judgement_data(folder, knowledge)
        lexicon_text = lexicon.text if lexicon else ""
        chunks = chunk_units(knowledge.units)
        units = {u.id: u.content_hash for u in knowledge.units}
        report = IngestReport(dry_run=dry_run, rebuild=rebuild, chunks=len(chunks), store=self.store.describe(),
                              embedding_model=self.settings.embedding_model, judgement_messages=len(messages))
        # Ordinary questions (tuning part of knowledge/eval/) keep the crisis risk from alarming askers.
        # Questions the crisis lines answer are not false alarms: they are left out.
        crisis_entry = lexicon.route("crisis") if lexicon else None
        tuning = tuning_questions(folder)
        questions = [q for q, ids in tuning if ids and crisis_entry not in ids]
        labelled = [f"{q}\t{','.join(ids)}" for q, ids in tuning]
        judgement_hash = self._judgement_hash(messages, lexicon_text, labelled)

        with IngestLock(self.store):
            current, report.pointer_problem = self._current()
            old_chunks: dict[str, dict] = {}
            old_units: dict[str, str] = {}
            old_collection = None
            if current is not None and not rebuild:
                # Fail before any work when the store was built with another model.
                check_embedding_model(current, self.embedder.name, self.embedder.dimension)
                check_prompts(current, self.embedder)
                old_collection = self.store.open_collection(current)
                got = old_collection.get(include=["metadatas"])
                for cid, meta in zip(got["ids"], got["metadatas"]):
                    old_chunks[cid] = meta
                    old_units[meta["unit_id"]] = meta["unit_hash"]
            report.previous_version = current.version if current else None

            report.added = sorted(u for u in units if u not in old_units)
            report.removed = sorted(u for u in old_units if u not in units)
            report.updated = sorted(u for u in units if u in old_units and old_units[u] != units[u])
            report.unchanged = sum(1 for u in units if old_units.get(u) == units[u])
            chunk_ids_same = set(old_chunks) == {c.id for c in chunks}
            judgement_same = current is not None and current.extra.get("judgement_hash") == judgement_hash
            report.changed = bool(rebuild or current is None or report.added or report.removed
                                  or report.updated or not chunk_ids_same or not judgement_same)
            report.judgement = "none" if not messages else ("reused" if judgement_same and not rebuild else "rebuilt")
            # (On --rebuild nothing was read from the old version, so nothing is reused.)
            report.reused = sum(1 for c in chunks if c.id in old_chunks)
            report.embedded = len(chunks) - report.reused
            if dry_run or not report.changed:
                report.version = current.version if current else None
                if current is not None and not dry_run:
                    # Nothing to write, but the pointer may need repair (or, for a store
                    # made before versions kept their own manifest, the current one its copy).
                    if report.pointer_problem:
                        self.store.publish(current)
                    else:
                        self.store.record_version(current)
                report.duration_s = round(time.perf_counter() - started, 3)
                return report

            version = new_version_id()
            try:
                collection = self.store.create_version_collection(version, len(chunks))
                self._write_version(collection, chunks, old_collection, set(old_chunks), progress)
                self._write_judgement(version, current, messages, lexicon, report.judgement, questions)
                manifest = Manifest(
                    version=version,
                    collection=self.store.collection_name(version),
                    embedding_model=self.embedder.name,
                    dimension=self.embedder.dimension,
                    chunks=len(chunks),
                    units=len(units),
                    created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    # Prompts, and similarity thresholds calibrated for this model (bot/calibration.py);
                    # and what the judgement model was built from.
                    extra={**manifest_extra(self.embedder, collection), "judgement_hash": judgement_hash,
                           "judgement_messages": len(messages),
                           "judgement_model": MODEL_KIND if messages else None},
                )
                entry_vectors: dict = {}  # the same texts' vectors for every entry-classifier fit
                self._write_entry_classifier(manifest, knowledge.units, tuning, entry_vectors)
                self._write_answerability(manifest, knowledge.units, tuning, entry_vectors)
                self.store.publish(manifest)
            except BaseException:
                # Never leave a half-written version behind; the pointer was not moved.
                self.store.drop_version(version)
                raise
            self.store.collect_garbage(version, previous=report.previous_version)
            report.version = version
        report.duration_s = round(time.perf_counter() - started, 3)
        return report

    # --- judgement: the labelled messages and the lexicon, published with the version ---
    @staticmethod
    def _load_judgement_data(folder: Path, knowledge) -> tuple[list[LabelledMessage], Lexicon | None]:
        """The labelled messages (knowledge/judgement/) and the lexicon; both optional,
        both validated with file and line."""
        problems = []
        messages: list[LabelledMessage] = []
        if (folder / "judgement").is_dir():
            messages, problems = load_labelled_messages(folder / "judgement", display=_display)
        lexicon = None
        lexicon_path = folder / "lexicon.yaml"
        if lexicon_path.is_file():
            ids = {u.id for u in knowledge.units}
            topics = {u.topic for u in knowledge.units if u.topic}
            lexicon, found = load_lexicon(lexicon_path, _display(lexicon_path), ids, topics)
            problems += found
        if problems:
            raise KnowledgeError(problems)
        return messages, lexicon

    def _judgement_hash(self, messages: list[LabelledMessage], lexicon_text: str, questions: list[str]) -> str:
        # Also the answerability and entry-classifier formats and the labelled tuning questions
        # (with their entries): the models fitted from them change with them, so a new version
        # is written even when no entry changed.
        payload = "\n".join([JUDGEMENT_FORMAT, ANSWERABILITY_FORMAT, ENTRY_CLASSIFIER_FORMAT, MODEL_KIND, self.settings.embedding_model,
                             content_hash(messages) if messages else "-", lexicon_text, *sorted(questions)])
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]

    def _write_judgement(self, version: str, current: Manifest | None, messages: list[LabelledMessage],
                         lexicon: Lexicon | None, state: str, questions: list[str]) -> None:
        if lexicon is not None and lexicon.text:
            self.store.write_blob(version, "lexicon", lexicon.text.encode("utf-8"))
        if not messages:
            return
        model = self.store.read_blob(current, "judgement") if current is not None and state == "reused" else None
        if model is None:
            overrides = lexicon.overrides if lexicon is not None and lexicon.text else None
            model = build_judge(messages, self.embedder, overrides, questions=questions).to_bytes()
        self.store.write_blob(version, "judgement", model)

    def _current(self) -> tuple[Manifest | None, str | None]:
        """The version to compare with (None for a first ingest), and what is wrong with the
        pointer when it is damaged (the version is then the newest complete one, if any)."""
        try:
            return self.store.resolve_pointer()
        except StoreMissingError:
            return None, None

    def _write_entry_classifier(self, manifest: Manifest, units, tuning: list[tuple[str, list[str]]],
                                vectors_of: dict) -> None:
        """Fit which-entry-is-meant on this version's entries (a third retrieval leg; the
        answerability model is fitted after, on retrieval that uses it)."""
        from ingest.entry_classifier_build import fit_entry_classifier, training_examples

        texts, labels = training_examples(units, tuning)
        model = fit_entry_classifier(texts, labels, self.embedder, vectors_of)
        if model is not None:
            self.store.write_blob(manifest.version, "entries", model.to_bytes())

    def _write_answerability(self, manifest: Manifest, units, tuning: list[tuple[str, list[str]]],
                             vectors_of: dict) -> None:
        """Fit the answer / clarify / decline decision on the version just written (before publishing it),
        each question searched with an entry classifier that did not learn it."""
        from bot.answer import AnswerEngine
        from bot.retrieval import Retriever
        from ingest.answerability_build import build_answerability
        from ingest.entry_classifier_build import fit_entry_classifier, training_examples

        if not tuning:
            return
        retriever = Retriever(self.settings, embedder=self.embedder, store=self.store, pinned=manifest)
        model = build_answerability(retriever, tuning,
                                    lambda questions: fit_entry_classifier(*training_examples(units, questions),
                                                                           self.embedder, vectors_of),
                                    AnswerEngine(self.settings, retriever).fixed_rule_answers)
        if model is not None:
            self.store.write_blob(manifest.version, "answerability", model.to_bytes())

    def _write_version(self, collection, chunks: list[Chunk], old_collection, old_ids: set[str],
                       progress: ProgressFactory) -> None:
        reuse = [c for c in chunks if c.id in old_ids]
        fresh = [c for c in chunks if c.id not in old_ids]
        bar = progress(len(chunks))
        try:
            for start in range(0, len(reuse), WRITE_BATCH):
                batch = reuse[start:start + WRITE_BATCH]
                got = old_collection.get(ids=[c.id for c in batch], include=["embeddings"])
                vectors = dict(zip(got["ids"], got["embeddings"]))
                collection.add(ids=[c.id for c in batch], embeddings=[vectors[c.id] for c in batch],
                               documents=[c.text for c in batch], metadatas=[c.metadata for c in batch])
                bar.update(len(batch))
            for start in range(0, len(fresh), EMBED_BATCH):
                batch = fresh[start:start + EMBED_BATCH]
                vectors = self.embedder.encode([c.text for c in batch])
                collection.add(ids=[c.id for c in batch], embeddings=vectors,
                               documents=[c.text for c in batch], metadatas=[c.metadata for c in batch])
                bar.update(len(batch))
        finally:
            bar.close()


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def terminal_progress(total: int):
    """A tqdm bar on a terminal; silent when stderr is not one (CI, pipes)."""
    if not sys.stderr.isatty():
        return _no_progress(total)
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", leave=False)
