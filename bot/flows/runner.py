"""Fitting the guided flows into a conversation: the dialogue engine asks this module first.

`take_turn` handles what belongs to a flow: /complaint, /negotiate and their
buttons start one, /cancel leaves it, an answer moves it on, and the last
answer produces the draft (kind `draft`), after which the answers are dropped
from the conversation state. Everything else is left to the normal turn
(returns None), and `follow` then brings the conversation back to the flow:

- a question or small talk mid-flow is answered normally, then the pending
  step is asked again;
- a crisis message gets the crisis reply, decided by the existing judgement
  (AnswerEngine.assess / respond), and the flow waits until the user says to
  go on; a message only at risk of being one gets the crisis line first;
- an empty message or an over-long paste gets a polite word and the step
  again; nothing already answered is lost.

Outside a flow, `follow` offers one under complaint and negotiation answers.
"""

from __future__ import annotations

from bot import texts as bot_texts
from bot.flows import parse
from bot.flows import texts as t
from bot.flows.complaint import ComplaintFlow
from bot.flows.machine import Flow, FlowState
from bot.flows.negotiation import NegotiationFlow
from bot.reply import Reply
from bot.textnorm import normalise_query

FLOWS: dict[str, Flow] = {"complaint": ComplaintFlow(), "negotiation": NegotiationFlow()}
START_COMMANDS = {"/complaint": "complaint", "/negotiate": "negotiation"}
CANCEL_COMMANDS = {"/cancel", "/stop"}
FLOW_COMMANDS = frozenset(START_COMMANDS) | CANCEL_COMMANDS
START_PHRASES = {t.COMPLAINT_OFFER: "complaint", t.NEGOTIATE_OFFER: "negotiation",
                 t.RESUME["complaint"]: "complaint", t.RESUME["negotiation"]: "negotiation"}
INTROS = {"complaint": t.COMPLAINT_INTRO, "negotiation": t.NEGOTIATE_INTRO}
# Answers on these knowledge topics offer the flow as a button (the knowledge base's topic names).
MAX_SUGGESTIONS = 3
OFFER_BY_TOPIC = {"催收边界": t.COMPLAINT_OFFER, "投诉维权": t.COMPLAINT_OFFER, "还款协商": t.NEGOTIATE_OFFER}


class FlowRunner:
    def __init__(self, answers) -> None:
        self.answers = answers  # bot.answer.AnswerEngine: the judgement, the knowledge, normal replies

    @property
    def units(self):
        return self.answers.retriever.units

    def take_turn(self, state, message: str, command: str, started: float) -> Reply | None:
        """The flow's reply to this message, or None when the normal turn should answer it.
        `state` is the dialogue's ConversationState; its `flow` holds a FlowState dict."""
        current = FlowState.from_dict(state.flow)
        if command in CANCEL_COMMANDS:
            state.flow = None
            return Reply(t.CANCELLED if current else t.NOTHING_TO_CANCEL, "notice", [],
                         list(bot_texts.COMMAND_HINT_OPTIONS))
        name = START_COMMANDS.get(command) or START_PHRASES.get(message.strip())
        if name is not None:
            if current is not None and current.name == name and message.strip() == t.RESUME[name]:
                return self._resume(state, current)  # the "go on" button after a crisis reply
            flow_state = FlowState(name)
            state.flow = flow_state.to_dict()
            return FLOWS[name].ask(flow_state, prefix=t.PRIVACY_LINE + INTROS[name])
        if current is None:
            return None
        flow = FLOWS[current.name]
        if current.paused:
            return self._resume(state, current) if parse.is_resume(normalise_query(message)) else None
        if len(message) > self.answers.settings.max_message_chars:
            return flow.ask(current, prefix=t.TOO_LONG_ANSWER.format(chars=len(message)))
        normalised = normalise_query(message)
        if not parse.is_skip(normalised):
            assessment = self.answers.assess(normalised)
            if assessment.empty or assessment.wordless:  # nothing, or only "😀": the step again
                return flow.ask(current, prefix=t.EMPTY_ANSWER)
            if assessment.crisis:
                outcome = self.answers.respond(message, started=started)
                if outcome.reply.kind == "crisis":
                    current.paused = True
                    state.flow = current.to_dict()
                    outcome.reply.suggestions = outcome.reply.suggestions + [t.RESUME[current.name]]
                    return outcome.reply
            if parse.is_aside(normalised):
                return None  # answered normally; follow() asks the step again
            prefix = bot_texts.CRISIS_RISK_LINE if assessment.crisis_risk else ""
            done = flow.answer(current, message.strip())
        else:
            prefix, done = "", flow.skip(current)
        if done:
            state.flow = None  # the answers leave the session store with the draft
            return flow.compose(current.answers, self.units)
        state.flow = current.to_dict()
        return flow.ask(current, prefix=prefix)

    def _resume(self, state, current: FlowState) -> Reply:
        current.paused = False
        state.flow = current.to_dict()
        return FLOWS[current.name].ask(current, prefix=t.RESUMED)

    def follow(self, state, reply: Reply, entry: str | None) -> Reply:
        """After a normal turn: back to the pending step, or offer a flow under a fitting answer."""
        current = FlowState.from_dict(state.flow)
        if current is not None and current.paused:
            resume = t.RESUME[current.name]
            if resume not in reply.suggestions:
                reply.suggestions = reply.suggestions + [resume]
            return reply
        if current is not None:
            flow = FLOWS[current.name]
            question = flow.ask(current)
            reply.text = f"{reply.text}\n\n" + t.BACK_TO_FLOW.format(what=t.FLOW_WHAT[current.name],
                                                                      question=question.text)
            reply.suggestions = question.suggestions
            return reply
        unit = self.units.get(entry) if entry and reply.kind == "answer" else None
        offer = OFFER_BY_TOPIC.get(unit.topic) if unit is not None else None
        if offer and offer not in reply.suggestions:
            # In place of the last follow-up: answers keep at most three buttons.
            reply.suggestions = reply.suggestions[:MAX_SUGGESTIONS - 1] + [offer]
        return reply
