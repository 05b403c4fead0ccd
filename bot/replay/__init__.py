"""Replay conversation fixtures through the dialogue engine and check the replies.

    python -m bot replay PATH... [--json] [--junit FILE] [--record] [--diff] [--via engine|telegram]

A fixture is a YAML file holding one conversation (a mapping with `name` and
`turns`) or a list of them; see docs/replay.md. Each conversation runs in a
fresh conversation id. Exit codes: 0 all passed, 1 a turn failed (or, with
--diff, a reply changed since the last transcript), 2 a fixture error or the
replay could not run.

The engine is reached through a *transport*: any callable
`(conversation_id, text) -> Reply`. `--via engine` calls the dialogue engine
in-process; other front ends register a factory in `TRANSPORTS` (a context
manager yielding the transport, so it can start and stop what it needs).

The package's rooms: fixtures (parsing), runner, transcripts (--record/--diff),
reports (text, JSON, JUnit), cli; pytest_plugin collects fixtures as test items.
"""

from bot.replay.cli import (
    TRANSPORTS,
    ReplayUsageError,
    build_parser,
    engine_transport,
    main,
    replay_settings,
    telegram_transport,
)
from bot.replay.fixtures import (
    KINDS,
    Conversation,
    Expect,
    FixtureError,
    Turn,
    find_fixture_files,
    is_fixture_file,
    load_fixture_file,
    load_fixtures,
)
from bot.replay.reports import format_conversation, format_report, junit_xml
from bot.replay.runner import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    ConversationResult,
    ReplayResult,
    Transport,
    TransportFactory,
    TurnResult,
    check_reply,
    engine_as_transport,
    run_conversation,
    run_replay,
)
from bot.replay.transcripts import Change, diff_transcript, read_transcript, transcript_path, write_transcript

__all__ = [
    "KINDS", "TRANSPORTS", "Change", "Conversation", "ConversationResult", "EXIT_ERROR", "EXIT_FAILED",
    "EXIT_OK", "Expect", "FixtureError", "ReplayResult", "ReplayUsageError", "Transport", "TransportFactory",
    "Turn", "TurnResult", "build_parser", "check_reply", "diff_transcript", "engine_as_transport",
    "engine_transport", "find_fixture_files", "format_conversation", "format_report", "is_fixture_file",
    "junit_xml", "load_fixture_file", "load_fixtures", "main", "read_transcript", "replay_settings",
    "run_conversation", "run_replay", "telegram_transport", "transcript_path", "write_transcript",
]
