"""Conversations: context for follow-ups, slots, clarification, suggestions, sessions.

`DialogueEngine.handle(conversation_id, text) -> Reply` is the whole interface
every front end uses (Telegram, CLI, replay). It knows nothing of Telegram.

What a conversation stores is the minimum: the id of the knowledge entry it is
about, the slots (product, how long overdue, whether collection is abusive) and
a pending clarification. Never the user's messages, with one exception: the
answers given in a guided flow (bot/flows: /complaint, /negotiate), kept until
the draft is made from them, the flow is cancelled, or the idle timeout.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

from bot import texts
from bot.answer import AnswerEngine, Outcome
from bot.slots import Slots
from bot.embeddings import get_embedder
from bot.flows import FLOW_COMMANDS, FlowRunner
from bot.reply import Reply
from bot.retrieval import Retriever
from bot.safety import is_vague
from bot.sessions import SessionStore, open_session_store
from bot.settings import Settings, get_settings, prepare_runtime_environment
from bot.textnorm import OVERDUE_DURATION, clean_user_text, has_problem_word, normalise_query, parse_overdue, stage_tag, stage_words

log = logging.getLogger(__name__)

RESET_COMMANDS = {"/reset", "/restart", "/new"}
FORGET_COMMANDS = {"/forget", "/delete"}

PRODUCTS = ("花呗", "借呗", "网商贷", "信用卡", "网贷")
ABUSIVE = re.compile(r"骂|威胁|恐吓|辱骂|侮辱|爆通讯录|骚扰|半夜|凌晨|上门闹|p图|群发|吓唬|暴力|态度(特别|很|非常)?(恶劣|差)|难听|轰炸")
# Follow-ups lean on what was said before: "那怎么办", "要保存什么证据", "可以报警吗".
FOLLOW_UP_START = re.compile(r"^(那|那么|那要|那我|那如果|还有|然后|如果|要是|可是|但是|所以|这样|这种|这个|那个|"
                             r"他们|对方|它|可以|能不能|能否|要不要|需要|是不是|会不会|有没有|what about|and |so )")
FOLLOW_UP_MAX_CHARS = 14
_CJK = re.compile(r"[\u4e00-\u9fff]")
# "花呗逾期两个月了，" : the situation, said before the actual problem.
SITUATION = re.compile(rf"({'|'.join(PRODUCTS)}|支付宝)?[和、跟]?(花呗|借呗)?(已经)?{OVERDUE_DURATION.pattern}(了|啦)?")
PRODUCT_SPECIFIC = re.compile(r"征信|芝麻|利息|利率|费用|罚息|逾期费|额度|上报")
ABOUT_THE_STAGE = re.compile(r"会怎么样|会怎样|接下来|会做什么|会怎么催|怎么催收|严厉|更凶|更狠|加大|升级|会发生什么|"
                             r"什么后果|what will|what happens|"
                             # "what do I do first": a plan for where they are, which the stage entry gives
                             r"先(干嘛|干什么|做什么|做啥|怎么办)|从哪(里)?(开始|下手)|what (should|do) i do first")
_PUNCT = re.compile(r"[\s,，。.!！?？;；、~～]+")

STAGE_OPTIONS = ["刚逾期几天", "逾期一个月左右", "逾期三个月以上"]
STAGE_QUESTION = "逾期多久了？不同阶段的催收方式不太一样，我按你的情况说。"
# "逾期了会怎么样", "花呗逾期了后果严重不": the answer depends on how long overdue.
GENERIC_OVERDUE_QUESTION = re.compile(
    r"(逾期|没还|晚还|还不上)了?(以后|之后|后)?.{0,4}(会怎么样|会怎样|怎么样|会怎么催收|怎么催收|会被怎么催|会发生什么|"
    r"(有什么|有啥|什么|啥)后果|后果(是什么|是啥|严重|大|会|怎么样)|严重(吗|么|不(?!良))|严不严重|要紧(吗|不)|要不要紧)")
# "判决生效了还不上会怎么样" is about the court stage, not about how collection unfolds.
COURT_STAGE = re.compile(r"判决|判了|起诉|开庭|执行|官司|法院|诉讼|失信|限高|时效")


def product_in(text: str) -> str | None:
    """The first product the text names."""
    return next((name for name in PRODUCTS if name in text), None)


def extract_slots(normalised: str, slots: Slots, bare_duration: bool = False) -> Slots:
    """Update slots from what the user just said (latest mention wins)."""
    product = product_in(normalised)
    overdue = parse_overdue(normalised, bare=bare_duration)
    # How long one debt is overdue says nothing about another: a new product
    # without its own duration starts without one.
    previous_overdue = slots.overdue if not product or product == slots.product else None
    return Slots(
        product=product or slots.product,
        overdue=overdue[0] if overdue else previous_overdue,
        abusive=slots.abusive or bool(ABUSIVE.search(normalised)),
        acknowledged=slots.acknowledged,
    )


def problem_focus(normalised: str) -> str | None:
    """The problem in "花呗逾期两个月了 每天被催收电话轰炸": the situation clause is
    kept in the slots, and retrieval searches what the person actually asks about."""
    match = SITUATION.search(normalised)
    if not match:
        return None
    rest = _PUNCT.sub(" ", (normalised[:match.start()] + " " + normalised[match.end():])).strip()
    if len(_CJK.findall(rest)) < 3 or not has_problem_word(rest) or ABOUT_THE_STAGE.search(rest):
        return None  # nothing else asked, or it asks what this stage brings
    return rest


# A message longer than this (in Chinese characters) is a story: retrieval searches its question,
# when one sentence of at most QUESTION_CHARS asks it.
STORY_CHARS = 100
QUESTION_CHARS = 60
_SENTENCE = re.compile(r"[^。!?;]+[。!?;]*")
_ASKS = re.compile(r"\?|吗|怎么|如何|能不能|什么(?!都|也)|多少|哪(?!怕)|是否|会不会|要不要")


def question_of_story(normalised: str) -> str | None:
    """The question a long story ends up asking ("……我现在最想知道的是，怎么跟支付宝协商分期还款？"):
    its last sentence that asks something. The story around it matches every entry a little
    and none well. None for a short message, a story that asks nothing, or one said in a single
    breath (voice input: no sentence to pick; the dialogue's other focus rules apply)."""
    if len(_CJK.findall(normalised)) <= STORY_CHARS:
        return None
    for sentence in reversed(_SENTENCE.findall(normalised)):
        if _ASKS.search(sentence) and 4 <= len(_CJK.findall(sentence)) <= QUESTION_CHARS:
            return sentence.strip().rstrip("。!?;").strip()
    return None


def asks_about_stage(normalised: str) -> bool:
    """The message is only the situation ("花呗逾期十天了"), or asks what this stage brings
    ("借呗逾期三个月了会怎么样"): the entry for that stage answers it, whatever else is near."""
    match = SITUATION.search(normalised)
    if not match:
        return False
    rest = _PUNCT.sub(" ", (normalised[:match.start()] + " " + normalised[match.end():])).strip()
    return len(_CJK.findall(rest)) < 3 or bool(ABOUT_THE_STAGE.search(rest))


@dataclass
class ConversationState:
    entry: str | None = None  # id of the knowledge entry the last answer was about
    slots: Slots = field(default_factory=Slots)
    pending: str | None = None  # "overdue" while waiting for how long the debt is overdue
    flow: dict | None = None  # a guided flow in progress (bot.flows.machine.FlowState), with its answers

    def to_dict(self) -> dict:
        data = {"entry": self.entry, "slots": self.slots.to_dict(), "pending": self.pending}
        if self.flow:
            data["flow"] = self.flow
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> "ConversationState":
        data = data or {}
        # "topic" is how states saved before the rename called the entry.
        return cls(entry=data.get("entry") or data.get("topic"), slots=Slots.from_dict(data.get("slots")),
                   pending=data.get("pending"), flow=data.get("flow") if isinstance(data.get("flow"), dict) else None)


class DialogueEngine:
    def __init__(self, answers: AnswerEngine, sessions: SessionStore) -> None:
        self.answers = answers
        self.sessions = sessions
        self.flows = FlowRunner(answers)

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
    def handle(self, conversation_id: str, text: str, on_partial=None) -> Reply:
        """One turn. With a language model configured, `on_partial(text_so_far)` is called
        (from this thread) as a checked answer streams in; the returned Reply is final."""
        started = time.perf_counter()
        message = clean_user_text(text if isinstance(text, str) else "")
        command = message.split("@", 1)[0].lower() if message.startswith("/") else ""
        if command in RESET_COMMANDS:
            return _timed(self.reset(conversation_id), started)
        if command in FORGET_COMMANDS:
            return _timed(self.forget(conversation_id), started)
        if command and command not in FLOW_COMMANDS:
            # /start, /help and anything unknown: what the bot is for, and how to ask.
            return _timed(Reply(texts.COMMAND_HELP, "notice", [], list(texts.COMMAND_HINT_OPTIONS)), started)
        # An over-long paste is answered without being normalised (see _turn).
        normalised = normalise_query(message) if len(message) <= self.answers.settings.max_message_chars else ""

        # Two messages of one conversation handled at once (a thread pool, or several bot
        # processes sharing Redis) must not both load the old state and lose one update:
        # one turn at a time per conversation, locked by the session store.
        with self.sessions.lock(conversation_id):
            state = ConversationState.from_dict(self.sessions.load(conversation_id))
            # A guided flow answers first: its commands, buttons and the answers to its steps.
            reply = self.flows.take_turn(state, message, command, started)
            entry = None
            if reply is None:
                previous_entry = state.entry
                outcome = self._turn(state, message, normalised, started)
                # The optional model sees this message, the previous topic and the slots: no earlier text.
                outcome = self.answers.elaborate(outcome, message, slots=state.slots, previous_entry=previous_entry,
                                                 on_partial=on_partial)
                self._remember(state, outcome)
                reply, entry = self.flows.follow(state, outcome.reply, outcome.entry), outcome.entry
            self.sessions.save(conversation_id, state.to_dict())
        log.debug("turn kind=%s entry=%s latency_ms=%.1f", reply.kind, entry, reply.latency_ms)
        return _timed(reply, started)

    def _turn(self, state: ConversationState, message: str, normalised: str, started: float) -> Outcome:
        answers = self.answers
        if len(message) > answers.settings.max_message_chars:
            return answers.respond(message, started=started)  # a polite "please shorten it"
        waiting_for_stage = state.pending == "overdue"
        had_overdue = state.slots.overdue
        state.slots = extract_slots(normalised, state.slots, bare_duration=waiting_for_stage)
        slots = state.slots

        # The answer to "how long overdue?": go back to the question it was asked for.
        if waiting_for_stage and slots.overdue and slots.overdue != had_overdue:
            days = parse_overdue(slots.overdue, bare=True)
            stage = stage_words(days[1]) if days else ""
            query = f"{slots.product or ''}逾期{slots.overdue} {stage} 会怎么催收"
            outcome = answers.respond(message, query=query, slots=slots, started=started, in_context=True,
                                      prefer_tag=stage_tag(days[1]) if days else None)
            if outcome.reply.kind == "answer":
                return outcome

        if waiting_for_stage and not slots.overdue and is_vague(normalised):
            # "花呗" in answer to "逾期多久了？": still no duration; ask once more, kindly.
            return answers.clarify(STAGE_QUESTION, started, STAGE_OPTIONS)

        topic_unit = self.retriever.units.get(state.entry) if state.entry else None
        if topic_unit is not None and is_vague(normalised):
            # "那怎么办": nothing to search for on its own; it is about the topic.
            return self._in_context(message, topic_unit, state, started, avoid_topic=False)

        focus, overdue = question_of_story(normalised) or problem_focus(normalised), parse_overdue(normalised)
        query = self._standalone_query(normalised, focus, overdue, slots)
        # "花呗逾期十天了(会怎么样)": the entry for that stage, when the match is about stages at all
        # (one stage entry is swapped for another), or when the message only states the stage
        # or asks what it brings (then the stage entry wins over a fee or credit entry).
        prefer = stage_tag(overdue[1]) if overdue else None
        follow_up = topic_unit is not None and self._is_follow_up(normalised)
        outcome = answers.respond(message, query=query, slots=slots, started=started, prefer_tag=prefer,
                                  stage_asked=bool(overdue) and asks_about_stage(normalised), follow_up=follow_up)
        if (topic_unit is not None and outcome.reply.kind in ("decline", "clarify")
                and not ((outcome.assessment.out_of_scope and outcome.assessment.rule == "out_of_scope")
                         or outcome.assessment.empty
                         or outcome.assessment.greeting)
                and follow_up):
            # A weak elliptical message inside a conversation: read it in the light of the topic.
            contextual = self._in_context(message, topic_unit, state, started)
            if contextual.reply.kind == "answer":
                return contextual
        if outcome.assessment.lines_first:
            return outcome  # the crisis lines come first: never replaced by a question about the stage
        if (outcome.reply.kind == "answer" or outcome.unsure) and self._needs_stage(normalised, state):
            # "借呗逾期了会怎么样": it depends on the stage, so ask it rather than answer or decline.
            state.pending = "overdue"
            return answers.clarify(STAGE_QUESTION, started, STAGE_OPTIONS)
        if (outcome.reply.kind == "clarify" and outcome.assessment.label == "vague" and not slots.overdue
                and (product_in(normalised) or "逾期" in normalised)):
            # "借呗逾期了": what happens next depends on how long; ask that, and read the
            # bare answer ("差不多三个月了") as the answer to it.
            state.pending = "overdue"
            return answers.clarify(STAGE_QUESTION, started, STAGE_OPTIONS, assessment=outcome.assessment)
        return outcome

    @staticmethod
    def _standalone_query(normalised: str, focus: str | None, overdue: tuple[str, float] | None,
                          slots: Slots) -> str | None:
        """What retrieval searches for a message on its own; None means the message itself.
        `focus` and `overdue` are problem_focus() and parse_overdue() of the message."""
        text = focus or normalised
        if focus is None and overdue:
            # "借呗逾期三个月了会怎么样" is about that stage: say it in the knowledge base's words.
            text = f"{text} {stage_words(overdue[1])}"
        if slots.product and slots.product != "花呗" and not product_in(text) and PRODUCT_SPECIFIC.search(text):
            # "会上征信吗" after "借呗逾期一个月了" is about 借呗: credit reports and fees
            # differ by product. (花呗 is what the knowledge base assumes anyway; and on
            # other questions the product name only pulls retrieval off course.)
            text = f"{slots.product} {text}"
        return text if text != normalised else None

    def _in_context(self, message: str, topic_unit, state: ConversationState, started: float,
                    avoid_topic: bool = True) -> Outcome:
        product = state.slots.product if state.slots.product and state.slots.product not in message else ""
        query = f"{product} {topic_unit.title} {message}".strip()
        # A specific follow-up ("要准备什么材料") asks for something new about the
        # topic: prefer another good entry over repeating the one just shown.
        return self.answers.respond(message, query=query, slots=state.slots, started=started,
                                    in_context=True, avoid=topic_unit.id if avoid_topic else None)

    def _is_follow_up(self, normalised: str) -> bool:
        text = normalised.strip()
        if not _CJK.search(text):
            return False  # "<script>…" stripped to "alert(1)" is not a question about the topic
        if is_vague(text):
            return True
        if FOLLOW_UP_START.match(text) and len(text) <= FOLLOW_UP_MAX_CHARS + 6:
            return True
        # Short and naming no product or stage of its own: an elliptical question.
        return len(text) <= FOLLOW_UP_MAX_CHARS and not product_in(text) and parse_overdue(text) is None

    def _needs_stage(self, normalised: str, state: ConversationState) -> bool:
        """Ask how long overdue only when the answer really differs by stage: a
        generic "what happens when overdue" question, with no stage known yet."""
        if state.slots.overdue or state.pending:
            return False
        return bool(GENERIC_OVERDUE_QUESTION.search(normalised)) and not COURT_STAGE.search(normalised)

    @staticmethod
    def _remember(state: ConversationState, outcome: Outcome) -> None:
        if outcome.reply.kind == "answer":
            state.entry = outcome.entry
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
    generator = None
    if (settings.llm_provider or "none").strip().lower() != "none":
        from bot.llm import build_generator  # langchain provider packages load only when configured

        generator = build_generator(settings)
    return DialogueEngine(AnswerEngine(settings, retriever, generator), sessions or open_session_store(settings))
