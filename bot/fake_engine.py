"""The one stand-in for the dialogue engine: the Telegram and replay tests, the load benchmark.

`FakeEngine` implements the Engine protocol (bot/telegram/engine.py: `handle(conversation_id,
text, on_partial=None)`, `reset`, `forget`) without a store: deterministic, thread-safe, in well
under a millisecond. Anything that takes bot.dialogue's engine takes it: the Telegram front end,
`python -m bot replay` (`main(..., engine=...)`, `run_replay`), bench/telegram_load.py.

A message is answered by the first of:

1. `script`, the caller's own triggers, checked first so they can add a behaviour or override a
   built-in one: `FakeEngine(script={...})`, or `engine.script[marker] = action` later. The marker
   may be anywhere in the text; the action is a Reply, a function of the text, or a function of
   `(text, on_partial)`, which may stream by calling `on_partial(text_so_far)`.
2. The markers, to exercise a front end on purpose (anywhere in the text):
   - LONG_ANSWER: an answer of six parts of about 1,450 characters (must be split)
   - CLARIFY_ME: the clarify reply, with two options
   - FOLLOWUPS: "回答：" and the text (its <, & intact, so escaping is exercised), a source whose
     title has < and &, and two suggestions, one over Telegram's 64-byte callback_data
   - SLOW_ANSWER: sleeps `slow_s` seconds in the calling thread, then "慢回答：" and the text
   - HANG: waits until `release` is set (at most 10 s), then answers
   - EXPLODE: raises RuntimeError("engine exploded") (the error paths)
3. With `fallback` (e.g. the real dialogue engine), every other message, and reset() and
   forget(), go to that engine. Without one, a small conversation with context:
   - "/reset" or "/forget" sent as text (as `--via engine` replays do): as reset() and forget()
   - "不想活" or "想死": the crisis reply; "天气": a decline
   - a message with "逾期" or "催收" becomes the conversation's topic; with a topic, a message
     with "还一点" gets the partial-payment answer and any other the topic answer
     ("关于“<topic>”：先别慌。…")
   - with no topic (a follow-up such as "那怎么办" in a fresh conversation): the clarify reply

`wording={name: text}` rewords one of the built-in replies (the names of REPLIES), keeping its
kind, sources and suggestions: `FakeEngine(wording={"partial_payment": "可以协商分期。"})`.

Every call (`calls`: method, conversation id, text) and every Reply returned (`replies`) is
recorded, whoever answered it; `texts()` lists the messages handled.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from bot.reply import Reply, Source

LONG_PARAGRAPH = "逾期以后先别慌。" * 180  # 1,440 characters
LONG_LABEL = "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉"  # > 64 bytes
HANG_LIMIT_S = 10.0

# name -> the reply; "{text}" is filled with the message, "{topic}" with the conversation's topic.
REPLIES: dict[str, Reply] = {
    "reset": Reply("好的，之前的对话已清空。你想了解什么？", "notice", [], ["逾期后会怎么催收"]),
    "forget": Reply("已删除我为这段对话保存的全部信息。", "notice"),
    "long": Reply("\n\n".join(f"第{i}部分：{LONG_PARAGRAPH}" for i in range(1, 7)), "answer",
                  [Source("faq-x", "示例来源", 0.9)], ["还款协商怎么做"]),
    "clarify": Reply("你想了解哪方面？", "clarify", [], ["逾期后会怎么催收", "逾期对征信有什么影响"]),
    "followups": Reply("回答：{text}", "answer", [Source("faq-y", "《某规范》 <第1条> & 说明", 0.8)],
                       ["怎么和平台协商分期还款", LONG_LABEL]),
    "slow": Reply("慢回答：{text}", "answer"),
    "hang": Reply("太晚了", "answer"),
    "crisis": Reply("你的安全最重要。可以拨打 12356 心理援助热线。", "crisis",
                    [Source("wellbeing-crisis-lines", "撑不住的时候，可以找谁聊聊", 0.9)]),
    "decline": Reply("这个问题不在我能帮忙的范围里，抱歉。", "decline", [], ["逾期一个月会怎么催收"]),
    "topic": Reply("关于“{topic}”：先别慌。\n保存通话录音和截图等证据。", "answer",
                   [Source("complaints-evidence", "怎么保存证据", 0.7)], ["可以投诉吗"]),
    "partial_payment": Reply("按约定的计划逐步还，一般不会让催收更猛。可以主动联系平台协商分期。", "answer",
                             [Source("collection-partial-payment", "只还一点点会不会被催得更狠", 0.8)],
                             ["怎么申请分期", "协商要准备什么"]),
}

CRISIS_WORDS = ("不想活", "想死")
DECLINE_WORDS = ("天气",)
TOPIC_WORDS = ("逾期", "催收")
PARTIAL_PAYMENT_WORDS = ("还一点",)

Action = Reply | Callable[[str], Reply] | Callable[[str, Any], Reply]


class EngineCall(NamedTuple):
    method: str  # handle | reset | forget
    conversation_id: str
    text: str | None = None


class FakeEngine:
    def __init__(self, script: Mapping[str, Action] | None = None, *, wording: Mapping[str, str] | None = None,
                 fallback: Any = None, slow_s: float = 1.2, work_ms: float = 0.0) -> None:
        unknown = set(wording or ()) - set(REPLIES)
        if unknown:
            raise KeyError(f"no built-in reply named {sorted(unknown)} (known: {', '.join(REPLIES)})")
        self.script: dict[str, Action] = dict(script or {})
        self.wording = dict(wording or {})
        self.fallback = fallback
        self.slow_s = slow_s
        self.work_ms = work_ms  # busy-loop this long per message to simulate CPU-bound retrieval
        self.release = threading.Event()  # lets HANG calls finish
        self.calls: list[EngineCall] = []
        self.replies: list[Reply] = []
        self.markers: dict[str, Callable[[str], Reply]] = {
            "LONG_ANSWER": lambda text: self.reply("long"),
            "CLARIFY_ME": lambda text: self.reply("clarify"),
            "FOLLOWUPS": lambda text: self.reply("followups", text=text),
            "SLOW_ANSWER": self._slow,
            "HANG": self._hang,
            "EXPLODE": self._explode,
        }
        self._topics: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- the Engine protocol -------------------------------------------------------------------

    def handle(self, conversation_id: str, text: str, on_partial: Callable[[str], None] | None = None) -> Reply:
        started = time.perf_counter()
        self._record(EngineCall("handle", conversation_id, text))
        if self.work_ms:
            end = started + self.work_ms / 1000.0
            while time.perf_counter() < end:
                pass
        scripted = self._scripted(text, on_partial)
        if scripted is not None:
            reply = scripted()
        elif self.fallback is not None:
            return self._keep(self.fallback.handle(conversation_id, text, on_partial=on_partial))
        else:
            reply = self._converse(conversation_id, text)
        reply.latency_ms = (time.perf_counter() - started) * 1000.0
        return self._keep(reply)

    def reset(self, conversation_id: str) -> Reply:
        self._record(EngineCall("reset", conversation_id))
        if self.fallback is not None:
            return self._keep(self.fallback.reset(conversation_id))
        return self._keep(self._clear(conversation_id, "reset"))

    def forget(self, conversation_id: str) -> Reply:
        self._record(EngineCall("forget", conversation_id))
        if self.fallback is not None:
            return self._keep(self.fallback.forget(conversation_id))
        return self._keep(self._clear(conversation_id, "forget"))

    # --- what tests read -----------------------------------------------------------------------

    def texts(self) -> list[str]:
        """The messages handled, in order."""
        with self._lock:
            return [c.text for c in self.calls if c.method == "handle" and c.text is not None]

    def reply(self, name: str, **values: str) -> Reply:
        """A fresh copy of the built-in reply `name` (as reworded), placeholders filled."""
        template = REPLIES[name]
        text = self.wording.get(name, template.text)
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return Reply(text, template.kind, list(template.sources), list(template.suggestions))

    # --- answering -----------------------------------------------------------------------------

    def _scripted(self, text: str, on_partial) -> Callable[[], Reply] | None:
        """The caller's action or the marker's for `text`, ready to call; None if there is none."""
        for marker, action in list(self.script.items()):
            if marker in text:
                if isinstance(action, Reply):
                    return lambda: Reply(action.text, action.kind, list(action.sources), list(action.suggestions))
                if len(inspect.signature(action).parameters) > 1:
                    return lambda: action(text, on_partial)
                return lambda: action(text)
        for marker, action in self.markers.items():
            if marker in text:
                return lambda: action(text)
        return None

    def _converse(self, conversation_id: str, text: str) -> Reply:
        command = text.strip().split("@", 1)[0].lower()
        if command in ("/reset", "/forget"):
            return self._clear(conversation_id, command[1:])
        if any(word in text for word in CRISIS_WORDS):
            return self.reply("crisis")
        if any(word in text for word in DECLINE_WORDS):
            return self.reply("decline")
        with self._lock:
            if any(word in text for word in TOPIC_WORDS):
                self._topics[conversation_id] = text
            topic = self._topics.get(conversation_id)
        if topic is None:
            return self.reply("clarify")
        if any(word in text for word in PARTIAL_PAYMENT_WORDS):
            return self.reply("partial_payment")
        return self.reply("topic", topic=topic)

    def _clear(self, conversation_id: str, name: str) -> Reply:
        with self._lock:
            self._topics.pop(conversation_id, None)
        return self.reply(name)

    def _slow(self, text: str) -> Reply:
        time.sleep(self.slow_s)
        return self.reply("slow", text=text)

    def _hang(self, text: str) -> Reply:
        self.release.wait(HANG_LIMIT_S)
        return self.reply("hang")

    @staticmethod
    def _explode(text: str) -> Reply:
        raise RuntimeError("engine exploded")

    def _record(self, call: EngineCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _keep(self, reply: Reply) -> Reply:
        with self._lock:
            self.replies.append(reply)
        return reply
