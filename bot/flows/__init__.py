"""Guided flows: from advice to action (a complaint draft, a negotiation script).

Dialogue-state machines inside the dialogue engine, not Telegram code: the CLI
chat, replay fixtures and Telegram all drive them through DialogueEngine.handle.
machine.py is the step machine, complaint.py and negotiation.py the two flows,
knowledge.py what a draft may cite, parse.py how answers are read, runner.py
how a flow fits into a conversation, texts.py the copy.
"""

from bot.flows.runner import FLOW_COMMANDS, FlowRunner

__all__ = ["FLOW_COMMANDS", "FlowRunner"]
