"""Judgement: what kind of message the bot got (crisis, victim, evasion, ...) and who is speaking."""

from bot.judgement.judge import Judge, Judgement, Overrides
from bot.judgement.labels import LABELS

__all__ = ["Judge", "Judgement", "LABELS", "Overrides"]
