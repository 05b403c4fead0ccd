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
from dataclasses import dataclass, field, replace

from bot import texts
from bot.answer_text import closing_note, first_line, follow_up_titles, hotline_line
from bot.answerability import Decision
from bot.calibration import BUNDLED_THRESHOLDS, Thresholds
from bot.reply import Reply, Source
from bot.retrieval import Hit, RetrievalResult, Retriever, Unit
from bot.safety import THANKS, WHO_ARE_YOU, Assessment, assess
from bot.settings import Settings
from bot.slots import Slots, slot_prefix
from bot.textnorm import STAGE_TAGS, clean_user_text, has_domain_word, has_problem_word, mostly_english, normalise_query

log = logging.getLogger(__name__)

PRODUCT_USAGE = re.compile(r"继续用|还能用|能不能(继续)?用(吗|了)?\s*$|能用吗|开通|额度|提额|提前还|还款日|账单日|"
                           r"怎么查|在哪查|查询征信|注销花呗|解冻|冻结")
# Entries for the product questions borrowers in trouble ask ("还清后还能用吗", "额度会恢复吗") carry
# this tag: they answer such a question below STRONG_MATCH too when the message is about repaying or
# a debt, which "花呗额度怎么提高" and "怎么开通花呗" are not (those stay declined: nothing covers them).
USAGE_ENTRY_TAG = "使用问题"
REPAYMENT_CONTEXT = re.compile(r"还清|还完|还了|还上|结清|还款|扣款|扣了|扣走|被扣|降|关了|被关|关闭|限制|恢复|最低还|"
                               r"截止|几点|小时|显示|征信|芝麻|信用报告")
# Trusted without further checks (the bundled model's number; each store records its own: self.thresholds).
STRONG_MATCH = BUNDLED_THRESHOLDS.strong
# A second entry whose fused score is this close to the first gets a line of its own.
RUNNER_UP_SCORE_RATIO = 0.97


