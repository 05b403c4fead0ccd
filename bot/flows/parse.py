"""Reading flow answers leniently, as people type them: short, no punctuation, voice-input run-ons.

Everything here runs on normalised text (bot.textnorm.normalise_query:
simplified, half width, lower case, hb/jb expanded). Numbers go through the
one Chinese-numeral parser, bot.textnorm.chinese_number.
"""

from __future__ import annotations

import re

from bot.safety import GREETINGS, THANKS, WHO_ARE_YOU
from bot.textnorm import chinese_number

SKIP = re.compile(r"^(先)?(跳过|略过|下一步|下一个|不想说|不方便说|不想回答|skip|pass|next)(吧|了|一下)?[。.!！~～ ]*$")
RESUME = re.compile(r"^(继续|接着|继续吧|接着来|继续写|继续填)")
# A question asked in the middle of a flow, rather than an answer to the step: it ends like a
# question or asks how/why. "不知道是哪家公司" and "不清楚" are answers, not questions.
_QUESTION = re.compile(r"[?？]\s*$|[吗么嘛]\s*[?？。!！]?\s*$|怎么|为什么|为啥|能不能|可不可以|会不会|要不要|如何|咋办|咋整|"
                       r"是否|多少钱|多久能|有用吗")
_ANSWER_START = re.compile(r"^(我也)?(不知道|不清楚|不确定|不记得|忘了)")


def is_skip(normalised: str) -> bool:
    return bool(SKIP.match(normalised.strip()))


def is_resume(normalised: str) -> bool:
    return bool(RESUME.match(normalised.strip()))


def is_aside(normalised: str) -> bool:
    """A question or a bit of small talk in the middle of a flow: answer it, then ask the step again."""
    text = normalised.strip()
    if GREETINGS.match(text.replace(" ", "")) or THANKS.match(text) or WHO_ARE_YOU.match(text):
        return True
    return bool(_QUESTION.search(text)) and not _ANSWER_START.match(text)


# --- amounts ---------------------------------------------------------------------------------
# "每月1000", "一个月一千", "2万", "1.5w", "三千块", "20000元": the period words are taken out
# first, so "一个月" is never read as the amount 1.
_PERIOD = re.compile(r"(每个?月|一个?月|每期|一期|月供|每月份)")
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万点]+)\s*(万|w|千|k|百)?")
_SCALE = {"万": 10000, "w": 10000, "千": 1000, "k": 1000, "百": 100}
_NOTHING = re.compile(r"^(0|零|没有|没钱|拿不出|一分(钱)?(都|也)?(拿不出|没有))")


def parse_amount(normalised: str) -> int | None:
    """An amount of money in yuan, or None when the text names none (or only a range such as 两三千)."""
    text = _PERIOD.sub(" ", normalised.replace(",", "").replace("，", ""))
    if _NOTHING.match(text.strip()):
        return 0
    for match in _AMOUNT.finditer(text):
        digits, scale = match.group(1), match.group(2)
        if digits[0].isdigit():
            value = float(digits)
        else:
            value = chinese_number(digits.rstrip("点"))
            if value is None:
                continue
        return int(round(value * _SCALE.get(scale or "", 1)))
    return None


def money(amount: int) -> str:
    """20000 -> "2万元", 15000 -> "1.5万元", 1000 -> "1000元": as people say amounts."""
    if amount >= 10000 and amount % 1000 == 0:
        wan = amount / 10000
        return f"{wan:g}万元"
    return f"{amount}元"


# --- who and what (the complaint) ---------------------------------------------------------------------
ALIPAY = re.compile(r"支付宝|花呗|借呗|蚂蚁|网商")
_UNKNOWN = re.compile(r"不知道|不清楚|不确定|没说|没报|不肯说|陌生|不认识|不明")
_PLATFORM = re.compile(r"平台|官方|客服|支付宝|蚂蚁|花呗|借呗|自己的人")


def contact_kind(normalised: str) -> str:
    """"unknown", "platform" or "agency" (a collection company, named or not)."""
    if _UNKNOWN.search(normalised):
        return "unknown"
    if _PLATFORM.search(normalised) and not re.search(r"催收公司|外包|第三方|律所|律师", normalised):
        return "platform"
    return "agency"


_NIGHT_WORD = re.compile(r"半夜|凌晨|深夜|夜里|夜间|大半夜|晚上十二点|睡觉的时候")
_CLOCK = re.compile(r"(晚上|夜里|早上|早晨|清晨|上午)?\s*(\d{1,2}|[一二两三四五六七八九十]{1,3})\s*(点|:|：)")


def night_calls(normalised: str) -> bool:
    """Calls in the small hours or late evening: a time of 22:00 or later, or before 8:00 in the morning."""
    if _NIGHT_WORD.search(normalised):
        return True
    for when, number, _ in _CLOCK.findall(normalised):
        hour = int(number) if number.isdigit() else int(chinese_number(number) or -1)
        if when in ("晚上", "夜里") and hour in (10, 11, 12, 22, 23, 24):
            return True
        if when in ("早上", "早晨", "清晨") and 0 <= hour < 8:
            return True
        if not when and 22 <= hour <= 24:
            return True
    return False


# Conduct a complaint is about, as the person says it. Each name maps to the knowledge entry that
# states the rule it breaks (bot/flows/knowledge.py CONDUCT_RULES).
CONDUCT = {
    "volume": re.compile(r"十几|几十|\d{2,}\s*(个|次|通)|很多|好多|太多|不停|一直打|轮番|轰炸|打爆|反复|频繁|天天打"),
    "abuse": re.compile(r"骂|辱|侮|脏话|难听|威胁|恐吓|吓唬|弄死|打死|收拾|砍|杀"),
    "contacts": re.compile(r"家人|家里|我妈|妈妈|我爸|爸爸|父母|爸妈|老婆|老公|孩子|亲戚|朋友|同事|领导|单位|公司|通讯录|联系人"),
    "disclosure": re.compile(r"告诉|透露|泄露|群发|发到群|曝光|到处说|说我欠|爆通讯录"),
    "fake_legal": re.compile(r"律师函|传票|起诉书|法律文书|文书|法务|立案|判决书|拘留|逮捕|通缉"),
    "personal_account": re.compile(r"个人账户|个人卡|私人账户|个人银行卡|收款码|个人微信|转到.{0,6}卡|打到.{0,6}卡|私人卡"),
}
THREAT = re.compile(r"威胁|恐吓|弄死|打死|收拾|砍|杀|上门|人身")


def conduct(normalised: str) -> list[str]:
    """The kinds of conduct the text describes, in a fixed order (night calls first)."""
    found = ["night"] if night_calls(normalised) else []
    return found + [name for name, pattern in CONDUCT.items() if pattern.search(normalised)]


# --- evidence -------------------------------------------------------------------------------------------
_LIST_SPLIT = re.compile(r"(?:、|,|，|;|；|/|和|及|跟|与|还有|以及|\s)+")
_HAVE = re.compile(r"^(我)?(手里|手上|这边)?(有|都有|留了|保存了|存了)")
NO_EVIDENCE = re.compile(r"^(还)?(没有|没|无)(证据|留|保存)?(了)?$")


def evidence_items(answer: str) -> list[str]:
    """"有录音和截图" -> ["录音", "截图"]: the person's own words, as a list."""
    text = _HAVE.sub("", answer.strip())
    return [item.strip(" 。.！!") for item in _LIST_SPLIT.split(text) if item.strip(" 。.！!")]
