"""`python -m bot replay`: the command line, and the transports it reaches the bot through."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterator

from bot.replay.fixtures import load_fixtures
from bot.replay.reports import format_report, junit_xml
from bot.replay.runner import EXIT_ERROR, ReplayResult, Transport, TransportFactory, engine_as_transport, run_replay


def replay_settings(settings: Any, session_dir: Path) -> Any:
    """Settings for replay: sessions in a throwaway SQLite file, never the real store or Redis."""
    return settings.model_copy(
        update={"session_db": Path(session_dir) / "replay-sessions.sqlite3", "redis_url": None}
    )


class ReplayUsageError(Exception):
    """The replay cannot run as asked (exit code 2)."""


@contextlib.contextmanager
def _replay_engine(engine: Any = None) -> Iterator[Any]:
    """`engine` as given, or the dialogue engine built here with its own temporary session store."""
    if engine is not None:
        yield engine
        return
    from bot.dialogue import build_engine
    from bot.settings import get_settings, prepare_runtime_environment

    with tempfile.TemporaryDirectory(prefix="replay-sessions-") as tmp:
        settings = replay_settings(get_settings(), Path(tmp))
        prepare_runtime_environment(settings)
        built = build_engine(settings)
        try:
            yield built
        finally:
            close = getattr(built, "close", None)
            if callable(close):
                close()


@contextlib.contextmanager
def engine_transport(engine: Any = None) -> Iterator[Transport]:
    """The dialogue engine in this process (built with its own temporary session store,
    unless `engine` is given)."""
    with _replay_engine(engine) as used:
        yield engine_as_transport(used)


@contextlib.contextmanager
def telegram_transport(engine: Any = None) -> Iterator[Transport]:
    """The real Telegram front end (bot.telegram) against the local fake Bot API, in a
    background thread, around the dialogue engine (or `engine`); see bot/telegram/replay.py."""
    from bot.settings import get_settings
    from bot.telegram.replay import TelegramReplay

    with _replay_engine(engine) as used, tempfile.TemporaryDirectory(prefix="replay-sessions-") as tmp:
        with TelegramReplay(used, replay_settings(get_settings(), Path(tmp))) as transport:
            yield transport


# --via NAME -> a factory returning a context manager that yields the transport. Called
# with `engine=` (main(..., engine=...)), it reaches that engine instead of building one.
TRANSPORTS: dict[str, TransportFactory] = {
    "engine": engine_transport,
    "telegram": telegram_transport,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot replay",
        description="Replay conversation fixtures through the bot and check its replies.",
        epilog="Exit codes: 0 all passed; 1 a turn failed or (with --diff) a reply changed; "
        "2 fixture error or the replay could not run.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="fixture files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one testcase per conversation)")
    parser.add_argument("--record", action="store_true", help="write <fixture>.transcript.yaml beside each fixture")
    parser.add_argument("--diff", action="store_true", help="show replies that changed since the last transcript")
    parser.add_argument("--via", default="engine", choices=sorted(TRANSPORTS), help="how to reach the bot (default: engine)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing conversations too")
    return parser


def main(argv: list[str] | None = None, *, engine: Any = None, transport: Transport | None = None) -> int:
    """`python -m bot replay ...`; argv are the arguments after `replay`.

    Tests pass `transport` to skip `--via`, or `engine` (anything with bot.telegram.engine.Engine's
    handle(); `--via engine` calls only handle(conversation_id, text)) for
    `--via` to reach instead of building the dialogue engine.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "replay" and not Path(argv[0]).exists():
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (2)
        return int(exc.code or 0)

    # Check the fixtures before starting anything heavy.
    loaded, errors = load_fixtures(args.paths)
    if errors:
        result = ReplayResult(errors=errors)
        return _finish(result, args)

    try:
        with contextlib.ExitStack() as stack:
            if transport is None:
                factory = TRANSPORTS[args.via]
                try:
                    transport = stack.enter_context(factory(engine=engine) if engine is not None else factory())
                except ReplayUsageError as exc:
                    print(f"replay: {exc}", file=sys.stderr)
                    return EXIT_ERROR
                except Exception:  # noqa: BLE001 - say why the bot could not start
                    traceback.print_exc()
                    print(f"replay: could not start the bot via {args.via} (see above)", file=sys.stderr)
                    return EXIT_ERROR
            result = run_replay(args.paths, transport=transport, record=args.record, diff=args.diff)
    except KeyboardInterrupt:
        return 130
    return _finish(result, args)


def _finish(result: ReplayResult, args: argparse.Namespace) -> int:
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(junit_xml(result), encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_report(result, verbose=args.verbose))
    return result.exit_code