@dataclass
class Outcome:
    reply: Reply
    entry: str | None = None  # id of the knowledge entry the reply was about, for follow-up questions
    retrieval: RetrievalResult | None = None
    assessment: Assessment = field(default_factory=Assessment)
    routed: bool = False  # a fixed preface and a routed entry: never rewritten by a language model
    unsure: bool = False  # declined or asked which of two: no entry surely answers it (it is not out of scope)


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
    def decide(self, result: RetrievalResult, label: str = "domain") -> Decision:
        """Answer from the best match, offer a choice between the two best, or decline: with
        ANSWERABILITY=model by the store's answerability model (which may veto the fixed rule's
        answer); else by the fixed rule, overruled only where that model is nearly sure the rule
        is wrong. One of an entry's own questions, asked (nearly) as is, is answered."""
        fitted, rule_answers = self.retriever.answerability, self.fixed_rule_answers(result)
        if fitted is None or (rule_answers and result.top.dense >= self.thresholds.exact):
            return Decision("answer" if rule_answers else "decline")
        if self.answerability_model is None or mostly_english(result.normalised):  # the model saw few in English
            return Decision("answer" if rule_answers != fitted.overrules(result, label, rule_answers) else "decline")
        return fitted.decide(result, label, rule_answers)

    @property
    def answerability_model(self):
        """The store's answerability model when ANSWERABILITY=model (None: the rule decides)."""
        return self.retriever.answerability if self.settings.answerability == "model" else None

    def is_confident(self, result: RetrievalResult, label: str = "domain") -> bool:
        decision = self.decide(result, label)  # an answer from the first match (not from the second of two)
        return decision.action == "answer" and (not decision.options or decision.options[0] is result.top)

    def fixed_rule_answers(self, result: RetrievalResult) -> bool:
        """The fixed rule: is the first match similar enough to answer from (the "not in my knowledge" line)?"""
        top, thresholds = result.top, self.thresholds
        if top is None:
            return False
        if (not has_problem_word(result.normalised) or PRODUCT_USAGE.search(result.normalised)) \
                and top.dense < thresholds.strong and not self._usage_entry_fits(result):
            # About using a product rather than trouble with a debt ("花呗额度怎么提高"): not covered,
            # however similar it sounds, unless an entry asks nearly the same question.
            return False
        # A weaker dense match is still trusted when the keyword leg agrees strongly
        # on the same entry (exact terms such as 95188 or 征信 matter).
        return top.dense >= thresholds.relevance or (top.dense >= thresholds.relevance - 0.1 and (
            top.lexical_rank == 1 or has_domain_word(result.normalised)))

    @staticmethod
    def _usage_entry_fits(result: RetrievalResult) -> bool:
        """The top entry was written for this kind of product question, and the message is
        about repaying or a debt: answer it (the entry says what is known and where to ask)."""
        normalised = result.normalised
        return (USAGE_ENTRY_TAG in result.top.unit.tags
                and (has_problem_word(normalised) or bool(REPAYMENT_CONTEXT.search(normalised))))

    # --- replies --------------------------------------------------------------------
    @property
    def lexicon(self):
        return self.retriever.lexicon

    def routed(self, name: str) -> Unit | None:
        """The knowledge entry the lexicon routes `name` to (None if the store lacks it)."""
        entry = self.lexicon.route(name)
        return self.retriever.units.get(entry) if entry else None

    def assess(self, normalised: str) -> Assessment:
        return assess(normalised, self.retriever.judge, self.retriever.embedder.query_vector,
                      self.lexicon.overrides)

    def crisis(self, started: float, assessment: Assessment | None = None) -> Outcome:
        """Crisis lines first, and nothing else to act on. A crisis only the cost offsets would have
        made is never labelled one (bot/judgement/judge.py): the crisis risk puts the lines before
        the message's own answer instead."""
        assessment = assessment or Assessment(label="crisis")
        unit = self.routed("crisis")
        sources = [_source(unit, 1.0)] if unit else []
        reply = Reply(texts.CRISIS, "crisis", sources, list(texts.CRISIS_SUGGESTIONS), _ms(started))
        return Outcome(reply, assessment=assessment)

    def clarify(self, text: str, started: float, options: list[str] | None = None,
                assessment: Assessment | None = None, unsure: bool = False) -> Outcome:
        reply = Reply(text, "clarify", [], list(options or texts.CLARIFY_OPTIONS), _ms(started))
        return Outcome(reply, assessment=assessment or Assessment(label="vague"), unsure=unsure)

    def decline(self, text: str, started: float, assessment: Assessment,
                result: RetrievalResult | None = None, unsure: bool = False) -> Outcome:
        reply = Reply(text, "decline", [], list(texts.SCOPE_SUGGESTIONS), _ms(started))
        return Outcome(reply, retrieval=result, assessment=assessment, unsure=unsure)

    def respond(self, message: str, *, query: str | None = None, slots: Slots | None = None,
                started: float | None = None, in_context: bool = False, avoid: str | None = None,
                prefer_tag: str | None = None, stage_asked: bool = False, follow_up: bool = False) -> Outcome:
        """Answer `message`. `query` (default: the message) is what retrieval searches, which lets the
        dialogue add the conversation's topic to an elliptical follow-up (`in_context`: a vague message
        is then answered, not questioned back). `avoid`: an entry to pass over when another one is also
        a good match (the one just shown). `prefer_tag`: among good matches of the same topic, the entry
        tagged so comes first (the knowledge base tags stages: 逾期初期, 逾期一个月, 长期逾期). `stage_asked`:
        the message is only the situation or asks what the stage brings ("花呗逾期十天了"): the stage entry
        comes first even when another topic matched better. `follow_up`: a short question inside a
        conversation ("那芝麻分呢"); like an `in_context` one, the fixed rule decides whether to answer
        it, as the answerability model was fitted on questions asked on their own."""
        started = started if started is not None else time.perf_counter()
        message = clean_user_text(message)
        if len(message) > self.settings.max_message_chars:
            return self.clarify(texts.CLARIFY_TOO_LONG.format(chars=len(message)), started)
        normalised = normalise_query(message)
        assessment = self.assess(normalised)
        outcome = self._respond(message, normalised, assessment, query, slots, started, in_context, avoid,
                                prefer_tag, stage_asked, follow_up)
        if outcome.assessment.crisis_risk and outcome.reply.kind != "crisis" and not self._asked_as_written(outcome):
            # Maybe a crisis, said indirectly: the crisis lines first, in one line, then the reply as it would be.
            outcome.reply.text = texts.CRISIS_RISK_LINE + outcome.reply.text
            unit = self.routed("crisis")
            if unit is not None and all(s.id != unit.id for s in outcome.reply.sources):
                outcome.reply.sources.append(_source(unit, 0.0))
        if outcome.assessment.both_readings and outcome.reply.kind == "answer":
            # A victim or a relative in an evader's words: the help, then one line for the other reading.
            outcome.reply.text = outcome.reply.text.rstrip() + "\n\n" + texts.NO_EVASION_HELP_LINE
        return outcome

    def _asked_as_written(self, outcome: Outcome) -> bool:
        """The message is asked nearly in an entry's own words: a question, not a hint of danger."""
        top = outcome.retrieval.top if outcome.retrieval is not None else None
        return top is not None and top.question_dense >= self.thresholds.strong

    def _respond(self, message: str, normalised: str, assessment: Assessment, query: str | None,
                 slots: Slots | None, started: float, in_context: bool, avoid: str | None,
                 prefer_tag: str | None, stage_asked: bool, follow_up: bool) -> Outcome:
        if assessment.crisis and assessment.rule != "crisis":
            # A model's crisis asked nearly in an entry's words is likelier a question: lines first, then the answer.
            top = self.retriever.search(message, k=1).top
            if top is not None and top.question_dense >= self.thresholds.strong:
                assessment = replace(assessment, label="domain", crisis_risk=True)
        if assessment.crisis:
            return self.crisis(started, assessment)
        if assessment.empty:
            text = texts.CLARIFY_UPSET if assessment.label == "distress" else texts.CLARIFY_EMPTY  # "😭😭"
            return self.clarify(text, started, assessment=assessment)
        # In context (an answer to the bot's own question, an elliptical follow-up) a bare
        # "两天" or "那怎么办" is about the conversation's topic, whatever it sounds like alone.
        if assessment.out_of_scope and not in_context:
            return self.decline(texts.DECLINE_OUT_OF_SCOPE, started, assessment)
        if assessment.label == "smalltalk" and not in_context:
            return self.small_talk(normalised, started, assessment)
        if assessment.vague and not in_context:
            text = texts.CLARIFY_GREETING if assessment.greeting else texts.CLARIFY_GENERAL
            return self.clarify(text, started, assessment=assessment)

        slots = slots if slots is not None else Slots()
        if assessment.speaker == "identity_theft" or (assessment.speaker and assessment.sure(assessment.label)):
            slots.speaker = assessment.speaker  # remembered for the rest of the conversation
        result = self.retriever.search(query or message, k=5)
        if assessment.evasion:
            return self._routed_answer("evasion", texts.EVASION_PREFACE, result, started, assessment)
        if assessment.sure("threat"):
            if self.is_confident(result, "victim") and result.top.unit.id != self.lexicon.route("evasion"):
                # The threat first, then what the person asked about ("说要上门来我家").
                outcome = self._compose(result, slots, started, assessment)
                outcome.reply.text = texts.THREAT_PREFACE + outcome.reply.text
                outcome.routed = True
                return outcome
            return self._routed_answer("threat", texts.THREAT_PREFACE, result, started, assessment)
        if assessment.speaker == "identity_theft":
            return self._routed_answer("identity_theft", texts.IDENTITY_THEFT_PREFACE, result, started, assessment)
        if slots.speaker:
            # Someone asking for a relative, or whose identity was used, is better served by the entries
            # written for them when one is a good match too (and, with the model deciding, as likely as the first).
            preferred, model = set(self.lexicon.speaker_entries(slots.speaker)), self.answerability_model
            fitting = next((h for h in result.hits if h.unit.id in preferred and h.dense >= self.thresholds.relevance), None)
            if fitting is not None and (model is None or model.as_likely_as_first(result, assessment.label, fitting)):
                result.promote(fitting)
        if assessment.label in ("victim", "relative", "threat", "distress"):
            # Never the evasion entry for someone wronged, upset or asking for someone else; when nothing
            # fits well, a relative the model is sure of gets the lexicon's entry for them, if plausible.
            evasion_entry = self.lexicon.route("evasion")
            result.hits = [h for h in result.hits if h.unit.id != evasion_entry]
            if not self.is_confident(result, assessment.label) and assessment.sure("relative") \
                    and self._plausible(result, self.lexicon.route("relative"), assessment.label):
                return self._routed_answer("relative", "", result, started, assessment)
        if assessment.rule == "distress" or assessment.sure("distress"):
            # Upset: the support entry (with its helplines) first and the practical match in
            # one line, when the person says so in plain words (the lexicon's distress words).
            # When only the model hears distress, or the question is asked nearly in an entry's
            # own words, the practical answer comes first and the support entry is the line after.
            self._prefer_stage(result, prefer_tag, stage_asked)  # "逾期一天 有事没": that stage's entry
            crisis_topic = self.lexicon.topic("crisis")
            practical = next((h for h in result.hits if h.unit.topic != crisis_topic and h.unit.source_type == "faq"
                              and h.dense >= self.thresholds.relevance), None)
            support = self.routed("support")
            if support is not None:
                support_hit = next((h for h in result.hits if h.unit.id == support.id), None) \
                    or Hit(unit=support, score=1.0, dense=1.0)
                practical_first = practical is not None and (
                    practical.question_dense >= self.thresholds.strong
                    or (assessment.rule != "distress" and practical is result.top and self.is_confident(result)))
                if practical_first:
                    result.promote(practical)
                    return self._compose(result, slots, started, assessment, runner_up=support_hit)
                result.promote(support_hit)
                return self._compose(result, slots, started, assessment, runner_up=practical)
        lender = self.lexicon.other_lender(result.normalised)
        # "白条逾期一天算逾期吗": Alipay's rule is not that lender's, and 95188 can't answer for it.
        not_for_lender = lender and texts.DECLINE_OTHER_LENDER.format(lender=lender.name, ask=lender.ask)
        if not_for_lender and result.top.unit.id in self.lexicon.alipay_only:
            return self.decline(not_for_lender, started, assessment, result)
        rule_answers = self.fixed_rule_answers(result)
        # The rule decides where the dialogue chose the entry (the stage's: "花呗逾期快三个月了 我该先干嘛"), and
        # for the model a message following the conversation (the model saw only questions on their own).
        by_rule = self._prefer_stage(result, prefer_tag, stage_asked) or bool(self.answerability_model and (in_context or follow_up))
        decision = Decision("answer" if rule_answers else "decline") if by_rule else self.decide(result, assessment.label)
        if decision.action == "clarify":
            first, second = decision.options
            return self.clarify(texts.CLARIFY_BETWEEN, started, [first.unit.title, second.unit.title], assessment, unsure=True)
        if decision.action == "decline":
            # Someone asking about a relative's debt is told where to ask, whatever words they use.
            domain = has_domain_word(result.normalised) or assessment.label in ("product", "domain", "relative")
            text = texts.DECLINE_NOT_IN_KNOWLEDGE if domain else texts.DECLINE_OUT_OF_SCOPE
            return self.decline(text, started, assessment, result, unsure=True)
        if decision.options:  # two close entries: the likelier first, the other in one line
            if not_for_lender and decision.options[0].unit.id in self.lexicon.alipay_only:
                return self.decline(not_for_lender, started, assessment, result)
            result.promote(decision.options[0])
            return self._compose(result, slots, started, assessment, runner_up=decision.options[1])
        if avoid and result.top.unit.id == avoid:
            # Move along the entry's own related links, to a good match only.
            related = set(result.top.unit.related)
            alternative = next((h for h in result.hits[1:4] if h.unit.id in related
                                and h.dense >= self.thresholds.relevance + 0.1), None)
            if alternative is not None:
                result.promote(alternative)
        return self._compose(result, slots, started, assessment)

    def _plausible(self, result: RetrievalResult, entry: str | None, label: str) -> bool:
        """`entry` is a match at least as likely as a choice of two needs (the store's model, in either
        setting: a routing, not the answer decision); without a model, a good dense match."""
        fitted = self.retriever.answerability
        index = next((i for i, h in enumerate(result.hits) if h.unit.id == entry), None)
        if index is None or fitted is None:
            return index is not None and result.hits[index].dense >= self.thresholds.relevance
        return fitted.likelihood(result, label, index) >= fitted.clarify_at

    def _prefer_stage(self, result: RetrievalResult, prefer_tag: str | None, stage_asked: bool) -> bool:
        """Put the entry for the person's stage of overdue (`prefer_tag`) first, see respond().
        True when the first entry is now that stage's."""
        top = result.top
        if not prefer_tag or top is None or prefer_tag in top.unit.tags:
            return bool(prefer_tag and top is not None)
        tagged = next((h for h in result.hits[1:5] if prefer_tag in h.unit.tags
                       and (h.unit.topic == top.unit.topic or stage_asked)
                       and h.dense >= self.thresholds.relevance), None)
        if tagged is None and (stage_asked or any(t in top.unit.tags for t in STAGE_TAGS)):
            # The match is a stage entry, but for another stage than the one the person is in
            # (or they asked about their stage): that stage's entry, standing in at the same strength.
            unit = next((u for u in self.retriever.units.values()
                         if (u.topic == top.unit.topic or stage_asked) and prefer_tag in u.tags), None)
            tagged = Hit(unit=unit, score=top.score, dense=top.dense) if unit else None
        if tagged is not None:
            result.promote(tagged)
        return tagged is not None

    def small_talk(self, normalised: str, started: float, assessment: Assessment) -> Outcome:
        text = normalised.strip()
        if THANKS.match(text):
            reply = Reply(texts.THANKS, "notice", [], [], _ms(started))
        elif WHO_ARE_YOU.match(text):
            reply = Reply(texts.WHO_AM_I, "notice", [], list(texts.COMMAND_HINT_OPTIONS), _ms(started))
        elif assessment.greeting:
            return self.clarify(texts.CLARIFY_GREETING, started, assessment=assessment)
        else:  # "好的", "哈哈", "你真好": a friendly word back, and a question how to go on
            return self.clarify(texts.ACKNOWLEDGE, started, list(texts.COMMAND_HINT_OPTIONS), assessment)
        return Outcome(reply, assessment=assessment)

    def _routed_answer(self, route: str, preface: str, result: RetrievalResult, started: float,
                       assessment: Assessment) -> Outcome:
        """The entry the lexicon routes this judgement to, after a fixed first line."""
        unit = self.routed(route)
        if unit is None:  # the entry was removed from the knowledge base: the preface alone
            return self.decline((preface or texts.DECLINE_NOT_IN_KNOWLEDGE).strip(), started, assessment, result)
        hit = next((h for h in result.hits if h.unit.id == unit.id), None) or Hit(unit=unit, score=1.0, dense=1.0)
        others = [h for h in result.hits if h.unit.id != unit.id and h.unit.id != self.lexicon.route("evasion")]
        body = closing_note(preface + unit.body, [unit], self.lexicon.topics_of("disclaimer"))
        outcome = self._reply_for(hit, body, others, started, assessment, result)
        outcome.routed = True
        return outcome

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
            line = hotline_line if runner_up.unit.id == self.lexicon.route("support") else first_line
            body = f"{body}\n\n" + texts.ALSO_RELEVANT.format(title=runner_up.unit.title,
                                                               first_line=line(runner_up.unit.body))
        body = closing_note(body, [unit] + ([runner_up.unit] if runner_up else []),
                            self.lexicon.topics_of("disclaimer"))
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
        if (second.unit.source_type == "faq" and second.unit.topic != self.lexicon.topic("crisis") and both_legs_agree
                and second.score >= RUNNER_UP_SCORE_RATIO * top.score
                and second.dense >= max(self.thresholds.relevance + 0.15, top.dense - 0.05)):
            return second
        return None

    def _reply_for(self, hit: Hit, body: str, others: list[Hit], started: float,
                   assessment: Assessment, result: RetrievalResult, also: list[Hit] = ()) -> Outcome:
        sources = [_source(h.unit, h.dense) for h in [hit, *also]]
        reply = Reply(body.strip(), "answer", sources, follow_up_titles(hit, others, self.retriever.units), _ms(started))
        return Outcome(reply, entry=hit.unit.id, retrieval=result, assessment=assessment)

    def elaborate(self, outcome: Outcome, message: str, *, slots: Slots | None = None,
                  previous_entry: str | None = None, on_partial=None) -> Outcome:
        """With a language model configured, a composed answer is rewritten by it, grounded and checked,
        `outcome` the fallback (bot/llm.py). Crisis, decline, clarify and evasion replies never reach it."""
        if self.generator is None or outcome.reply.kind != "answer" or outcome.routed:
            return outcome
        unit = self.retriever.units.get(previous_entry) if previous_entry else None
        return self.generator.generate(clean_user_text(message), outcome, slots=slots,
                                       topic_title=unit.title if unit else None, on_partial=on_partial)


def _source(unit: Unit, score: float) -> Source:
    return unit.as_source(round(score, 4))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
