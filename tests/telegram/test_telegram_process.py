"""`python -m bot telegram` as it is deployed: a real process, the real engine and
knowledge store, talking to the local fake Bot API over HTTP."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.telegram.fake_api import ThreadedFakeBotAPI, run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_the_bot_process_answers_every_kind_of_update_and_stops_on_sigterm():
    with ThreadedFakeBotAPI() as api:
        env = os.environ.copy()
        env.update(TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_BASE_URL=api.base_url, LOG_LEVEL="INFO")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "telegram"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not api.calls_to("getUpdates"):  # polling has started
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the bot did not start polling within 60 s"
                time.sleep(0.2)
            assert api.calls_to("setMyCommands")
            report = io.StringIO()
            # /start, a question, a button, /topics, /complain, sticker, photo, voice, location,
            # an edited message, a group mention, /reset, /forget ...
            answered = api._run(run_demo(api.api, out=report))
            assert answered, report.getvalue()
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stderr[-3000:]
        assert time.monotonic() - stopped < 10
        assert api.token.split(":", 1)[1] not in stderr  # the token never reaches the logs


def test_a_rejected_token_is_a_clear_message_not_a_traceback():
    with ThreadedFakeBotAPI() as api:
        env = os.environ.copy()
        env.update(TELEGRAM_BOT_TOKEN="123456:WRONG-token", TELEGRAM_BASE_URL=api.base_url)
        result = subprocess.run([sys.executable, "-m", "bot", "telegram"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "rejected TELEGRAM_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert "WRONG-token" not in result.stderr
