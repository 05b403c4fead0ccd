"""Text cleaning shared by the loaders, and the checks for machine-mangled text.

The seed article lost words when it was scraped (e.g. "《个人信息保》" for
《个人信息保护法》, "不得采用、胁迫" with 暴力 missing). Such sentences must not
reach users as if they were clean, so the loaders refuse text that still
carries the known marks of that damage.
"""

from __future__ import annotations

import re
import unicodedata

# Fragments the scraper's word-stripping left behind in the seed article.
KNOWN_MANGLED_FRAGMENTS = (
    "《个人信息保》",
    "《消费者权益保》",
    "被的更猛",
    "不得采用、",
    "可之一时间",
    "恶意扰",
    "扰、等",
    "配合方的工作",
)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_CJK = r"\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise whitespace without touching Chinese punctuation.

    NFKC is deliberately not applied: it would turn "，" into "," in text users read.
    """
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH).replace("\r\n", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _SPACE_BETWEEN_CJK.sub("", text)
    text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


def find_mangled_text(text: str) -> list[str]:
    """Fragments in `text` that show scraping damage: known fragments and unclosed 《.》 titles."""
    found = [frag for frag in KNOWN_MANGLED_FRAGMENTS if frag in text]
    for line in text.split("\n"):
        depth = 0
        for ch in line:
            if ch == "《":
                depth += 1
            elif ch == "》":
                depth -= 1
            if depth < 0 or depth > 1:
                break
        if depth != 0:
            found.append(line.strip()[:40])
    return found


# A closing quote or bracket stays with the sentence it ends.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])(?![”’」』）)\]])|\n+")


def split_sentences(text: str) -> list[str]:
    """Split Chinese text on 。！？；(and ASCII !?;) and newlines, keeping the punctuation."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]
