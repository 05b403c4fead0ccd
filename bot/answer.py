"""Turn one message (plus what the dialogue knows) into one Reply of a kind.

Offline and grounded: an `answer` reply is composed only from the retrieved
knowledge entry's own text, with its source; nothing is paraphrased into new
facts. Safety comes first: crisis wording gets the crisis lines before anything
else, evasion requests get no tactics, out-of-scope and unclear messages get a
kind word and what the bot can do instead.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from bot import texts
from bot.calibration import BUNDLED_THRESHOLDS, Thresholds
from bot.reply import Reply, Source
from bot.retrieval import Hit, RetrievalResult, Retriever
from bot.safety import Assessment, assess, is_domain
from bot.settings import Settings
from bot.textnorm import STAGE_TAGS, clean_user_text, has_problem_word, normalise_query

log = logging.getLogger(__name__)

EVASION_ENTRY = "evasion-consequences"
CRISIS_TOPIC = "心理支持"
CRISIS_LINES = ("12356", "800-810-1117")
SUPPORT_QUERY = "逾期了很焦虑 压力很大 想找人聊聊"
DISCLAIMER_TOPICS = {"利息费用", "法律诉讼"}
PRODUCT_USAGE = re.compile(r"继续用|还能用|能不能(继续)?用(吗|了)?\s*$|能用吗|开通|额度|提额|提前还|还款日|账单日|"
                           r"怎么查|在哪查|查询征信|注销花呗|解冻|冻结")
# A match this close to an entry's own wording is trusted without further checks
# (the bundled model's number; each store records its model's: self.thresholds).
STRONG_MATCH = BUNDLED_THRESHOLDS.strong
# A second entry whose fused score is this close to the first gets a line of its own.
RUNNER_UP_SCORE_RATIO = 0.97


@dataclass
class Slots:
    """What the user told us that changes the guidance."""

    product: str | None = None  # 花呗 | 借呗 | 网商贷 | 信用卡 | 网贷
    overdue: str | None = None  # e.g. "一个月", "3天"
    abusive: bool = False
    # Which slot values an answer has already acknowledged, so "你提到…" is said once.
    acknowledged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"product": self.product, "overdue": self.overdue, "abusive": self.abusive,
                "acknowledged": list(self.acknowledged)}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Slots":
        data = data or {}
        return cls(product=data.get("product"), overdue=data.get("overdue"), abusive=bool(data.get("abusive")),
                   acknowledged=list(data.get("acknowledged") or []))


@dataclass
class Outcome:
    reply: Reply
    topic: str | None = None  # the unit id the reply was about, for follow-up questions
    retrieval: RetrievalResult | None = None
    assessment: Assessment = field(default_factory=Assessment)


class AnswerEngine:
    def __init__(self, settings: Settings, retriever: Retriever, generator=None) -> None:
        self.settings = settings
        self.retriever = retriever
        # Optional language model (bot/llm.py LLMGenerator); None = offline composer only.
        self.generator = generator

    @property
    def thresholds(self) -> Thresholds:
        """Similarity thresholds for the embedding model the store was built with (bot/calibration.py)."""
        return self.retriever.thresholds

    # --- decisions ------------------------------------------------------------------
    def is_confident(self, result: RetrievalResult) -> bool:
        """Is the best match good enough to answer from? (the "not in my knowledge" line)"""
        top = result.top
        if top is None:
            return False
        thresholds = self.thresholds
        threshold = thresholds.relevance
        if (not has_problem_word(result.normalised) or PRODUCT_USAGE.search(result.normalised)) \
                and top.dense < thresholds.strong:
            # About using a product rather than trouble with a debt ("花呗额度怎么提高",
            # "逾期了还能继续用吗"): the knowledge base does not cover it, however
            # similar it sounds, unless an entry asks nearly the same question.
            return False
        if top.dense >= threshold:
            return True
        # A weaker dense match is still trusted when the keyword leg agrees strongly
        # on the same entry (exact terms such as 95188 or 征信 matter).
        return top.dense >= threshold - 0.1 and (top.lexical_rank == 1 or is_domain(result.normalised))

    # --- replies --------------------------------------------------------------------
    def crisis(self, started: float) -> Outcome:
        sources = []
        for unit in self.retriever.units.values():
            if unit.topic == CRISIS_TOPIC and all(n in unit.body for n in CRISIS_LINES):
                sources.append(Source(unit.id, unit.display_title, 1.0, "；".join(unit.sources)))
                break
        reply = Reply(texts.CRISIS, "crisis", sources, list(texts.CRISIS_SUGGESTIONS), _ms(started))
        return Outcome(reply, assessment=Assessment(crisis=True))

    def clarify(self, text: str, started: float, options: list[str] | None = None,
                assessment: Assessment | None = None) -> Outcome:
        reply = Reply(text, "clarify", [], list(options or texts.CLARIFY_OPTIONS), _ms(started))
        return Outcome(reply, assessment=assessment or Assessment(vague=True))

    def decline(self, text: str, started: float, assessment: Assessment,
                result: RetrievalResult | None = None) -> Outcome:
        reply = Reply(text, "decline", [], list(texts.SCOPE_SUGGESTIONS), _ms(started))
        return Outcome(reply, retrieval=result, assessment=assessment)

    def respond(self, message: str, *, query: str | None = None, slots: Slots | None = None,
                started: float | None = None, in_context: bool = False, avoid: str | None = None,
                prefer_tag: str | None = None) -> Outcome:
        """Answer `message`. `query` (default: the message) is what retrieval searches,
        which lets the dialogue add the conversation's topic to an elliptical follow-up
        (`in_context`: a vague message is then answered, not questioned back). `avoid`:
        an entry to pass over when another one is also a good match (the one just shown).
        `prefer_tag`: among good matches of the same topic, the entry tagged so comes
        first (the knowledge base tags collection stages: 逾期初期, 逾期一个月, 长期逾期)."""
        started = started if started is not None else time.perf_counter()
        message = clean_user_text(message)
        if len(message) > self.settings.max_message_chars:
            return self.clarify(texts.CLARIFY_TOO_LONG.format(chars=len(message)), started)
        normalised = normalise_query(message)
        assessment = assess(normalised)
        if assessment.crisis:
            return self.crisis(started)
        if assessment.empty:
            return self.clarify(texts.CLARIFY_EMPTY, started, assessment=assessment)
        if assessment.out_of_scope:
            return self.decline(texts.DECLINE_OUT_OF_SCOPE, started, assessment)
        if assessment.vague and not in_context:
            text = texts.CLARIFY_GREETING if assessment.greeting else texts.CLARIFY_GENERAL
            return self.clarify(text, started, assessment=assessment)

        result = self.retriever.search(query or message, k=5)
        if assessment.evasion:
            return self._evasion(result, started, assessment)
        if assessment.distress:
            # Distress is always in scope and comes first: the support entry (with its
            # helplines); the practical match, if good, follows in one line.
            practical = next((h for h in result.hits if h.unit.topic != CRISIS_TOPIC and h.unit.source_type == "faq"
                              and h.dense >= self.thresholds.relevance), None)
            support = next((h for h in result.hits if h.unit.topic == CRISIS_TOPIC), None)
            if support is None:
                found = self.retriever.search(SUPPORT_QUERY, k=3)
                support = found.top if found.top is not None and found.top.unit.topic == CRISIS_TOPIC else None
            if support is not None:
                result.promote(support)
                return self._compose(result, slots or Slots(), started, assessment, runner_up=practical)
        if not self.is_confident(result):
            domain = is_domain(result.normalised)  # what retrieval searched, already normalised
            text = texts.DECLINE_NOT_IN_KNOWLEDGE if domain else texts.DECLINE_OUT_OF_SCOPE
            return self.decline(text, started, assessment, result)
        if prefer_tag and prefer_tag not in result.top.unit.tags:
            top = result.top
            tagged = next((h for h in result.hits[1:5] if prefer_tag in h.unit.tags
                           and h.unit.topic == top.unit.topic
                           and h.dense >= self.thresholds.relevance), None)
            if tagged is None and any(t in top.unit.tags for t in STAGE_TAGS):
                # The match is a stage entry, but for another stage than the one the
                # person is in: take that stage's entry, standing in at the same strength.
                unit = next((u for u in self.retriever.units.values()
                             if u.topic == top.unit.topic and prefer_tag in u.tags), None)
                tagged = Hit(unit=unit, score=top.score, dense=top.dense) if unit else None
            if tagged is not None:
                result.promote(tagged)
        if avoid and result.top.unit.id == avoid:
            # Move along the entry's own related links, to a good match only.
            related = set(result.top.unit.related)
            alternative = next((h for h in result.hits[1:4] if h.unit.id in related
                                and h.dense >= self.thresholds.relevance + 0.1), None)
            if alternative is not None:
                result.promote(alternative)
        return self._compose(result, slots or Slots(), started, assessment)

    def _evasion(self, result: RetrievalResult, started: float, assessment: Assessment) -> Outcome:
        unit = self.retriever.units.get(EVASION_ENTRY)
        if unit is None:  # the entry was removed from the knowledge base: still no tactics
            return self.decline(texts.EVASION_PREFACE.strip(), started, assessment, result)
        hit = Hit(unit=unit, score=1.0, dense=1.0)
        others = [h for h in result.hits if h.unit.id != unit.id]
        body = texts.EVASION_PREFACE + unit.body
        return self._reply_for(hit, body, others, started, assessment, result)

    def _compose(self, result: RetrievalResult, slots: Slots, started: float,
                 assessment: Assessment, runner_up: Hit | None = None) -> Outcome:
        top = result.top
        unit = top.unit
        if unit.source_type == "article":
            body = f"相关文章《{unit.title}》在“{unit.heading}”部分提到：\n{top.best_chunk or unit.body}"
        else:
            body = unit.body
        prefix, key = slot_prefix(slots, unit.topic)
        if prefix and key not in slots.acknowledged:
            slots.acknowledged.append(key)
            body = f"{prefix}\n\n{body}"
        runner_up = runner_up or self._close_runner_up(result)
        if runner_up is not None:
            # Two entries fit about equally well: answer from the first and say in one
            # line what the second adds, so a near miss still reaches the person.
            body = f"{body}\n\n" + texts.ALSO_RELEVANT.format(title=runner_up.unit.title,
                                                               first_line=first_line(runner_up.unit.body))
        if unit.topic in DISCLAIMER_TOPICS and "不构成法律意见" not in body:
            body = f"{body}\n\n{texts.ANSWER_DISCLAIMER}"
        others = [h for h in result.hits[1:] if h is not runner_up]
        return self._reply_for(top, body, others, started, assessment, result,
                               also=[runner_up] if runner_up else [])

    def _close_runner_up(self, result: RetrievalResult) -> Hit | None:
        """The second FAQ entry when it is about as good a match as the first, and both
        retrieval legs put it near the top (one leg alone is not enough to add a topic)."""
        if len(result.hits) < 2 or result.top.unit.source_type != "faq":
            return None
        top, second = result.hits[0], result.hits[1]
        both_legs_agree = (second.dense_rank or 99) <= 2 and (second.lexical_rank or 99) <= 2
        if (second.unit.source_type == "faq" and second.unit.topic != CRISIS_TOPIC and both_legs_agree
                and second.score >= RUNNER_UP_SCORE_RATIO * top.score
                and second.dense >= max(self.thresholds.relevance + 0.15, top.dense - 0.05)):
            return second
        return None

    def _reply_for(self, hit: Hit, body: str, others: list[Hit], started: float,
                   assessment: Assessment, result: RetrievalResult, also: list[Hit] = ()) -> Outcome:
        sources = [Source(h.unit.id, h.unit.display_title, round(h.dense, 4), "；".join(h.unit.sources))
                   for h in [hit, *also]]
        reply = Reply(body.strip(), "answer", sources, self.suggestions(hit, others), _ms(started))
        return Outcome(reply, topic=hit.unit.id, retrieval=result, assessment=assessment)

    def elaborate(self, outcome: Outcome, message: str, *, slots: Slots | None = None,
                  previous_topic: str | None = None, on_partial=None) -> Outcome:
        """With a language model configured, a composed answer is rewritten by it, grounded
        and checked, with `outcome` as the fallback (bot/llm.py). Crisis, decline, clarify
        and evasion replies are returned as they are: they never reach the model."""
        if self.generator is None or outcome.reply.kind != "answer" or outcome.assessment.evasion:
            return outcome
        unit = self.retriever.units.get(previous_topic) if previous_topic else None
        return self.generator.generate(clean_user_text(message), outcome, slots=slots,
                                       topic_title=unit.title if unit else None, on_partial=on_partial)

    def suggestions(self, hit: Hit, others: list[Hit], limit: int = 3) -> list[str]:
        """Follow-ups: the entry's own related entries first, then other close matches."""
        units = self.retriever.units
        picked: list[str] = []
        seen = {hit.unit.id}
        candidates = [units[r] for r in hit.unit.related if r in units]
        candidates += [h.unit for h in others]
        for unit in candidates:
            if unit.id in seen or unit.source_type != "faq":
                continue
            seen.add(unit.id)
            picked.append(unit.title)
            if len(picked) == limit:
                break
        return picked


def slot_prefix(slots: Slots, topic: str) -> tuple[str, str]:
    """One sentence that shows the answer took the user's situation into account,
    and the key under which it counts as said."""
    if slots.abusive and topic in ("催收边界", "投诉维权"):
        return texts.SLOT_PREFIX_ABUSIVE, "abusive"
    if slots.overdue and topic in ("催收流程", "征信影响", "利息费用", "还款协商"):
        text = texts.SLOT_PREFIX_OVERDUE.format(product=slots.product or "", duration=slots.overdue)
        return text, f"overdue:{slots.product}:{slots.overdue}"
    return "", ""


def first_line(text: str) -> str:
    """An entry's direct first sentence (its answers are written to start with one)."""
    return text.strip().split("\n", 1)[0].strip()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
