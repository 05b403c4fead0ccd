"""What the conversation knows about the person's situation (product, how long overdue,
abusive collection, who is speaking), kept between turns by the dialogue, and the one
sentence ("你提到…") that shows an answer took it into account."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot import texts


@dataclass
class Slots:
    """What the user told us that changes the guidance."""

    product: str | None = None  # 花呗 | 借呗 | 网商贷 | 信用卡 | 网贷
    overdue: str | None = None  # e.g. "一个月", "3天"
    abusive: bool = False
    # Who is speaking: None (the borrower), "relative" (a relative or contact of the
    # borrower) or "identity_theft" (someone whose identity was used to borrow).
    speaker: str | None = None
    # Which slot values an answer has already acknowledged, so "你提到…" is said once.
    acknowledged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"product": self.product, "overdue": self.overdue, "abusive": self.abusive,
                "speaker": self.speaker, "acknowledged": list(self.acknowledged)}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Slots":
        data = data or {}
        return cls(product=data.get("product"), overdue=data.get("overdue"), abusive=bool(data.get("abusive")),
                   speaker=data.get("speaker"), acknowledged=list(data.get("acknowledged") or []))


def slot_prefix(slots: Slots, topic: str) -> tuple[str, str]:
    """One sentence that shows the answer took the user's situation into account,
    and the key under which it counts as said."""
    if slots.speaker == "relative":
        return texts.SLOT_PREFIX_RELATIVE, "speaker:relative"
    if slots.abusive and topic in ("催收边界", "投诉维权"):
        return texts.SLOT_PREFIX_ABUSIVE, "abusive"
    if slots.overdue and topic in ("催收流程", "征信影响", "利息费用", "还款协商"):
        text = texts.SLOT_PREFIX_OVERDUE.format(product=slots.product or "", duration=slots.overdue)
        return text, f"overdue:{slots.product}:{slots.overdue}"
    return "", ""
