"""A small deterministic stand-in for the dialogue engine (tests, fake-server demos, benchmarks).

It answers everything without a store, in well under a millisecond unless
asked to simulate CPU work. Some texts trigger special replies so front-end
behaviour can be exercised on purpose:

- contains "LONG" or "长答案": an answer of about 9,000 characters (must be split)
- contains "SLOW": sleeps `slow_s` seconds in the worker thread before answering
- contains "BOOM": raises RuntimeError (the error handler's path)
- contains "VAGUE" or is "怎么办": a clarify reply with options
- contains "想死": a crisis reply
- contains "天气": a decline
- anything else: an answer that quotes the question (with its <, & intact, so
  escaping is exercised), two sources and two follow-up suggestions, one of
  them longer than Telegram's 64-byte callback_data limit
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bot.reply import Reply, Source

LONG_PARAGRAPH = "逾期以后先别慌。" * 180  # 1,440 characters


@dataclass
class EngineCall:
    method: str
    conversation_id: str
    text: str | None = None


@dataclass
class FakeEngine:
    slow_s: float = 1.5
    work_ms: float = 0.0  # busy-loop this long per message to simulate CPU-bound retrieval
    calls: list[EngineCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _turns: dict[str, int] = field(default_factory=dict, repr=False)

    def _record(self, method: str, conversation_id: str, text: str | None = None) -> int:
        with self._lock:
            self.calls.append(EngineCall(method, conversation_id, text))
            if method == "handle":
                self._turns[conversation_id] = self._turns.get(conversation_id, 0) + 1
            else:
                self._turns.pop(conversation_id, None)
            return self._turns.get(conversation_id, 0)

    def texts(self) -> list[str]:
        with self._lock:
            return [c.text for c in self.calls if c.method == "handle" and c.text is not None]

    def reset(self, conversation_id: str) -> Reply:
        self._record("reset", conversation_id)
        return Reply("好的，我们重新开始。你想了解什么？", "notice", [], ["逾期后会怎么催收"])

    def forget(self, conversation_id: str) -> Reply:
        self._record("forget", conversation_id)
        return Reply("已删除我为这段对话保存的全部信息。", "notice")

    def handle(self, conversation_id: str, text: str, on_partial=None) -> Reply:  # never streams
        started = time.perf_counter()
        command = text.strip().split("@", 1)[0].lower()
        if command == "/reset":
            return self.reset(conversation_id)
        if command == "/forget":
            return self.forget(conversation_id)
        turn = self._record("handle", conversation_id, text)
        if self.work_ms:
            end = time.perf_counter() + self.work_ms / 1000.0
            while time.perf_counter() < end:
                pass
        if "SLOW" in text:
            time.sleep(self.slow_s)
        if "BOOM" in text:
            raise RuntimeError("fake engine failure")
        reply = self._reply(text, turn)
        reply.latency_ms = (time.perf_counter() - started) * 1000.0
        return reply

    @staticmethod
    def _reply(text: str, turn: int) -> Reply:
        sources = [
            Source("faq-demo-1", "逾期后会怎样 <常见问题> & 说明", 0.82, "《示例规范》第一条"),
            Source("article-demo", "原文：逾期一个月的催收方式", 0.71),
        ]
        if "LONG" in text or "长答案" in text:
            body = "\n\n".join(f"第{i}部分：{LONG_PARAGRAPH}" for i in range(1, 7))
            return Reply(body, "answer", sources, ["还款协商怎么做"])
        if "VAGUE" in text or text.strip() == "怎么办":
            return Reply("别着急，我们一件一件来。你最想先了解哪方面？", "clarify", [],
                         ["逾期后会怎么催收", "怎么和平台协商还款", "逾期对征信有什么影响"])
        if "想死" in text:
            return Reply("听到你这么说，我很担心你。你现在的安全最重要。", "crisis", [], ["逾期了很焦虑怎么办"])
        if "天气" in text:
            return Reply("这个问题不在我能帮忙的范围里，抱歉。", "decline", [], ["逾期一个月会怎么催收"])
        body = (
            f"关于你的问题（第{turn}条）：{text}\n\n"
            "- 先确认账单上的逾期金额和天数。\n"
            "- 主动联系平台说明情况，协商还款。\n\n"
            "以上为一般信息，不构成法律意见。"
        )
        suggestions = ["怎么和平台协商分期还款",
                       "如果催收人员在晚上十点以后还一直打电话给我的家人和同事，我应该怎么保存证据并投诉"]
        return Reply(body, "answer", sources, suggestions)
