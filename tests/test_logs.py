"""bot.logs.configure_logging: the project's key=value lines, whatever configured logging first."""

from __future__ import annotations

import io
import logging
import sys

from bot.logs import configure_logging, is_installed_console_handler


def test_configure_logging_replaces_a_console_handler_installed_first(capsys):
    root = logging.getLogger()
    # What logging.basicConfig() (or a library) leaves behind: a plain handler on stderr.
    first = logging.StreamHandler(sys.stderr)
    first.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(first)
    out = io.StringIO()
    try:
        configure_logging("INFO", stream=out)
        configure_logging("INFO", stream=out)  # twice: still one handler
        assert first not in root.handlers
        assert sum(is_installed_console_handler(h) for h in root.handlers) == 1

        log = logging.getLogger("bot.test")
        log.info("event=reply user=3fa1c09b2e kind=answer")
        log.warning("plain words")
        secret = "我欠了招商银行三万二"
        try:
            raise ValueError(f"could not parse {secret}")
        except ValueError:
            log.exception("turn failed")
    finally:
        root.removeHandler(first)

    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # one line per record, the traceback included
    assert lines[0].startswith("ts=") and lines[0].endswith(
        "level=info logger=bot.test event=reply user=3fa1c09b2e kind=answer")
    assert lines[1].endswith('level=warning logger=bot.test msg="plain words"')
    assert 'msg="turn failed" trace="builtins.ValueError' in lines[2] and "test_logs.py" in lines[2]
    assert secret not in out.getvalue()
    assert capsys.readouterr().err == ""  # nothing went through the replaced handler


def test_handlers_that_write_elsewhere_are_kept(tmp_path):
    root = logging.getLogger()
    to_file = logging.FileHandler(tmp_path / "bot.log")
    root.addHandler(to_file)
    try:
        configure_logging("INFO", stream=io.StringIO())
        assert to_file in root.handlers
    finally:
        root.removeHandler(to_file)
        to_file.close()
