"""What kind of message this is, as the answer layer needs it: the judgement, plus
the shape checks that choose a reply's wording (a greeting, thanks, an empty message).

The judging itself is data-built (bot/judgement, from knowledge/judgement/);
this module only turns it into an Assessment. Runs on the normalised text
(simplified characters, lower case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.judgement import Judge, Judgement, Overrides
from bot.textnorm import DOMAIN_WORDS, has_domain_word, parse_overdue

THANKS = re.compile(r"^(好的|好|嗯|嗯嗯|ok|明白了|懂了|知道了)?[,，。. ]*(谢谢|多谢|感谢|谢了|谢啦|thanks?( you)?|thx|辛苦了)"
                    r"[你您啊呀了啦!！。.~～ ]*$")
WHO_ARE_YOU = re.compile(r"^(你是谁|你是什么|你是机器人吗|你是人工智能吗|你是ai吗|你是真人吗|你能做什么|你会什么|你有什么用|"
                         r"who are you|what are you|what can you do)[?？!！。.~～ ]*$")
GREETINGS = re.compile(r"^(在吗|在不在|你好|您好|hi|hello|哈喽|嗨|喂|有人吗|有人在吗|在么|早上好|晚上好)[?？!！。.~～ ]*$")
_WHAT_NOW = r"(怎么办|咋办|怎么弄|怎么搞|怎么处理|该怎么办|该咋办|怎么整)"
# The shape of an elliptical message ("那怎么办", "花呗逾期了怎么办", "在吗"): inside a
# conversation the dialogue reads these in the light of the topic.
VAGUE = re.compile(r"^(那|那我|那要|所以|然后|那现在|现在)?(我)?("
                   r"帮帮我|帮我|救命|求助|help|有问题|问个问题|我有个问题|请问|你好我想问一下|"
                   r"我想问(个|一个|一下)?(事|问题)?|想问一下|问一下|出事了|完了|怎么回事|咋回事|然后呢|"
                   r"(花呗|借呗|网贷|信用卡|网商贷|支付宝)?[和、跟]?(花呗|借呗)?(已经)?(逾期|欠款|欠钱|没还|还不上|还不起)?了?"
                   + _WHAT_NOW + r"?|花呗|借呗|催收)"
                   r"[了啊呀吗呢吧嘛,，。.!！?？~～ ]*$")
_WORDS = re.compile(r"[\w\u4e00-\u9fff]")
# Emoji-only messages that say someone is upset: asked gently what happened (with 12356), not "好的".
SAD_EMOJI = re.compile("[\U0001f62d\U0001f622\U0001f494\U0001f61e\U0001f614\U0001f625\U0001f630\U0001f631"
                       "\U0001f629\U0001f62b\U0001f97a\U0001f613\u2639\U0001f641]")
# Something to judge: words, or emoji ("👍", "🙏" are a friendly word, not an empty message).
_CONTENT = re.compile(r"[\w\u4e00-\u9fff\u2600-\u27bf\U0001f000-\U0001faff]")
# A routed reply (the threat reply, support first) replaces the answer to the question:
# only when the model gives its label at least this probability.
SURE = 0.5
# Labels a shape check may replace; never crisis, threat, victim, evasion or relative.
SHAPE_OVERRIDABLE = ("domain", "product", "smalltalk", "vague", "out_of_scope", "distress")


@dataclass(frozen=True)
class Assessment:
    label: str = "domain"  # one of bot.judgement.LABELS
    empty: bool = False
    wordless: bool = False  # emoji only: a message, but no answer to a question that wants words
    greeting: bool = False
    speaker: str | None = None  # "relative" | "identity_theft" | None (the borrower)
    rule: str | None = None
    crisis_risk: bool = False  # see Judgement.crisis_risk
    evasion_words: bool = False  # see Judgement.evasion_words
    scores: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def crisis(self) -> bool:
        return self.label == "crisis"

    def sure(self, label: str) -> bool:
        """The model itself leans clearly to `label` (for replies that set the question aside)."""
        return self.label == label and (self.rule is not None or self.scores.get(label, 1.0) >= SURE)

    @property
    def lines_first(self) -> bool:
        """The reply starts with the crisis lines: a crisis, or a message at risk of being one."""
        return self.crisis or self.crisis_risk

    @property
    def both_readings(self) -> bool:
        """A victim or a relative in an evader's words, not in danger: one line for the other
        reading ends the reply (never for someone threatened or at risk: no lecture there)."""
        return self.evasion_words and self.label in ("victim", "relative") and not self.crisis_risk

    @property
    def evasion(self) -> bool:
        return self.label == "evasion"

    @property
    def out_of_scope(self) -> bool:
        return self.label == "out_of_scope"

    @property
    def vague(self) -> bool:
        return self.label == "vague" or self.empty


def assess(normalised: str, judge: Judge | None, vector, overrides: Overrides | None = None) -> Assessment:
    """The Assessment of a normalised message; `vector(text)` gives its embedding.
    `overrides` (the lexicon's) judge alone when the store has no judgement model."""
    text = normalised.strip()
    if not _CONTENT.search(text):
        return Assessment(label="vague", empty=True)
    greeting = bool(GREETINGS.match(text.replace(" ", "")))
    judgement = judge.judge(text, vector(text)) if judge is not None else _without_model(text, greeting, overrides or Overrides())
    label, rule = judgement.label, judgement.rule
    wordless = not _WORDS.search(text)
    if label != "crisis" and wordless:
        if SAD_EMOJI.search(text):  # "😭😭": someone upset, asked gently what happened
            return Assessment(label="distress", empty=True, wordless=True, scores=judgement.scores)
        label = "smalltalk"  # "👍", "🙏": a friendly word back
    elif label != "crisis" and is_vague(text) and judgement.rule is None:
        label = "vague"  # only "我逾期了", "花呗", "怎么办": nothing in it to be a victim's report or a threat
    elif label in SHAPE_OVERRIDABLE:
        # The shapes are exact: a whole message that is a greeting, thanks, "你是谁", or
        # only "花呗逾期了怎么办" is what it looks like, whatever the model leaned to.
        if greeting or THANKS.match(text) or WHO_ARE_YOU.match(text):
            label = "smalltalk"
        elif is_vague(text):
            label = "vague"
        elif label == "vague" and (parse_overdue(text) or has_topic_word(text)):
            # "花呗逾期一个月了" (a stage to answer for), "那芝麻分呢" (a topic): specific enough to
            # search for, or to read in context. "花呗那个逾期的事" names only the product: vague.
            label = "domain"
    return Assessment(label=label, wordless=wordless,
                      greeting=greeting and label in ("smalltalk", "vague"),
                      speaker=judgement.speaker, rule=rule,
                      crisis_risk=judgement.crisis_risk, evasion_words=judgement.evasion_words,
                      scores=judgement.scores)


def _without_model(text: str, greeting: bool, overrides: Overrides) -> Judgement:
    """A store without labelled messages (ingest and the bot warn): the overrides and the shapes above."""
    if overrides.match("crisis", text):
        return Judgement("crisis", rule="crisis")
    if overrides.match("identity_theft", text):
        return Judgement("victim", rule="identity_theft", speaker="identity_theft")
    if overrides.match("evasion", text):
        return Judgement("evasion", rule="evasion")
    if greeting or THANKS.match(text) or WHO_ARE_YOU.match(text):
        return Judgement("smalltalk", rule="shape")
    if is_vague(text):
        return Judgement("vague", rule="shape")
    return Judgement("domain", rule="no-model")


# Domain words that name the product or the debt but no particular question about it:
# "花呗那个逾期的事" is still vague, "那芝麻分呢" is not.
GENERIC_DOMAIN_WORDS = frozenset({
    "花呗", "借呗", "网商贷", "支付宝", "蚂蚁", "网贷", "信用卡", "贷款", "借款", "逾期", "还款", "欠款",
    "欠债", "负债", "债务", "分期",
})
# A particular question about the product ("花呗逾期一天多少钱", "借呗能不能分期"), unlike the
# open "怎么办" the vague shape allows.
PARTICULAR_QUESTION = re.compile(r"多少|多久|几天|几个月|几年|会不会|能不能|可不可以|是不是|算不算|有没有|为什么|为啥|"
                                 r"什么时候|啥时候|哪里|在哪|区别|有什么|是什么|什么意思|吗|(?<![怎什])么[?？]?$")


def has_topic_word(normalised: str) -> bool:
    """Names something particular to ask about (征信, 罚息, 芝麻分, 95188...), or asks a particular
    question about the product: more than "花呗那个逾期的事"."""
    if any(word in normalised for word in DOMAIN_WORDS if word not in GENERIC_DOMAIN_WORDS):
        return True
    return has_domain_word(normalised) and bool(PARTICULAR_QUESTION.search(normalised))


def is_vague(normalised: str) -> bool:
    """Too broad to answer on its own ("怎么办", "花呗 借呗 逾期了"), spaces ignored."""
    return bool(VAGUE.match(normalised.strip().replace(" ", "")))
