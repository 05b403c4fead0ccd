"""pytest collection of conversation fixtures: one test item per conversation.

Registered as a pytest plugin through the `pytest11` entry point in
pyproject.toml, so pytest (a dev-only dependency) is imported here and nowhere
else in the shipped package. Loading it collects nothing by itself: a
conftest.py turns collection on for its folder:

    from bot.replay import engine_transport
    from bot.replay.pytest_plugin import make_collect_file

    pytest_collect_file = make_collect_file(engine_transport)

The transport factory is entered once per test session, at the first item that
needs it, and closed when the session ends. A failing item shows the same
readable report as `python -m bot replay`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from bot.replay.fixtures import Conversation, FixtureError, is_fixture_file, load_fixture_file
from bot.replay.reports import format_conversation
from bot.replay.runner import Transport, TransportFactory, run_conversation


class ConversationFailed(Exception):
    """A conversation's turns did not meet their expectations; str() is the report."""


class TransportUnavailable(Exception):
    pass


_transports = pytest.StashKey[dict]()


def _transport_for(config: pytest.Config, factory: TransportFactory) -> Transport:
    """The session's transport for this factory: started once, closed at session end."""
    cache = config.stash.setdefault(_transports, {})
    if factory not in cache:
        context = factory()
        try:
            cache[factory] = (context.__enter__(), None)
            config.add_cleanup(lambda: context.__exit__(None, None, None))
        except Exception as exc:  # noqa: BLE001 - every item reports the same cause
            cache[factory] = (None, f"{type(exc).__name__}: {exc}")
    transport, problem = cache[factory]
    if problem:
        raise TransportUnavailable(f"could not start the bot for the conversation fixtures: {problem}")
    return transport


class ConversationItem(pytest.Item):
    def __init__(self, *, conversation: Conversation, factory: TransportFactory, **kwargs: Any):
        super().__init__(**kwargs)
        self.conversation = conversation
        self.factory = factory

    def runtest(self) -> None:
        transport = _transport_for(self.config, self.factory)
        result = run_conversation(self.conversation, transport)
        if not result.passed:
            raise ConversationFailed(format_conversation(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> Any:
        if isinstance(excinfo.value, (ConversationFailed, TransportUnavailable)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.conversation.line - 1, f"conversation: {self.conversation.name}"


class ConversationFile(pytest.File):
    def __init__(self, *, factory: TransportFactory, **kwargs: Any):
        super().__init__(**kwargs)
        self.factory = factory

    def collect(self):
        try:
            conversations = load_fixture_file(self.path)
        except FixtureError as exc:
            raise self.CollectError(f"fixture error: {exc}") from exc
        for conversation in conversations:
            yield ConversationItem.from_parent(
                self, name=conversation.name, conversation=conversation, factory=self.factory
            )


def make_collect_file(factory: TransportFactory) -> Callable[..., Any]:
    """A `pytest_collect_file` hook for a conftest.py: fixture files -> conversation items."""

    def pytest_collect_file(parent: pytest.Collector, file_path: Path):
        if is_fixture_file(file_path):
            return ConversationFile.from_parent(parent, path=file_path, factory=factory)
        return None

    return pytest_collect_file
