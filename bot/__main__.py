"""`python -m bot [telegram|chat|ask|replay|eval] ...`

Without a command: the Telegram bot when TELEGRAM_BOT_TOKEN is set, otherwise
the terminal chat.
"""

from __future__ import annotations

import argparse
import os
import sys

from bot.logs import configure_logging
from bot.settings import ConfigurationError, get_settings, prepare_runtime_environment
from bot.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the reply as one JSON object")
    chat = sub.add_parser("chat", help="one conversation on stdin, one message per line")
    chat.add_argument("--json", action="store_true", help="one JSON object per reply, one per line")
    chat.add_argument("--conversation", metavar="ID", help="continue this stored conversation (default: a new one)")
    sub.add_parser("telegram", help="run the Telegram bot (TELEGRAM_BOT_TOKEN)")
    sub.add_parser("replay", help="replay conversation fixtures (see docs/replay.md)", add_help=False)
    sub.add_parser("eval", help="measure retrieval and answers on the labelled set", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = get_settings()
    prepare_runtime_environment(settings)
    # A terminal tool's stderr is for problems; the service (telegram) logs at LOG_LEVEL.
    terminal_tool = argv[0] in ("ask", "chat", "replay", "eval") if argv else not settings.telegram_bot_token
    quiet = terminal_tool and "LOG_LEVEL" not in os.environ
    # key=value lines, no message text, ids or token, whatever configured logging before.
    configure_logging("WARNING" if quiet else settings.log_level, settings.log_message_text)

    try:
        # replay and eval own their argument parsing.
        if argv and argv[0] == "replay":
            from bot.replay import main as replay_main

            return replay_main(argv[1:])
        if argv and argv[0] == "eval":
            from bot.evaluation import main as eval_main

            return eval_main(argv[1:])

        args = build_parser().parse_args(argv)
        command = args.command or ("telegram" if settings.telegram_bot_token else "chat")
        if command == "ask":
            from bot.cli import ask

            return ask(args.question, args.json)
        if command == "chat":
            from bot.cli import chat

            return chat(getattr(args, "json", False), conversation_id=getattr(args, "conversation", None))
        if command == "telegram":
            if not settings.telegram_bot_token:
                print("TELEGRAM_BOT_TOKEN is not set (see .env.example).", file=sys.stderr)
                return 2
            from bot.telegram import run

            run(settings)
            return 0
    except (StoreError, ConfigurationError) as exc:
        print(f"{exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
