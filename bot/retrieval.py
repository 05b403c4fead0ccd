"""Hybrid retrieval over the ingested store: dense (Chroma) + BM25, fused by RRF.

Both legs come from the same store version. The dense leg queries the version's
Chroma collection (an embedded store's published version through Chroma's engine
directly, bot/store/chroma_reader.py; langchain is kept for the language-model
chain, bot/llm/, and loads only when one is configured). Results are aggregated per
knowledge unit (an FAQ entry or an article section): a unit's rank in a leg is
the rank of its best chunk. When ingest publishes a new version, the next
search reopens the collection and rebuilds the keyword index.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.answerability import Answerability
from bot.judgement import Judge
from bot.lexicon import Lexicon
from bot.reply import Source, SourceRef, basis_text
from bot.calibration import BUNDLED_THRESHOLDS, Thresholds, check_prompts, thresholds_of
from bot.embeddings import Embedder, embedder_for
from bot.entry_classifier import NONE_ID, EntryClassifier
from bot.judgement.features import message_features
from bot.settings import Settings
from bot.store import KnowledgeStore, Manifest, check_embedding_model, open_store
from bot.textnorm import calendar_months, init_tokenizer, keyword_expansion, lexical_tokens, normalise_query

log = logging.getLogger(__name__)

RRF_K = 60
DENSE_CANDIDATES = 60  # chunks; several chunks belong to one FAQ entry
SECOND_CHUNK_WEIGHT = 0.3
EXACT_MATCH = BUNDLED_THRESHOLDS.exact  # the bundled model's; each store records its model's (thresholds_of)


@dataclass(frozen=True)
class Unit:
    """What the answer layer needs to know about one FAQ entry or article section."""

    id: str
    source_type: str
    title: str
    heading: str
    topic: str
    body: str  # FAQ answer; for an article section, its full text
    sources: tuple[str, ...]
    related: tuple[str, ...]
    questions: tuple[str, ...]
    tags: tuple[str, ...] = ()
    # The registry documents `sources` names (empty for a store built before the registry).
    source_refs: tuple[SourceRef, ...] = ()

    @property
    def display_title(self) -> str:
        return f"{self.title}·{self.heading}" if self.heading else self.title

    @property
    def basis(self) -> str:
        return basis_text(self.source_refs, self.sources)

    @property
    def hedged(self) -> bool:
        """Rests on at least one secondary source: the answer must be worded as reported."""
        return any(ref.secondary for ref in self.source_refs)

    def as_source(self, score: float) -> Source:
        return Source(self.id, self.display_title, score, self.basis, self.source_refs, self.hedged)


def _source_refs(meta: dict) -> tuple[SourceRef, ...]:
    try:
        raw = json.loads(meta.get("source_refs") or "[]")
    except ValueError:
        return ()
    return tuple(SourceRef.from_dict(r) for r in raw if isinstance(r, dict))


@dataclass
class Hit:
    unit: Unit
    score: float  # fused RRF score
    dense: float = 0.0  # best cosine similarity of any of its chunks
    lexical: float = 0.0  # best BM25 score of any of its chunks
    dense_rank: int | None = None
    lexical_rank: int | None = None
    best_chunk: str = ""  # the body of the chunk that matched best (article sections)
    # Best cosine similarity to one of the entry's own paraphrased questions (or its
    # title): a question asked the way the entry's questions are asked is the strongest
    # sign the entry answers it; similarity to the answer text alone is weaker.
    question_dense: float = 0.0


@dataclass
class RetrievalResult:
    query: str
    normalised: str
    hits: list[Hit] = field(default_factory=list)
    # The entry classifier's score for every entry (empty without one): how strongly the
    # question's own words name each entry, which answerability weighs (bot/answerability.py).
    entry_scores: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def best_dense(self) -> float:
        return max((h.dense for h in self.hits), default=0.0)

    def promote(self, hit: Hit) -> None:
        """Make `hit` the top result, keeping the order of the rest."""
        self.hits = [hit] + [h for h in self.hits if h is not hit]


LONG_QUERY_CHARS = 50
FOCUS_WEIGHT = 2.0  # in a long message, the question counts more than the story before it
_CLAUSE = re.compile(r"[。！？!?，,；;\s]+")
_QUESTION_MARK = re.compile(r"吗|么|怎么|怎样|什么|哪|该不该|能不能|可不可以|是不是|会不会|要不要|多久|多少|如何|\?|"
                            r"\b(how|what|who|where|can|is|should|will|do)\b")


def question_focus(normalised: str) -> list[str]:
    """For a long message, its last question clauses (with the clause before each)."""
    if len(normalised) < LONG_QUERY_CHARS:
        return []
    clauses = [c for c in _CLAUSE.split(normalised) if c]
    picked = [i for i, c in enumerate(clauses) if _QUESTION_MARK.search(c)][-2:]
    if not picked:
        return [" ".join(clauses[-2:])]
    return [" ".join(clauses[max(i - 1, 0):i + 1]) for i in picked]


class _Index:
    """One store version, loaded: its Chroma collection, the units and the BM25 index."""

    def __init__(self, manifest: Manifest, collection, records: dict, lexicon: Lexicon,
                 judge: Judge | None, answerability: Answerability | None = None,
                 entries: EntryClassifier | None = None) -> None:
        """`records`: collection.get(include=["documents", "metadatas"]) (KnowledgeStore.read_records)."""
        from rank_bm25 import BM25Okapi

        self.manifest = manifest
        self.lexicon = lexicon
        self.judge = judge
        self.answerability = answerability
        self.entries = entries
        self.collection = collection
        self.chunk_ids: list[str] = list(records["ids"])
        self.chunk_meta: list[dict] = list(records["metadatas"])
        self.chunk_index = {cid: i for i, cid in enumerate(self.chunk_ids)}
        docs: list[str] = list(records["documents"])

        questions: dict[str, list[str]] = {}
        bodies: dict[str, list[tuple[int, str]]] = {}
        first_meta: dict[str, dict] = {}
        for doc, meta in zip(docs, self.chunk_meta):
            uid = meta["unit_id"]
            first_meta.setdefault(uid, meta)
            if meta.get("field") == "question":
                questions.setdefault(uid, []).append((meta.get("position", 0), doc))
            elif meta.get("field") in ("answer", "section"):
                bodies.setdefault(uid, []).append((meta.get("position", 0), meta.get("body", "")))
                if meta.get("field") == "answer":
                    first_meta[uid] = meta
        self.units: dict[str, Unit] = {}
        for uid, meta in first_meta.items():
            parts = [text for _, text in sorted(bodies.get(uid, []))]
            self.units[uid] = Unit(
                id=uid,
                source_type=meta.get("source_type", ""),
                title=meta.get("title", ""),
                heading=meta.get("heading", ""),
                topic=meta.get("topic", ""),
                body="".join(parts) if meta.get("source_type") == "article" else (parts[0] if parts else ""),
                sources=tuple(s for s in meta.get("sources", "").split("\n") if s),
                related=tuple(r for r in meta.get("related", "").split(",") if r),
                questions=tuple(q for _, q in sorted(questions.get(uid, []))),
                tags=tuple(t for t in meta.get("tags", "").split(",") if t),
                source_refs=_source_refs(meta),
            )
        # The keyword leg indexes whole units (title, every paraphrased question,
        # answer): a user's words may be spread over several of them.
        unit_text: dict[str, list[str]] = {}
        for doc, meta in zip(docs, self.chunk_meta):
            unit_text.setdefault(meta["unit_id"], []).append(doc)
        self.bm25_units = list(unit_text)
        self.bm25 = BM25Okapi([list(lexical_tokens(calendar_months("\n".join(unit_text[u])))) or ["∅"]
                               for u in self.bm25_units])


class Retriever:
    """Finds the knowledge units that answer a question."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 store: KnowledgeStore | None = None, pinned: Manifest | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or embedder_for(settings)
        self.store = store or open_store(settings)
        self._index: _Index | None = None
        self._token = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        # A version being written by ingest (not yet published): read it, never the pointer.
        self._pinned = pinned

    # --- store version tracking --------------------------------------------------
    def _current_index(self) -> _Index:
        if self._pinned is not None:
            with self._lock:
                if self._index is None:
                    self._index = self._load_index(self._pinned)
            return self._index
        now = time.monotonic()
        throttle = self.settings.store_refresh_s if self.store.is_server else 0.0
        if self._index is not None and now - self._checked_at < throttle:
            return self._index
        with self._lock:
            self._checked_at = now
            token = self.store.pointer_token()
            if self._index is not None and token == self._token:
                return self._index
            manifest, damage = self.store.current_manifest()
            if damage:  # the pointer is damaged: answering from the newest complete version
                log.warning("%s", damage)
            if self._index is not None and manifest.version == self._index.manifest.version:
                self._token = token
                return self._index
            index = self._load_index(manifest)
            self._index, self._token = index, token
            return index

    def _load_index(self, manifest: Manifest) -> _Index:
        check_embedding_model(manifest, self.embedder.name, self.embedder.dimension)
        check_prompts(manifest, self.embedder)
        # A version ingest is still writing is read through the writer's own client.
        pinned = self._pinned is not None
        collection = self.store.open_collection(manifest) if pinned else self.store.open_reader(manifest)
        # Chroma's first read of a version rebuilds its vector index from the stored records,
        # ~0.2 s inside its engine, which releases the GIL: on another thread, beside the
        # tokenizer and the models loaded here.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-read") as pool:
            records = pool.submit(self.store.read_records, manifest, collection)
            init_tokenizer(self.settings.data_dir / "jieba")
            lexicon_text = self.store.read_blob(manifest, "lexicon")
            lexicon = Lexicon.from_yaml(lexicon_text.decode("utf-8")) if lexicon_text else self._folder_lexicon(manifest)
            judge_bytes = self.store.read_blob(manifest, "judgement")
            judge = Judge.from_bytes(judge_bytes, lexicon.overrides) if judge_bytes else None
            if judge is None:
                log.info("knowledge version=%s has no judgement model: only the lexicon's overrides "
                         "judge messages (add knowledge/judgement/ and re-run ingest)", manifest.version)
            answerability_bytes = self.store.read_blob(manifest, "answerability")
            answerability = Answerability.from_bytes(answerability_bytes) if answerability_bytes else None
            entries_bytes = self.store.read_blob(manifest, "entries")
            entries = EntryClassifier.from_bytes(entries_bytes) if entries_bytes else None
            index = _Index(manifest, collection, records.result(), lexicon, judge, answerability, entries)
        log.info("knowledge version=%s chunks=%d units=%d loaded", manifest.version,
                 len(index.chunk_ids), len(index.units))
        return index

    def _folder_lexicon(self, manifest: Manifest) -> Lexicon:
        """A version written before lexicons were published with it: the knowledge folder's
        lexicon, so its crisis and identity-theft overrides still apply until the next ingest."""
        path = Path(self.settings.knowledge_dir) / "lexicon.yaml"
        if not path.is_file():
            return Lexicon()
        log.warning("knowledge version=%s has no lexicon: using %s until `python -m ingest` publishes one",
                    manifest.version, path)
        return Lexicon.from_yaml(path.read_text(encoding="utf-8"))

    def load(self) -> Manifest:
        """Open the current store version now (fails early with a clear StoreError)."""
        return self._current_index().manifest

    @property
    def units(self) -> dict[str, Unit]:
        return self._current_index().units

    @property
    def lexicon(self) -> Lexicon:
        return self._current_index().lexicon

    @property
    def judge(self) -> Judge | None:
        return self._current_index().judge

    @property
    def answerability(self) -> Answerability | None:
        return self._current_index().answerability

    @property
    def thresholds(self) -> Thresholds:
        """Similarity thresholds for the store's embedding model (RELEVANCE_THRESHOLD overrides one)."""
        return thresholds_of(self._current_index().manifest, self.settings.relevance_threshold)

    # --- legs -----------------------------------------------------------------------
    def dense(self, index: _Index, normalised: str) -> list[tuple[str, float, str, float]]:
        """(unit id, cosine similarity, chunk body, best question similarity) per unit, best first."""
        vector = self.embedder.query_vector(normalised).tolist()
        got = index.collection.query(query_embeddings=[vector], n_results=min(DENSE_CANDIDATES, len(index.chunk_ids)),
                                     include=["documents", "metadatas", "distances"])
        per_unit: dict[str, list[tuple[float, str]]] = {}
        question_best: dict[str, float] = {}
        for doc, meta, distance in zip(got["documents"][0], got["metadatas"][0], got["distances"][0]):
            if doc is None:
                continue
            meta = meta or {}
            similarity = 1.0 - float(distance)  # cosine space: distance = 1 - cosine
            uid = meta["unit_id"]
            per_unit.setdefault(uid, []).append((similarity, meta.get("body") or doc))
            if meta.get("field") == "question":
                question_best[uid] = max(question_best.get(uid, 0.0), similarity)
        ranked = []
        for uid, matches in per_unit.items():
            matches.sort(key=lambda m: -m[0])
            # Ranked by the best chunk, with a bonus for a second matching chunk:
            # an entry that several paraphrases match is more likely the one meant.
            second = matches[1][0] if len(matches) > 1 else 0.0
            ranked.append((uid, matches[0][0], matches[0][1], matches[0][0] + SECOND_CHUNK_WEIGHT * second))
        ranked.sort(key=lambda x: -x[3])
        return [(uid, sim, body, question_best.get(uid, 0.0)) for uid, sim, body, _ in ranked]

    def lexical(self, index: _Index, normalised: str) -> list[tuple[str, float, str]]:
        tokens = list(lexical_tokens(normalised))
        for extra in keyword_expansion(normalised):
            tokens.extend(lexical_tokens(extra))
        if not tokens:
            return []
        scores = index.bm25.get_scores(tokens)
        order = np.argsort(-scores)
        return [(index.bm25_units[i], float(scores[i]), "") for i in order[:DENSE_CANDIDATES] if scores[i] > 0]

    # --- hybrid ----------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str = "hybrid",
               entries: EntryClassifier | None = None) -> RetrievalResult:
        """mode: hybrid | dense | lexical (the single legs are for evaluation). `entries`: an entry
        classifier instead of the store's (ingest fits answerability on out-of-fold classifiers)."""
        index = self._current_index()
        entries = entries or index.entries
        normalised = normalise_query(query)
        result = RetrievalResult(query=query, normalised=normalised)
        if not normalised.strip():
            return result
        # A long, rambling message is searched as a whole and by its question
        # sentences: the question is usually at the end, after the story.
        queries = [(normalised, 1.0)] + [(focus, FOCUS_WEIGHT) for focus in question_focus(normalised)]
        hits: dict[str, Hit] = {}
        for q, weight in queries:
            dense = self.dense(index, q) if mode in ("hybrid", "dense") else []
            lexical = self.lexical(index, q) if mode in ("hybrid", "lexical") else []
            for rank, (uid, score, body, question_score) in enumerate(dense, start=1):
                hit = hits.setdefault(uid, Hit(unit=index.units[uid], score=0.0, best_chunk=body))
                if score > hit.dense:
                    hit.dense, hit.best_chunk = score, body
                hit.question_dense = max(hit.question_dense, question_score)
                hit.dense_rank = min(rank, hit.dense_rank or rank)
                hit.score += weight / (RRF_K + rank)
            for rank, (uid, score, body) in enumerate(lexical, start=1):
                hit = hits.setdefault(uid, Hit(unit=index.units[uid], score=0.0, best_chunk=body))
                hit.lexical = max(hit.lexical, score)
                hit.lexical_rank = min(rank, hit.lexical_rank or rank)
                hit.score += weight / (RRF_K + rank)
        if entries is not None and mode == "hybrid" and hits:
            # A third leg, fused by rank like the others: the entry classifier, which tells close
            # entries apart by the words that distinguish them (bot/entry_classifier.py). It votes
            # only for entries it recognises (a positive score) and that the other legs found.
            scores = entries.scores(self.embedder.query_vector(normalised), message_features(normalised))
            result.entry_scores = scores
            recognised = sorted((uid for uid, v in scores.items() if v > 0 and uid != NONE_ID),
                                key=lambda uid: -scores[uid])
            for rank, uid in enumerate(recognised, start=1):
                if uid in hits:
                    hits[uid].score += 1.0 / (RRF_K + rank)
        # Ties (one leg says A then B, another B then A) are frequent; they go to the unit
        # the dense and keyword legs are more sure of, by score.
        top_lexical = max((h.lexical for h in hits.values()), default=0.0) or 1.0
        ranked = sorted(hits.values(), key=lambda h: (-round(h.score, 6), -(h.dense + h.lexical / top_lexical)))
        # An entry about one kind of lender (a bank's credit card) answers a different question
        # when the message names no such lender: "催收会找我家人吗" is not the credit-card rules.
        ranked = [h for h in ranked if index.lexicon.fits_lender(h.unit.id, normalised)]
        result.hits = ranked
        # Someone who asks (nearly) exactly one of an entry's own questions means that entry.
        closest = max(ranked, key=lambda h: h.dense, default=None)
        if closest is not None and closest.dense >= thresholds_of(index.manifest).exact:
            result.promote(closest)
        # Dense similarities of units the dense leg did not return are unknown
        # (0.0); that is fine: they only matter for the relevance threshold.
        result.hits = result.hits[:k]
        return result
