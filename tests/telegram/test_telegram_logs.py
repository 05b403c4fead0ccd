"""What `python -m bot telegram` writes to its log, as a real process against the fake Bot API:
key=value lines only, and no message text, no chat or user id, no token, also when a
handler raises.

The handler is made to raise by tests/telegram/fault_injection/sitecustomize.py, a
test-only module put on the process's PYTHONPATH (nothing of it ships in the bot).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.telegram import texts
from bot.telegram.fake_api import ThreadedFakeBotAPI

ROOT = Path(__file__).resolve().parents[2]
FAULT_DIR = Path(__file__).resolve().parent / "fault_injection"

USER = 731200457  # a private chat: chat id == user id
GROUP, MEMBER = -1007312009, 731200458
FAULT = "FAULT-7f3c"
QUESTION = "花呗逾期一个月会怎么样，我叫王小明"
GROUP_QUESTION = "催收可以打给我家人吗，我在杭州上班"
FAILING = f"{FAULT} 借呗还不上了，我的身份证号是330102199001011234"
LINE = re.compile(r'^ts=\S+ level=(debug|info|warning|error|critical) logger=\S+ (event=\S+|msg=)')


def test_log_lines_are_key_value_without_text_ids_or_token_also_when_a_handler_raises():
    with ThreadedFakeBotAPI() as api:
        env = os.environ.copy()
        env.update(TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_BASE_URL=api.base_url, LOG_LEVEL="DEBUG",
                   LOG_MESSAGE_TEXT="false", BOT_TEST_FAULT=FAULT,
                   PYTHONPATH=os.pathsep.join([str(FAULT_DIR), str(ROOT), env.get("PYTHONPATH", "")]))
        proc = subprocess.Popen([sys.executable, "-m", "bot", "telegram"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            while not api.calls_to("getUpdates"):
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the bot did not start polling within 90 s"
                time.sleep(0.2)

            api.user_message(USER, QUESTION)
            [answer] = api.wait_for_messages(USER, 1, timeout=60)
            assert answer.buttons  # follow-up suggestions
            api.press_button(USER)
            api.wait_for_messages(USER, 1, timeout=60)
            api.user_message(GROUP, GROUP_QUESTION, user_id=MEMBER, chat_type="supergroup", mention_bot=True)
            api.wait_for_messages(GROUP, 1, timeout=60)
            api.user_message(USER, FAILING)
            [notice] = api.wait_for_messages(USER, 1, timeout=60)
            assert notice.plain == texts.ERROR  # the user hears something went wrong
            api.user_message(USER, "/forget")
            api.wait_for_messages(USER, 1, timeout=60)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    print(stderr)  # shown when the test fails

    lines = stderr.splitlines()
    assert any("event=telegram_started" in line for line in lines), stderr[-3000:]
    assert any("event=reply" in line for line in lines)
    not_key_value = [line for line in lines if not LINE.match(line)]
    assert not_key_value == [], "\n".join(not_key_value[:20])

    # The handler that raised is logged: its event, the exception type and where, nothing it said.
    [error] = [line for line in lines if "event=handler_error" in line]
    assert "error=RuntimeError" in error
    assert any("sitecustomize.py" in line and "RuntimeError" in line for line in lines)
    assert "injected fault answering '" not in stderr  # (its source line is in the frames: fine)

    for private in (QUESTION, GROUP_QUESTION, FAILING, "王小明", "杭州", "330102199001011234", FAULT,
                    "测试用户", "测试群"):
        assert private not in stderr, f"{private!r} in the log"
    for number in (USER, GROUP, MEMBER, abs(GROUP)):
        assert str(number) not in stderr, f"id {number} in the log"
    token_secret = api.token.split(":", 1)[1]
    assert token_secret not in stderr and api.token not in stderr
    assert stdout == ""
