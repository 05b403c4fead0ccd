"""`python -m bot.replay ...`, the same as `python -m bot replay ...`."""

import sys

from bot.replay.cli import main

sys.exit(main())
