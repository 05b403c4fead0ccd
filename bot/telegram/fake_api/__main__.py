"""`python -m bot.telegram.fake_api [--port 8081] [--demo]`."""

import sys

from bot.telegram.fake_api.demo import main

sys.exit(main())
