"""A guided conversation as a small state machine: a fixed list of steps, one question at a time.

PTB's ConversationHandler pattern in spirit, but front-end neutral: a flow's
whole state is a `FlowState` (a plain dict in the session store), every step
can be skipped, and a step whose answers are few offers them as options. A
`multi` step lets options add up (each press is one more), and ends on free
text, on "就这些" or on "跳过".

Nothing here knows about the knowledge base or the dialogue engine; the flows
(complaint.py, negotiation.py) define steps and compose the result, and
runner.py fits them into a conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.flows import texts
from bot.reply import Reply


@dataclass(frozen=True)
class Step:
    key: str
    question: str
    options: tuple[str, ...] = ()
    multi: bool = False
    ends: tuple[str, ...] = ()  # options of a `multi` step that answer it on their own ("还没有")


@dataclass
class FlowState:
    """Where a conversation is in a flow. `answers` holds the user's own words per step key
    (a skipped step has no key); `picked` the options chosen so far on a `multi` step."""

    name: str
    step: int = 0
    answers: dict[str, str] = field(default_factory=dict)
    picked: list[str] = field(default_factory=list)
    paused: bool = False  # after a crisis reply: resumed only when the user asks to

    def to_dict(self) -> dict:
        return {"name": self.name, "step": self.step, "answers": dict(self.answers),
                "picked": list(self.picked), "paused": self.paused}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "FlowState | None":
        if not data or not isinstance(data.get("name"), str):
            return None
        answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
        return cls(name=data["name"], step=int(data.get("step") or 0),
                   answers={str(k): str(v) for k, v in answers.items()},
                   picked=[str(p) for p in data.get("picked") or []], paused=bool(data.get("paused")))


class Flow:
    """A guided conversation: its steps, and what it makes of the answers (`compose`)."""

    name: str = ""
    steps: tuple[Step, ...] = ()

    def compose(self, answers: Mapping[str, str], units: Mapping) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- asking ---------------------------------------------------------------------------
    def current(self, state: FlowState) -> Step:
        return self.steps[min(state.step, len(self.steps) - 1)]

    def ask(self, state: FlowState, prefix: str = "") -> Reply:
        """The pending step's question as a `clarify` reply, its options as suggestions."""
        step = self.current(state)
        progress = texts.PROGRESS.format(n=state.step + 1, total=len(self.steps))
        if step.multi and state.picked:
            question = texts.MULTI_MORE.format(picked="、".join(state.picked))
            options = [o for o in step.options if o not in state.picked and o not in step.ends] + [texts.DONE]
        else:
            question = step.question
            options = list(step.options) + [texts.SKIP]
        return Reply(f"{prefix}{progress}{question}", "clarify", [], options)

    def suggestions(self, state: FlowState) -> list[str]:
        return self.ask(state).suggestions

    # --- answering ------------------------------------------------------------------------
    def skip(self, state: FlowState) -> bool:
        """Skip the pending step (keeping options already picked). True when the flow is done."""
        if state.picked:
            state.answers[self.current(state).key] = "、".join(state.picked)
        return self._advance(state)

    def answer(self, state: FlowState, text: str) -> bool:
        """Record the user's answer to the pending step. True when the flow is done."""
        step = self.current(state)
        if step.multi and text == texts.DONE:
            return self.skip(state)
        if step.multi and text in step.options and text not in step.ends:
            if text not in state.picked:
                state.picked.append(text)
            if len(state.picked) < len(step.options):
                return False  # ask whether there is more
        else:
            state.picked.append(text)
        state.answers[step.key] = "、".join(state.picked)
        return self._advance(state)

    def _advance(self, state: FlowState) -> bool:
        state.step += 1
        state.picked = []
        return state.step >= len(self.steps)
