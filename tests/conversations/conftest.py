"""Every conversation fixture in this folder is a test item, named after the conversation.

The items replay through the real dialogue engine (bot.dialogue.build_engine),
built once per test session with a throwaway session store. Transcripts
(*.transcript.yaml) are not collected. See docs/replay.md.
"""

from bot.replay import engine_transport
from bot.replay.pytest_plugin import make_collect_file

pytest_collect_file = make_collect_file(engine_transport)
