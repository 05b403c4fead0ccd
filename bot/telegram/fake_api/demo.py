"""`python -m bot.telegram.fake_api`: the fake served standalone, and the demo that plays every kind of update."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from bot.telegram.fake_api.checks import DEFAULT_TOKEN
from bot.telegram.fake_api.server import FakeBotAPI

DEMO_USERS = (4201, 4202, 4203)  # steps are spread over three users to stay under the rate limit
DEMO_GROUP = -100777
DEMO_GROUP_MEMBER = 4204


async def run_demo(api: FakeBotAPI, *, timeout: float = 30.0, out=sys.stdout) -> bool:
    """Play one update of every kind to a bot and report what came back. True if all were answered.

    The bot must be running against `api` (e.g. `python -m bot telegram` with
    TELEGRAM_BASE_URL/TELEGRAM_BOT_TOKEN pointing here).
    """
    a, b, c = DEMO_USERS
    group = dict(user_id=DEMO_GROUP_MEMBER, chat_type="supergroup")
    first_c: list[int] = []
    steps: list[tuple[str, int, int, Callable[[], Any]]] = [
        ("/start", a, 1, lambda: api.user_message(a, "/start")),
        ("/help", a, 1, lambda: api.user_message(a, "/help")),
        ("question", a, 1, lambda: api.user_message(a, "花呗逾期一个月会怎么样")),
        ("follow-up button", a, 1, lambda: api.press_button(a)),
        ("/reset", a, 1, lambda: api.user_message(a, "/reset")),
        ("/forget", a, 1, lambda: api.user_message(a, "/forget")),
        ("/topics", b, 1, lambda: api.user_message(b, "/topics")),
        ("topic button 催收边界", b, 1, lambda: api.press_button(b, label="催收边界")),
        ("/complain", b, 2, lambda: api.user_message(b, "/complain")),
        ("unknown command", b, 1, lambda: api.user_message(b, "/foo")),
        ("sticker", c, 1, lambda: first_c.append(api.user_message(c, kind="sticker")["message_id"])),
        ("photo", c, 1, lambda: api.user_message(c, kind="photo")),
        ("voice", c, 1, lambda: api.user_message(c, kind="voice")),
        ("document", c, 1, lambda: api.user_message(c, kind="document")),
        ("location", c, 1, lambda: api.user_message(c, kind="location")),
        ("edited message", c, 1, lambda: api.user_message(c, "改过的问题", edit_of=first_c[0])),
        ("group: chatter (no reply expected)", DEMO_GROUP, 0, lambda: api.user_message(DEMO_GROUP, "大家好", **group)),
        ("group: mention", DEMO_GROUP, 1,
         lambda: api.user_message(DEMO_GROUP, "催收可以打给我家人吗", mention_bot=True, **group)),
    ]
    ok = True
    print("waiting for the bot to poll…", file=out, flush=True)
    await api.wait_for_call("getUpdates", timeout=120)
    print(f"commands registered: {[cmd['command'] for cmd in api.commands]}", file=out)
    for title, chat_id, count, action in steps:
        print(f"\n## {title}", file=out)
        try:
            action()
            if count == 0:
                await api.settle(0.5)
                messages = api.unread(chat_id)
                if messages:
                    raise AssertionError(f"expected no reply, got {len(messages)}")
                print("(no reply, as expected)", file=out)
                continue
            messages = await api.wait_for_messages(chat_id, count, timeout=timeout)
        except (TimeoutError, LookupError, AssertionError) as exc:
            print(f"FAILED: {exc}", file=out)
            ok = False
            continue
        for message in messages:
            print(message.plain if len(message.plain) <= 400 else message.plain[:400] + "…", file=out)
            if message.buttons:
                print("  [buttons] " + " | ".join(text for text, _ in message.buttons), file=out)
    await api.settle(0.5)
    extra = sum(len(api.unread(chat)) for chat in (*DEMO_USERS, DEMO_GROUP))
    if extra:
        ok = False
        print(f"\nUNEXPECTED extra messages: {extra}", file=out)
    print("\nDEMO " + ("PASSED: every update answered" if ok else "FAILED"), file=out, flush=True)
    return ok


async def _main_async(args: argparse.Namespace) -> int:
    api = FakeBotAPI(args.token)
    await api.start(args.host, args.port)
    print(f"fake Bot API on {api.base_url}\n"
          f"  TELEGRAM_BASE_URL={api.base_url} TELEGRAM_BOT_TOKEN={api.token} python -m bot telegram",
          flush=True)
    if args.verbose:
        api.on_call = lambda c: c.method != "getUpdates" and print(
            f"{c.method} {json.dumps(c.params, ensure_ascii=False)[:200]}", flush=True)
    try:
        if args.demo:
            return 0 if await run_demo(api) else 1
        await asyncio.Event().wait()
        return 0
    finally:
        await api.stop()


def main(argv: list[str] | None = None) -> int:
    import bot.telegram.fake_api as package  # its docstring is the help text

    parser = argparse.ArgumentParser(prog="python -m bot.telegram.fake_api", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--demo", action="store_true", help="play one update of every kind, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every call the bot makes")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main_async(args))
    return 130
