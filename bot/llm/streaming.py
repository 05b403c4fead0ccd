"""The generator: the model's answer streamed on a worker thread, under a deadline, checked as it comes."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

from langchain_core.output_parsers import StrOutputParser

from bot import texts
from bot.answer import Outcome
from bot.answer_text import closing_note
from bot.slots import Slots
from bot.llm.grounding import Grounding, check_grounding, sentence_prefix, visible_text
from bot.llm.prompt import CONTEXT_HITS, build_prompt, context_blocks, situation_text
from bot.llm.provider import build_chat_model
from bot.reply import Reply
from bot.retrieval import Hit
from bot.settings import Settings

log = logging.getLogger("bot.llm")

class LLMTimeout(Exception):
    """No complete answer within LLM_TIMEOUT_S."""


def build_generator(settings: Settings) -> "LLMGenerator | None":
    model = build_chat_model(settings)
    return None if model is None else LLMGenerator(settings, model)


def eligible(outcome: Outcome) -> bool:
    """Only composed answers to ordinary questions go to the model."""
    return (outcome.reply.kind == "answer" and not outcome.assessment.crisis and not outcome.assessment.evasion
            and outcome.retrieval is not None and bool(outcome.retrieval.hits))


class LLMGenerator:
    """prompt | model | parser, with a deadline, a grounding check and the composer as fallback.

    Stateless between calls and safe to use from several threads at once.
    """

    def __init__(self, settings: Settings, model, *, hits: int = CONTEXT_HITS) -> None:
        self.settings = settings
        self.model = model
        self.hits = hits
        self.chain = build_prompt() | model | StrOutputParser()

    # --- public ------------------------------------------------------------------------
    def generate(self, message: str, fallback: Outcome, *, slots: Slots | None = None,
                 topic_title: str | None = None, on_partial: Callable[[str], None] | None = None) -> Outcome:
        """The checked model answer, or `fallback` (the composer's) on any failure.

        `on_partial(text_so_far)` is called from this thread as checked text arrives.
        """
        final = fallback
        for item in self.stream(message, fallback, slots=slots, topic_title=topic_title):
            if isinstance(item, Outcome):
                final = item
            elif on_partial is not None:
                try:
                    on_partial(item)
                except Exception:  # a front end's display problem must not lose the answer
                    log.warning("on_partial callback failed", exc_info=True)
        return final

    def stream(self, message: str, fallback: Outcome, *, slots: Slots | None = None,
               topic_title: str | None = None) -> Iterator[str | Outcome]:
        """Yield the answer so far (str, cumulative, checked), then one final Outcome.

        The final Outcome's reply replaces whatever partial text was shown: it is
        the model's checked answer, or the composer's answer if the model failed
        the check, raised, or did not finish within LLM_TIMEOUT_S.
        """
        started = time.perf_counter()
        if not eligible(fallback):
            yield fallback
            return
        hits = fallback.retrieval.hits[:self.hits]
        blocks = context_blocks(hits)
        # A follow-up ("一个月", "那怎么办") was searched with the conversation's context added:
        # tell the model how it was read. (A query cut down to the message's core adds nothing.)
        query = (fallback.retrieval.query or "").strip()
        situation = situation_text(slots, topic_title, query if query and query not in message else None)
        # What the answer may state: the numbered context plus the slots and topic (never
        # the user's message or the query made from it, which may carry an injected "fact").
        grounds = "\n\n".join(blocks) + "\n" + situation_text(slots, topic_title)
        inputs = {"context": "\n\n".join(blocks), "situation": situation, "question": message}
        deadline = time.monotonic() + self.settings.llm_timeout_s

        raw, shown = "", ""
        try:
            for chunk in self._run(inputs, deadline):
                raw += chunk
                prefix = sentence_prefix(visible_text(raw))
                if len(prefix) <= len(shown):
                    continue
                checked = check_grounding(prefix, grounds, len(hits), partial=True)
                if not checked.ok:  # what is wrong in a prefix stays wrong in the whole answer
                    yield self._fall_back(fallback, "ungrounded", checked.problems)
                    return
                if checked.text != shown:
                    shown = checked.text
                    yield shown
        except LLMTimeout:
            yield self._fall_back(fallback, "timeout", [f"timeout: no answer within {self.settings.llm_timeout_s}s"])
            return
        except Exception as exc:  # the provider's error (network, auth, rate limit, ...)
            yield self._fall_back(fallback, "error", [f"{type(exc).__name__}: {str(exc)[:200]}"])
            return

        checked = check_grounding(visible_text(raw), grounds, len(hits))
        if not checked.ok:
            yield self._fall_back(fallback, "ungrounded", checked.problems)
            return
        yield self._outcome(checked, hits, fallback, started)

    # --- internals ---------------------------------------------------------------------
    def _run(self, inputs: dict, deadline: float) -> Iterator[str]:
        """The chain's streamed chunks, produced on a worker thread so the deadline holds
        even when the model blocks (a slow first token, a hung connection)."""
        chunks: queue.Queue = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for chunk in self.chain.stream(inputs):
                    if stop.is_set():
                        break
                    chunks.put(("chunk", chunk))
                chunks.put(("done", None))
            except BaseException as exc:  # handed to the consumer
                chunks.put(("error", exc))

        worker = threading.Thread(target=produce, name="llm-answer", daemon=True)
        worker.start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LLMTimeout
                try:
                    kind, value = chunks.get(timeout=remaining)
                except queue.Empty:
                    raise LLMTimeout from None
                if kind == "chunk":
                    yield value
                elif kind == "done":
                    return
                else:
                    raise value
        finally:
            stop.set()  # a late worker drops the rest (and closes its stream) instead of running on

    def _outcome(self, checked: Grounding, hits: list[Hit], fallback: Outcome, started: float) -> Outcome:
        sources = []
        for n in checked.cited:
            hit = hits[n - 1]
            unit = hit.unit
            sources.append(unit.as_source(round(hit.dense, 4)))
        text = checked.text
        # The composed answer carries the disclaimer where its topic needs one (the lexicon's
        # disclaimer topics); the model's answer keeps it, and is hedged by the same data.
        top = hits[0].unit
        disclaimer = (top.topic,) if texts.ANSWER_DISCLAIMER in fallback.reply.text \
            or texts.ANSWER_DISCLAIMER_HEDGED in fallback.reply.text else ()
        text = closing_note(text, [top] + [hits[n - 1].unit for n in checked.cited if hits[n - 1].unit is not top],
                            disclaimer)
        latency = fallback.reply.latency_ms + (time.perf_counter() - started) * 1000.0
        reply = Reply(text, "answer", sources, list(fallback.reply.suggestions), latency)
        return Outcome(reply, entry=fallback.entry, retrieval=fallback.retrieval, assessment=fallback.assessment)

    def _fall_back(self, fallback: Outcome, reason: str, problems: list[str]) -> Outcome:
        # The details quote the model's text, which may echo the user's: logged only with
        # LOG_MESSAGE_TEXT on, otherwise just the kinds of problem.
        if not self.settings.log_message_text:
            problems = sorted({p.split(":", 1)[0] for p in problems})
        log.info("llm answer not used (%s): %s; the composer's answer is sent", reason, "; ".join(problems)[:300])
        return fallback
