"""Which chat model answers: the provider named by LLM_PROVIDER, imported only when configured."""

from __future__ import annotations

from bot.settings import ConfigurationError, Settings

PROVIDERS = ("none", "openai-compatible", "ollama")
_ALIASES = {"openai": "openai-compatible", "openai_compatible": "openai-compatible", "": "none"}
INSTALL_HINT = "pip install 'debt-help-bot[llm]'  (from a checkout: pip install -e '.[llm]')"

MAX_OUTPUT_TOKENS = 900  # a few short paragraphs; Telegram's limit is 4096 characters
TEMPERATURE = 0.2


class LLMConfigError(ConfigurationError):
    """The configured language model cannot be set up (unknown provider, missing package or setting)."""


def provider_name(settings: Settings) -> str:
    name = (settings.llm_provider or "none").strip().lower()
    return _ALIASES.get(name, name)


def _import(module: str, attr: str, provider: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise LLMConfigError(
            f"LLM_PROVIDER={provider} needs the Python package {module.replace('_', '-')}, which is not "
            f"installed. Install the optional 'llm' extra: {INSTALL_HINT}") from exc


def build_chat_model(settings: Settings):
    """The configured langchain chat model, or None when LLM_PROVIDER is none.

    openai-compatible: langchain-openai's ChatOpenAI at LLM_BASE_URL (DeepSeek,
    Qwen on DashScope, vLLM, llama.cpp server, ...; OpenAI itself when unset).
    ollama: langchain-ollama's ChatOllama at LLM_BASE_URL (default
    http://localhost:11434).
    """
    provider = provider_name(settings)
    if provider == "none":
        return None
    if provider not in PROVIDERS:
        raise LLMConfigError(f"LLM_PROVIDER={settings.llm_provider!r} is not one of: {', '.join(PROVIDERS)}")
    if not settings.llm_model:
        raise LLMConfigError(f"LLM_PROVIDER={provider} needs LLM_MODEL (e.g. deepseek-chat, qwen-plus, qwen2.5:7b)")
    timeout = settings.llm_timeout_s
    if provider == "openai-compatible":
        chat_openai = _import("langchain_openai", "ChatOpenAI", provider)
        api_key = settings.llm_api_key
        if not api_key:
            if not settings.llm_base_url:
                raise LLMConfigError("LLM_PROVIDER=openai-compatible needs LLM_API_KEY (or LLM_BASE_URL "
                                     "for a self-hosted server that takes no key)")
            api_key = "not-needed"  # self-hosted servers ignore it; the client insists on one
        return chat_openai(model=settings.llm_model, base_url=settings.llm_base_url, api_key=api_key,
                           timeout=timeout, max_retries=0, temperature=TEMPERATURE, max_tokens=MAX_OUTPUT_TOKENS)
    chat_ollama = _import("langchain_ollama", "ChatOllama", provider)
    kwargs = {"base_url": settings.llm_base_url} if settings.llm_base_url else {}
    return chat_ollama(model=settings.llm_model, temperature=TEMPERATURE, num_predict=MAX_OUTPUT_TOKENS,
                       client_kwargs={"timeout": timeout}, **kwargs)
