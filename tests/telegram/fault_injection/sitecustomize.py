"""Test-only fault injection for a real `python -m bot telegram` process.

A test puts this folder on PYTHONPATH and sets BOT_TEST_FAULT=<marker>; Python
imports this module at start-up (site.py), and once `bot.dialogue` is imported
its DialogueEngine.handle raises for any message containing the marker, with
an exception message quoting that message and the conversation id, the worst
case for the logs. Nothing of this ships in the bot: without the folder on
PYTHONPATH it does not exist.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

MARKER = os.environ.get("BOT_TEST_FAULT", "")
TARGET = "bot.dialogue"


def _patch(module) -> None:
    original = module.DialogueEngine.handle

    def handle(self, conversation_id, text, on_partial=None):
        if MARKER in text:
            raise RuntimeError(f"injected fault answering {text!r} in conversation {conversation_id}")
        return original(self, conversation_id, text, on_partial=on_partial)

    module.DialogueEngine.handle = handle


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds bot.dialogue the normal way and patches it right after it has been executed."""

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if MARKER:
    sys.meta_path.insert(0, _PatchOnImport())
