"""Conversations: context for follow-ups, slots, clarification, suggestions, sessions.

`DialogueEngine.handle(conversation_id, text) -> Reply` is the whole interface
every front end uses (Telegram, CLI, replay). It knows nothing of Telegram.

What a conversation stores is the minimum: the id of the knowledge entry it is
about, the slots (product, how long overdue, whether collection is abusive) and
a pending clarification. Never the user's messages.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

from bot import texts
from bot.answer import AnswerEngine, Outcome, Slots
from bot.embeddings import get_embedder
from bot.reply import Reply
from bot.retrieval import Retriever
from bot.safety import VAGUE
from bot.sessions import SessionStore, open_session_store
from bot.settings import Settings, get_settings, prepare_runtime_environment
from bot.textnorm import clean_user_text, normalise_query

log = logging.getLogger(__name__)

RESET_COMMANDS = {"/reset", "/restart", "/new"}
FORGET_COMMANDS = {"/forget", "/delete"}

PRODUCTS = [("花呗", "花呗"), ("借呗", "借呗"), ("网商贷", "网商贷"), ("信用卡", "信用卡"), ("网贷", "网贷")]
_NUM = r"(\d+|[一二两三四五六七八九十半几]+)"
DURATION = re.compile(_NUM + r"\s*(个多月|个月|多月|月|天|日|周|星期|年|多年)")
JUST_OVERDUE = re.compile(r"刚(刚)?(逾期|晚|过期|到期)|逾期(了)?(一两|两三|三四|几)天")
ABUSIVE = re.compile(r"骂|威胁|恐吓|辱骂|侮辱|爆通讯录|骚扰|半夜|凌晨|上门闹|p图|群发|吓唬|暴力")
# Follow-ups lean on what was said before: "那怎么办", "要保存什么证据", "可以报警吗".
FOLLOW_UP_START = re.compile(r"^(那|那么|那要|那我|那如果|还有|然后|如果|要是|可是|但是|所以|这样|这种|这个|那个|"
                             r"他们|对方|它|可以|能不能|能否|要不要|需要|是不是|会不会|有没有|what about|and |so )")
FOLLOW_UP_MAX_CHARS = 14

# Topics whose answer depends on how long the debt is overdue.
STAGE_TOPIC = "催收流程"
STAGE_OPTIONS = ["刚逾期几天", "逾期一个月左右", "逾期三个月以上"]
STAGE_QUESTION = "逾期多久了？不同阶段的催收方式不太一样，我按你的情况说。"
GENERIC_OVERDUE_QUESTION = re.compile(
    r"(逾期|没还|晚还|还不上)了?(以后|之后|后)?.{0,4}(会怎么样|会怎样|怎么样|会怎么催收|怎么催收|会被怎么催|有什么后果|后果是什么|会发生什么)")


def extract_slots(normalised: str, slots: Slots) -> Slots:
    """Update slots from what the user just said (latest mention wins)."""
    product = next((name for key, name in PRODUCTS if key in normalised), None)
    duration = DURATION.search(normalised)
    overdue = None
    if duration:
        overdue = duration.group(0).replace(" ", "")
    elif JUST_OVERDUE.search(normalised):
        overdue = "几天"
    return Slots(
        product=product or slots.product,
        overdue=overdue or slots.overdue,
        abusive=slots.abusive or bool(ABUSIVE.search(normalised)),
        acknowledged=slots.acknowledged,
    )


@dataclass
class ConversationState:
    topic: str | None = None  # knowledge unit id of the last answer
    slots: Slots = field(default_factory=Slots)
    pending: str | None = None  # "overdue" while waiting for how long the debt is overdue

    def to_dict(self) -> dict:
        return {"topic": self.topic, "slots": self.slots.to_dict(), "pending": self.pending}

    @classmethod
    def from_dict(cls, data: dict | None) -> "ConversationState":
        data = data or {}
        return cls(topic=data.get("topic"), slots=Slots.from_dict(data.get("slots")),
                   pending=data.get("pending"))


class DialogueEngine:
    def __init__(self, answers: AnswerEngine, sessions: SessionStore) -> None:
        self.answers = answers
        self.sessions = sessions

    @property
    def retriever(self) -> Retriever:
        return self.answers.retriever

    # --- commands --------------------------------------------------------------
    def reset(self, conversation_id: str) -> Reply:
        self.sessions.delete(conversation_id)
        return Reply(texts.RESET, "notice", [], list(texts.CLARIFY_OPTIONS[:3]))

    def forget(self, conversation_id: str) -> Reply:
        self.sessions.delete(conversation_id)
        return Reply(texts.FORGET, "notice")

    # --- one turn ---------------------------------------------------------------------
    def handle(self, conversation_id: str, text: str) -> Reply:
        started = time.perf_counter()
        message = clean_user_text(text if isinstance(text, str) else "")
        command = message.split("@", 1)[0].lower() if message.startswith("/") else ""
        if command in RESET_COMMANDS:
            return _timed(self.reset(conversation_id), started)
        if command in FORGET_COMMANDS:
            return _timed(self.forget(conversation_id), started)

        state = ConversationState.from_dict(self.sessions.load(conversation_id))
        outcome = self._turn(state, message, started)
        self._remember(state, outcome)
        self.sessions.save(conversation_id, state.to_dict())
        log.info("turn kind=%s topic=%s latency_ms=%.1f", outcome.reply.kind, outcome.topic,
                 outcome.reply.latency_ms)
        return _timed(outcome.reply, started)

    def _turn(self, state: ConversationState, message: str, started: float) -> Outcome:
        if len(message) > self.answers.settings.max_message_chars:
            return self.answers.respond(message, started=started)
        normalised = normalise_query(message)
        had_overdue = state.slots.overdue
        state.slots = extract_slots(normalised, state.slots)

        # The answer to "how long overdue?": go back to the question it was asked for.
        if state.pending == "overdue" and state.slots.overdue and not had_overdue:
            query = f"{state.slots.product or ''}逾期{state.slots.overdue}会怎么催收"
            outcome = self.answers.respond(message, query=query, slots=state.slots, started=started)
            if outcome.reply.kind == "answer":
                return outcome

        topic_unit = self.retriever.units.get(state.topic) if state.topic else None
        if topic_unit is not None and VAGUE.match(normalised.strip()):
            # "那怎么办": nothing to search for on its own; it is about the topic.
            return self._in_context(message, topic_unit, state, started)

        outcome = self.answers.respond(message, slots=state.slots, started=started)
        if (topic_unit is not None and outcome.reply.kind in ("decline", "clarify")
                and not (outcome.assessment.out_of_scope or outcome.assessment.empty
                         or outcome.assessment.greeting)
                and self._is_follow_up(normalised)):
            # A weak elliptical message inside a conversation: read it in the light of the topic.
            contextual = self._in_context(message, topic_unit, state, started)
            if contextual.reply.kind == "answer":
                return contextual
        if outcome.reply.kind == "answer" and self._needs_stage(normalised, state):
            state.pending = "overdue"
            return self.answers.clarify(STAGE_QUESTION, started, STAGE_OPTIONS)
        return outcome

    def _in_context(self, message: str, topic_unit, state: ConversationState, started: float) -> Outcome:
        return self.answers.respond(message, query=f"{topic_unit.title} {message}", slots=state.slots,
                                    started=started)

    def _is_follow_up(self, normalised: str) -> bool:
        text = normalised.strip()
        if VAGUE.match(text):
            return True
        if FOLLOW_UP_START.match(text) and len(text) <= FOLLOW_UP_MAX_CHARS + 6:
            return True
        # Short and naming no product or stage of its own: an elliptical question.
        return len(text) <= FOLLOW_UP_MAX_CHARS and not any(k in text for k, _ in PRODUCTS) \
            and not DURATION.search(text)

    def _needs_stage(self, normalised: str, state: ConversationState) -> bool:
        """Ask how long overdue only when the answer really differs by stage: a
        generic "what happens when overdue" question, with no stage known yet."""
        if state.slots.overdue or state.pending:
            return False
        return bool(GENERIC_OVERDUE_QUESTION.search(normalised))

    @staticmethod
    def _remember(state: ConversationState, outcome: Outcome) -> None:
        if outcome.reply.kind == "answer":
            state.topic = outcome.topic
            state.pending = None
        elif outcome.reply.kind == "crisis":
            state.pending = None


def _timed(reply: Reply, started: float) -> Reply:
    reply.latency_ms = (time.perf_counter() - started) * 1000.0
    return reply


def build_engine(settings: Settings | None = None, sessions: SessionStore | None = None,
                 retriever: Retriever | None = None) -> DialogueEngine:
    """The engine on the configured store, embedding model and session store.

    Loads the store now, so a missing or mismatched store fails at start-up
    with its clear message rather than on the first user's question.
    """
    settings = settings or get_settings()
    prepare_runtime_environment(settings)
    embedder = retriever.embedder if retriever else get_embedder(settings.embedding_model)
    # Loading the model's weights is mostly numpy work that releases the GIL, so
    # it overlaps with opening the store and building the keyword index.
    warm = threading.Thread(target=embedder.warm_up, name="embedder-warm-up", daemon=True)
    warm.start()
    retriever = retriever or Retriever(settings, embedder=embedder)
    retriever.load()
    warm.join()
    return DialogueEngine(AnswerEngine(settings, retriever), sessions or open_session_store(settings))
