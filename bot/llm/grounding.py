"""The grounding check: what a model's answer may state, given the context it was shown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.textnorm import chinese_number

_CITATION = re.compile(r"[\[［【]\s*(\d{1,2}(?:\s*[,，、\-–~～]\s*\d{1,2})*)\s*[\]］】]")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.S)
_LAW_NAME = re.compile(r"《([^《》\n]{1,60})》")
_LAW_ARTICLE = re.compile(r"第[0-9零〇一二两三四五六七八九十百千]+条")
# Names of rules written without 《》: the keyword and the characters before it.
_LAW_WORD = re.compile(r"([\u4e00-\u9fff]{0,20})(法典|条例|管理办法|保护法|司法解释|自律公约|业务指引|工作指引|刑法)")
_TIME = re.compile(r"(?<!\d)(\d{1,2})\s*[:：]\s*(\d{2})(?!\d)")
_UNITS = r"(%|％|‰|元|块钱|块|万元|万|亿元|亿|倍|年|个月|月|周|星期|天|日|小时|点|次|期)"
_AMOUNT = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*" + _UNITS)
_PERCENT_WORDS = re.compile(r"(百分之|千分之|万分之)([零〇一二两三四五六七八九十百点]+)")
_PER = {"百分之": 1, "千分之": 10, "万分之": 100, "%": 1, "％": 1, "‰": 10}  # -> %
_CN_AMOUNT = re.compile(r"(?<![\d.零〇一二两三四五六七八九十百千万])([零〇一二两三四五六七八九十百千万]+)(元|块钱|块|万元|万|倍|年|个月|周|星期|天|小时)")
_PHONE = re.compile(r"(?<![\d.])\d+(?:-\d+)*(?![\d.])")
_UNIT_ALIASES = {"％": "%", "块钱": "元", "块": "元", "个月": "月", "星期": "周", "日": "天"}
_UNIT_SCALES = {"万元": 10_000, "万": 10_000, "亿元": 100_000_000, "亿": 100_000_000}  # -> 元
def _amount(number: float, unit: str) -> tuple[str, str]:
    unit = _UNIT_ALIASES.get(unit, unit)
    if unit in _UNIT_SCALES:
        number, unit = number * _UNIT_SCALES[unit], "元"
    elif unit in _PER:
        number, unit = number / _PER[unit], "%"
    return f"{round(number, 6):g}", unit


def _amounts(text: str, *, answer: bool) -> set[tuple[str, str]]:
    """(value, unit) pairs stated in `text`: 24% = 百分之二十四, 0.05% = 万分之五, 3个月 = 三个月,
    1万元 = 10000元, 22:00 = 22点."""
    found: set[tuple[str, str]] = set()
    for match in _AMOUNT.finditer(text):
        found.add(_amount(float(match.group(1)), match.group(2)))
    for match in _TIME.finditer(text):
        found.add(_amount(float(match.group(1)), "点"))
    for match in _PERCENT_WORDS.finditer(text):
        number = chinese_number(match.group(2))
        if number is not None:
            found.add(_amount(number, match.group(1)))
    for match in _CN_AMOUNT.finditer(text):
        numeral, unit = match.groups()
        # "一天", "一年", "一个月" are as often idiom as fact; checked only in Arabic digits.
        if answer and numeral == "一":
            continue
        number = chinese_number(numeral)
        if number is not None:
            found.add(_amount(number, unit))
    return found


def _phone_like(text: str) -> list[str]:
    """Digit groups of three or more digits (hyphens removed): phone numbers, hotlines, years, codes."""
    text = _TIME.sub(" ", text)
    out = []
    for match in _PHONE.finditer(text):
        digits = match.group(0).replace("-", "")
        if len(digits) >= 3:
            out.append(digits)
    return out


@dataclass
class Grounding:
    ok: bool
    text: str = ""  # the answer with citations renumbered to follow the reply's sources
    cited: list[int] = field(default_factory=list)  # 1-based context numbers, in reply order
    problems: list[str] = field(default_factory=list)  # "kind: detail"


def check_grounding(answer: str, context: str, n_sources: int, *, partial: bool = False) -> Grounding:
    """Is every checkable fact in `answer` in `context`? Renumbers [n] to the order of first citation.

    `partial` checks a prefix of a streamed answer: no requirement yet to be non-empty or to cite.
    """
    problems: list[str] = []
    cited: list[int] = []

    def renumber(match: re.Match) -> str:
        numbers: list[int] = []
        for part in re.split(r"\s*[,，、]\s*", match.group(1).strip()):
            low, _, high = re.sub(r"\s*[–~～]\s*", "-", part).partition("-")
            numbers += list(range(int(low), int(high) + 1)) if high and int(high) - int(low) < 10 else [int(low)]
        out = []
        for n in numbers:
            if not 1 <= n <= n_sources:
                problems.append(f"citation: [{n}] does not exist")
                continue
            if n not in cited:
                cited.append(n)
            out.append(f"[{cited.index(n) + 1}]")
        return "".join(out)

    text = _CITATION.sub(renumber, answer).strip()
    # Facts are checked on the text without citation markers.
    plain = _CITATION.sub(" ", answer)
    context_plain = _CITATION.sub(" ", context)
    context_numbers = _phone_like(context_plain)
    for number in _phone_like(plain):
        if not any(number in known for known in context_numbers):
            problems.append(f"number: {number} is not in the context")
    known_amounts = _amounts(context_plain, answer=False)
    for value, unit in sorted(_amounts(plain, answer=True) - known_amounts):
        problems.append(f"amount: {value}{unit} is not in the context")
    for match in _LAW_NAME.finditer(plain):
        if match.group(1).strip() not in context_plain:
            problems.append(f"law name: 《{match.group(1)}》 is not in the context")
    for match in _LAW_ARTICLE.finditer(plain):
        if match.group(0) not in context_plain:
            problems.append(f"article: {match.group(0)} is not in the context")
    for match in _LAW_WORD.finditer(_LAW_NAME.sub(" ", plain)):
        prefix, word = match.groups()
        # Grounded when the keyword with at least the two characters before it is in the context.
        if len(prefix) >= 2 and (prefix[-2:] + word) not in context_plain:
            problems.append(f"rule name: …{prefix[-6:]}{word} is not in the context")
    if not partial:
        if not text:
            problems.append("empty: no answer text")
        elif not cited:
            problems.append("uncited: cites no source")
    return Grounding(not problems, text, cited, problems)


def visible_text(raw: str) -> str:
    """The model's text as a user may see it: no <think> blocks (self-hosted reasoning models), no bold."""
    return _THINK.sub("", raw).replace("**", "").strip()


_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


def sentence_prefix(text: str) -> str:
    """The text up to its last sentence end: a streamed number or 《name》 is never shown half-written."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[:ends[-1]].rstrip() if ends else ""
