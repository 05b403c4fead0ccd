"""Optional language-model answers, still grounded (LLM_PROVIDER=openai-compatible | ollama).

The offline composer (bot/answer.py) stays the default and the fallback. When a
model is configured, a composed `answer` is handed to `LLMGenerator`, which asks
the model to answer the user's message from the top retrieved entries only:

    prompt (Simplified Chinese, numbered context [1]..[3]) | chat model | StrOutputParser

and then checks the model's text before anyone relies on it (`check_grounding`):
every [n] it cites exists; every phone-like number, amount, percentage, duration,
law name (《…》) and article number (第…条) it states appears in the context; it
is not empty and cites at least one source. An answer that fails the check, an
error, or no complete answer within LLM_TIMEOUT_S means the composer's answer is
used, unchanged. Crisis, decline and clarify replies, and answers to requests to
evade repayment, never reach the model (AnswerEngine.elaborate decides).

Conversation context: the model sees the current message, the title of the
entry the conversation was about before this turn and the dialogue's slots
(product, how long overdue, abusive collection). No earlier message text: the
dialogue never stores it, and this module keeps nothing between calls either.

Streaming: `LLMGenerator.stream(...)` yields the answer's text so far (str,
cumulative, cut at sentence ends, each prefix already through the grounding
check) and then exactly one final `Outcome`, whose reply is what the user must
end up seeing (the checked model answer or, on any failure, the composer's).

Provider packages (langchain-openai, langchain-ollama) are imported only here,
only when configured: `pip install 'debt-help-bot[llm]'`.

The package: provider.py (which chat model), prompt.py (what it is asked),
grounding.py (what its answer may state), streaming.py (LLMGenerator: the
answer streamed under a deadline, checked, with the composer as fallback).
"""

from bot.llm.grounding import Grounding, check_grounding, sentence_prefix, visible_text
from bot.llm.prompt import CONTEXT_HITS, HUMAN_PROMPT, SYSTEM_PROMPT, build_prompt, context_blocks, situation_text
from bot.llm.provider import PROVIDERS, LLMConfigError, build_chat_model, provider_name
from bot.llm.streaming import LLMGenerator, LLMTimeout, build_generator, eligible

__all__ = [
    "CONTEXT_HITS", "HUMAN_PROMPT", "PROVIDERS", "SYSTEM_PROMPT", "Grounding", "LLMConfigError", "LLMGenerator",
    "LLMTimeout", "build_chat_model", "build_generator", "build_prompt", "check_grounding", "context_blocks",
    "eligible", "provider_name", "sentence_prefix", "situation_text", "visible_text",
]
