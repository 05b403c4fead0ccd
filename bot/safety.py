"""Classify a message before retrieval: crisis, evasion request, out of scope, too vague.

Runs on the normalised text (simplified characters, lower case), so traditional
characters and full-width letters are caught too. Order matters: a person in
crisis is answered as such even when the message also mentions debt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.textnorm import has_domain_word

CRISIS_PATTERNS = [
    r"不想活", r"活不下去", r"活不成", r"活着(没|没有|毫无)(意思|意义|盼头|希望)", r"一了百了", r"自杀", r"轻生",
    r"寻死", r"(我|真|好|都)想死", r"想去死", r"不如死了", r"死了算了", r"死了就好", r"死了一了",
    r"跳楼", r"跳河", r"跳江", r"跳下去", r"割腕", r"上吊", r"烧炭", r"安眠药", r"农药",
    r"结束(我的|自己的)?生命", r"结束自己", r"结束一切", r"了结(自己|一切)", r"离开这个世界", r"撑不下去",
    r"生无可恋", r"遗书", r"不想(再)?醒(来|过来)", r"解脱了吧", r"以死", r"去死", r"一死了之", r"如果我不在了",
    r"我(要是|如果)?(死了|不在了).{0,8}(债|钱|欠款)", r"活着(好|太|真|很)累", r"(今晚|今天)就结束",
    # Asking what happens to the debt if *I* die is a warning sign, not an inheritance question
    # (the heirs entry answers "我爸走了，他的网贷要我还吗").
    r"我(要是|如果)?(死了|不在了|走了).{0,10}(贷|花呗|借呗|还)", r"(如果|要是|假如)我(走了|死了|没了)",
    r"药.{0,6}(准备好|攒够|吃下去)", r"不想再(活|撑)",
    r"kill myself", r"suicid", r"end (it all|my life)", r"want to die", r"self[- ]?harm", r"hurt myself",
    r"don'?t want to live",
]
EVASION_PATTERNS = [
    r"(怎么|如何|咋|教我|有没有办法).{0,8}(躲|逃|避开|甩掉|摆脱)(催收|还款|债)", r"躲(避)?催收", r"逃(避)?(债|还款|催收)",
    r"不(想|打算|准备)还(了|钱)?", r"不还(了|钱|行不行|会怎样|可以吗)", r"赖账", r"老赖.{0,6}(怎么|办法|技巧)",
    r"换(手机)?号", r"注销(手机号|号码|支付宝|账号)", r"跑路", r"假(的)?身份", r"伪造", r"冒用", r"借别人(的)?身份",
    r"转移(财产|资产|钱)", r"隐(匿|藏)(财产|资产|收入)", r"藏(钱|财产)", r"让(他们|催收)找不到",
    r"hide from .{0,15}collector", r"never (re)?pay", r"fake (id|identity)", r"avoid (paying|repay)",
]
OUT_OF_SCOPE_PATTERNS = [
    r"天气", r"下雨", r"气温", r"写(一)?首诗", r"作诗", r"诗歌", r"唱(首|个)歌", r"讲(个)?笑话", r"股票", r"炒股",
    r"基金(推荐|买哪)", r"比特币", r"彩票", r"作业", r"翻译一下", r"写(代码|程序)", r"python", r"javascript",
    r"菜谱", r"做饭", r"电影", r"游戏", r"星座", r"算命", r"减肥", r"旅游", r"足球", r"篮球", r"weather", r"poem",
    r"stock", r"recipe", r"homework", r"joke",
]
# Distress short of crisis: the answer should be the support entry, not only the practical one.
DISTRESS = re.compile(r"心态崩|崩溃|想找人聊|找人说说|找人倾诉|好绝望|很绝望|抑郁|睡不着|天天哭|"
                      r"焦虑|心慌|stressed|anxious|depressed|overwhelmed|hopeless|desperate|can'?n?o?t sleep|panic")
THANKS = re.compile(r"^(好的|好|嗯|嗯嗯|ok|明白了|懂了|知道了)?[,，。. ]*(谢谢|多谢|感谢|谢了|谢啦|thanks?( you)?|thx|辛苦了)"
                    r"[你您啊呀了啦!！。.~～ ]*$")
WHO_ARE_YOU = re.compile(r"^(你是谁|你是什么|你是机器人吗|你是人工智能吗|你是ai吗|你是真人吗|你能做什么|你会什么|你有什么用|"
                         r"who are you|what are you|what can you do)[?？!！。.~～ ]*$")
GREETINGS = re.compile(r"^(在吗|在不在|你好|您好|hi|hello|哈喽|嗨|喂|有人吗|有人在吗|在么|早上好|晚上好)[?？!！。.~～ ]*$")
_WHAT_NOW = r"(怎么办|咋办|怎么弄|怎么搞|怎么处理|该怎么办|该咋办|怎么整)"
# Too broad to answer without guessing: "怎么办", "在吗", "花呗逾期了怎么办" (which
# stage? which worry?). Inside a conversation the dialogue reads these in context.
VAGUE = re.compile(r"^(那|那我|那要|所以|然后|那现在|现在)?(我)?("
                   r"帮帮我|帮我|救命|求助|help|有问题|问个问题|我有个问题|请问|你好我想问一下|"
                   r"我想问(个|一个|一下)?(事|问题)?|想问一下|问一下|出事了|完了|怎么回事|咋回事|然后呢|"
                   r"(花呗|借呗|网贷|信用卡|网商贷|支付宝)?[和、跟]?(花呗|借呗)?(已经)?(逾期|欠款|欠钱|没还|还不上|还不起)?了?"
                   + _WHAT_NOW + r"?|花呗|借呗|催收)"
                   r"[了啊呀吗呢吧嘛,，。.!！?？~～ ]*$")

_crisis = re.compile("|".join(CRISIS_PATTERNS))
_evasion = re.compile("|".join(EVASION_PATTERNS))
_out_of_scope = re.compile("|".join(OUT_OF_SCOPE_PATTERNS))
_CONTENT = re.compile(r"[\w\u4e00-\u9fff]")


@dataclass(frozen=True)
class Assessment:
    crisis: bool = False
    evasion: bool = False
    out_of_scope: bool = False
    vague: bool = False
    empty: bool = False
    greeting: bool = False
    distress: bool = False


def assess(normalised: str) -> Assessment:
    """Flags for a normalised message (see bot.textnorm.normalise_query)."""
    text = normalised.strip()
    if not _CONTENT.search(text):
        return Assessment(empty=True, vague=True)
    if _crisis.search(text):
        return Assessment(crisis=True)
    evasion = bool(_evasion.search(text))
    domain = has_domain_word(text)
    out_of_scope = bool(_out_of_scope.search(text)) and not domain and not evasion
    greeting = bool(GREETINGS.match(text.replace(" ", "")))
    vague = greeting or is_vague(text)
    return Assessment(evasion=evasion, out_of_scope=out_of_scope, vague=vague and not evasion, greeting=greeting,
                      distress=bool(DISTRESS.search(text)))


def is_vague(normalised: str) -> bool:
    """Too broad to answer on its own ("怎么办", "花呗 借呗 逾期了"), spaces ignored."""
    return bool(VAGUE.match(normalised.strip().replace(" ", "")))


def is_domain(normalised: str) -> bool:
    return has_domain_word(normalised)
