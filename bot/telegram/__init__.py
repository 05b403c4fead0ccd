"""The Telegram front end (python-telegram-bot v22, asyncio).

`run(settings)` is what `python -m bot telegram` calls. `build_application(settings, engine)`
builds the Application around any engine with `handle/reset/forget` (see engine.Engine).
"""

from bot.telegram.app import build_application, get_frontend, run, serve

__all__ = ["build_application", "get_frontend", "run", "serve"]
