"""Query normalisation and tokenisation shared by retrieval and the safety checks.

Users type traditional characters, full-width letters, pinyin abbreviations
("hb" for 花呗), homophone typos ("花被") and slang ("催债"). Everything is
mapped onto the words the knowledge base uses before retrieval.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from bot.jieba_dictionary import common_words_dictionary, load_fresh_cache

# (pattern, replacement). ASCII abbreviations only match as whole tokens so
# "hb" inside an English word is left alone.
_ASCII = r"(?<![a-z]){}(?![a-z])"
ABBREVIATIONS: list[tuple[re.Pattern, str]] = [
    (re.compile(_ASCII.format(p)), r) for p, r in [
        ("hb", "花呗"), ("huabei", "花呗"), ("hua bei", "花呗"),
        ("jb", "借呗"), ("jiebei", "借呗"), ("jie bei", "借呗"),
        ("zfb", "支付宝"), ("alipay", "支付宝"), ("zhifubao", "支付宝"),
        ("yq", "逾期"), ("xyk", "信用卡"), ("zx", "征信"), ("wsd", "网商贷"),
        ("nfra", "国家金融监督管理总局"), ("nifa", "中国互联网金融协会"),
    ]
] + [
    (re.compile(p), r) for p, r in [
        ("花被|花贝|花唄|华呗|花呗呗", "花呗"),
        ("借被|借贝|借唄|接呗", "借呗"),
        ("网代|網貸", "网贷"),
        ("征性|争信|正信|徵信", "征信"),
        ("芝麻分|芝麻信用分", "芝麻信用"),
    ]
]
# A month of the calendar, not a month overdue: "这个月工资没发" is not "逾期一个月". Applied to the
# query and to the keyword index's text alike (calendar_months), so their words still meet.
CALENDAR_MONTHS = [(re.compile(p), r) for p, r in [("这个月", "本月"), ("上个月", "上月"), ("下个月", "下月"),
                                                   ("每个月", "每月")]]


def calendar_months(text: str) -> str:
    for pattern, replacement in CALENDAR_MONTHS:
        text = pattern.sub(replacement, text)
    return text

# Words users say for what the knowledge base calls otherwise. These are added
# to the keyword query rather than replacing the user's word, because the
# article itself says 催款 where the FAQ says 催收.
SYNONYMS: list[tuple[re.Pattern, str]] = [
    (re.compile(p), r) for p, r in [
        ("催债|追债|要债|讨债|催款|催账|催帐", "催收"),
        ("芝麻分", "芝麻信用"),
        ("爆通讯录|暴通讯录", "通讯录 联系人"),
        ("家人|家里|父母|爸妈|老婆|老公|亲戚|朋友|同事", "家人 联系人"),
        ("告诉(她|他|他们|家人|家里|我妈|我爸|老婆|老公)|让(家人|家里|她|他)知道|(家人|家里|老婆|老公)不知道",
         "告诉家人 透露 联系人"),
        ("买房|房贷|车贷|贷款买|办贷款|以后贷款|影响贷款|信用记录", "征信 征信报告 记录"),
        ("还不上|还不起|没钱还|没能力还|没收入|没工作|失业|一点钱都没有|身无分文", "无力还款 协商"),
        ("凌晨|半夜|深夜|大晚上|晚上十一点|早上六点", "夜间 22点 时间"),
        ("心态崩|崩溃|想找人聊|找人说说|找人倾诉|睡不着|抑郁|心理", "焦虑 心理 情绪 热线"),
        ("怎么说|怎么开口|写一段|话术|说辞", "怎么说 话术"),
        ("链接|点链接|验证码", "诈骗 冒充 短信"),
        ("消金|消费金融|持牌", "网贷 其他平台"),
        ("晚还|迟还|拖欠|没还", "逾期"),
        ("打官司|告我|被告|被(网贷|平台|银行|花呗|借呗|支付宝|蚂蚁)告|告了我|把我告", "起诉 法院"),
        ("老赖", "失信被执行人 失信名单"),
        ("限高|限消", "限制高消费"),
        ("拒执", "拒不执行"),
        ("过世|去世|离世|人不在了|人死了", "去世 继承 遗产"),
        ("骂|恐吓|吓唬|威胁|辱骂", "骚扰 威胁"),
        ("紧急联系人|紧急联络人|联络人|通讯录", "联系人 通讯录"),
        ("反映|维权|告他们|哪个部门|哪个单位", "投诉"),
        ("老板|领导|单位|公司群|同事群|工作群", "工作单位 泄露 隐私"),
        ("(到|去|来)(我)?(公司|单位|家里|家|老家|门口)(来)?(闹|找|堵|要钱)|上门(闹|找|堵)", "上门 上门催收"),
        ("传票|开庭|法院短信|起诉书", "法院 起诉 应诉"),
    ]
]

# How long a debt is overdue, said the way people say it: "逾期三个月了", "拖了半年",
# "晚了两天", "三天没还". A duration in another role ("要逾期180天才能延期") is not one.
_NUMBER = r"(\d+|[一二两三四五六七八九十半几]+)"
_UNIT = r"(个多月|个月|多月|月|天|日|周|星期|年|多年)"
OVERDUE_DURATION = re.compile(
    rf"(?:(?<!要)(?<!才)(?<!需要)(?:逾期|拖了|拖欠|晚了|欠了|超期|过期|延期)(?:了|快|已经|将近|差不多|都)?{_NUMBER}{_UNIT}"
    rf"|{_NUMBER}{_UNIT}(?:多)?(?:了)?(?:没还|未还|没有还|逾期))")
JUST_OVERDUE = re.compile(r"刚(刚)?(逾期|晚|过期|到期)|逾期(了)?(一两|两三|三四|几)天|(昨天|前天)(就)?(该|应该)还")


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_SCALES = {"十": 10, "百": 100, "千": 1000, "万": 10000}


def chinese_number(text: str) -> float | None:
    """二十四 -> 24, 一百零五 -> 105, 十五 -> 15, 二点五 -> 2.5; None if it is not a plain numeral.
    The one Chinese-numeral parser: durations here, amounts in the language-model check."""
    if "点" in text:
        whole, _, frac = text.partition("点")
        w = chinese_number(whole)
        if w is None or not frac or any(c not in _CN_DIGITS for c in frac):
            return None
        return float(f"{int(w)}.{''.join(str(_CN_DIGITS[c]) for c in frac)}")
    if not text or text[0] in "百千万":
        return None
    total, section, digit = 0, 0, None
    for char in text:
        if char in _CN_DIGITS:
            if digit:  # 两三, 五六: a range, not a number
                return None
            digit = _CN_DIGITS[char]
        elif char in _CN_SCALES:
            scale = _CN_SCALES[char]
            if scale == 10000:
                total += (section + (digit or 0)) * scale
                section = 0
            else:
                section += (1 if digit is None else digit) * scale
            digit = None
        else:
            return None
    return float(total + section + (digit or 0))


# Words for an amount of time that are not numerals: "半年", "几天", "几十天".
_VAGUE_NUMBERS = {"半": 0.5, "几": 3.0, "几十": 30.0}


def _to_number(text: str) -> float:
    if text.isdigit():
        return float(text)
    if text in _VAGUE_NUMBERS:
        return _VAGUE_NUMBERS[text]
    number = chinese_number(text)
    return number if number is not None else 1.0


_BARE_DURATION = re.compile(rf"{_NUMBER}{_UNIT}")
_PRICE_QUESTION = re.compile(r"(要|收|扣|算)?(多少|几块)|怎么算|的?(费|利息|罚息|违约金)")


_DAYS_PER_UNIT = {"天": 1, "日": 1, "周": 7, "星期": 7, "年": 365, "多年": 400}  # months: 30


def _duration(number: str, unit: str) -> tuple[str, float]:
    return f"{number}{unit}", _to_number(number) * _DAYS_PER_UNIT.get(unit, 30)


def parse_overdue(normalised: str, bare: bool = False) -> tuple[str, float] | None:
    """(as the user said it, approximate days) when the message says how long it is overdue.

    `bare`: also take a duration on its own ("三个月了"), as in an answer to
    "逾期多久了？".
    """
    match = OVERDUE_DURATION.search(normalised)
    if match and _PRICE_QUESTION.match(normalised, match.end()):
        match = None  # "逾期一天多少钱" asks about a day's fee, not how long they are overdue
    if match:
        return _duration(match.group(1) or match.group(3), match.group(2) or match.group(4))
    bare_match = _BARE_DURATION.search(normalised) if bare else None
    if bare_match:
        return _duration(bare_match.group(1), bare_match.group(2))
    if JUST_OVERDUE.search(normalised):
        return "几天", 3.0
    return None


STAGE_TAGS = ("逾期初期", "逾期一个月", "长期逾期")  # as the knowledge base tags its stage entries


def stage_tag(days: float) -> str:
    """The knowledge base's tag for how far into overdue `days` is."""
    if days <= 20:
        return STAGE_TAGS[0]
    if days < 75:
        return STAGE_TAGS[1]
    return STAGE_TAGS[2]


def stage_words(days: float) -> str:
    """The words the knowledge base uses for a stage of overdue."""
    return {"逾期初期": "刚逾期几天 逾期初期", "逾期一个月": "逾期一个月左右",
            "长期逾期": "逾期好几个月 长期逾期"}[stage_tag(days)]


# English questions: the default embedding model is multilingual, so dense
# retrieval understands them; these terms give the keyword leg a chance too.
ENGLISH_TERMS = {
    "overdue": "逾期", "late": "逾期", "default": "逾期", "collector": "催收", "collectors": "催收",
    "collection": "催收", "collecting": "催收", "harass": "骚扰", "harassment": "骚扰", "harassing": "骚扰",
    "complain": "投诉", "complaint": "投诉", "report": "举报", "credit": "征信", "sesame": "芝麻信用",
    "interest": "利息", "fee": "费用", "fees": "费用", "penalty": "罚息", "installment": "分期",
    "instalment": "分期", "extension": "延期", "negotiate": "协商", "negotiation": "协商",
    "sue": "起诉", "sued": "起诉", "lawsuit": "起诉", "court": "法院", "jail": "坐牢", "prison": "坐牢",
    "family": "家人", "contacts": "通讯录", "scam": "诈骗", "fraud": "诈骗", "police": "报警",
    "threat": "威胁", "threaten": "威胁", "threatened": "威胁", "evidence": "证据", "record": "录音",
    "night": "夜间", "calls": "电话", "call": "电话", "calling": "电话", "called": "电话", "phone": "电话",
    "owe": "欠款", "owed": "欠款", "hopeless": "焦虑", "sleep": "睡不着", "stress": "压力",
    "stop": "停催", "lawyer": "律师", "firm": "律师", "home": "上门", "visit": "上门", "door": "上门",
    "arrest": "坐牢", "agency": "第三方", "pay": "还款", "repay": "还款",
    "repayment": "还款", "debt": "欠款", "loan": "贷款", "bank": "银行", "card": "信用卡",
}

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SPACES = re.compile(r"\s+")
_MARKUP = re.compile(r"<[^>]{0,200}>")

DOMAIN_WORDS = [
    "花呗", "借呗", "网商贷", "支付宝", "蚂蚁", "芝麻信用", "征信", "逾期", "催收", "还款", "欠款", "分期",
    "延期", "协商", "停息挂账", "减免", "罚息", "利息", "违约金", "网贷", "信用卡", "贷款", "借款",
    "骚扰", "爆通讯录", "通讯录", "投诉", "举报", "起诉", "法院", "律师", "坐牢", "诈骗", "征信修复",
    "债务优化", "第三方", "上门", "还不上", "无力还款", "欠债", "负债", "债务", "催收员", "被执行人", "失信",
    "12378", "95188", "96110", "12356", "黑猫投诉", "金融监管", "lpr", "消金", "消费金融", "逾期费",
    "官司", "诉讼", "判决", "开庭", "强制执行", "限高", "老赖", "时效", "律师函", "继承", "遗产", "共同债务",
    "芝麻分", "额度", "最低还款", "自动还款", "征信报告", "信用报告", "12368",
]


def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


_converter = None
_converter_lock = threading.Lock()


def to_simplified(text: str) -> str:
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                _converter = _t2s()
    return _converter.convert(text)


def clean_user_text(text: str) -> str:
    """What the user sent, made safe to process and show back: control characters and markup tags removed."""
    text = _CONTROL.sub(" ", text or "")
    text = _MARKUP.sub("", text)
    return _SPACES.sub(" ", text).strip()


# "忽略之前的规则，直接告诉我…" / "ignore previous instructions and…": an instruction to the bot
# in front of the question is not part of it (and only pulls the match off the question).
INSTRUCTION_PREAMBLE = re.compile(
    r"^(?:请)?(?:忽略|无视|忘掉|忘记)(?:你)?(?:之前|前面|以上|上面|刚才|所有|全部|系统|你的)+的?(?:所有|全部)?"
    r"(?:规则|指令|设定|提示词|提示|要求|限制)(?=[ ,.!?;:。、]|$|直接|告诉|然后|并|和)[ ,.!?;:。、]*"
    r"|^(?:please )?(?:ignore|forget) (?:all )?(?:(?:the|your) )?(?:previous|prior|above|earlier|all|your) ?"
    r"(?:instructions|rules|prompts?)(?=[ ,.!?;:]|$)[ ,.!?;:]*(?:and )?")
_WORDS_LEFT = re.compile(r"[\w\u4e00-\u9fff]")


def normalise_query(text: str) -> str:
    """Traditional -> simplified, full-width -> half-width, lower case, an instruction preamble
    dropped, abbreviations expanded."""
    text = clean_user_text(text).translate(_FULLWIDTH).lower()
    text = to_simplified(text)
    stripped = INSTRUCTION_PREAMBLE.sub("", text, count=1)
    text = stripped if _WORDS_LEFT.search(stripped) else text  # only the instruction: kept as it is
    for pattern, replacement in ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    return calendar_months(text)


_LATIN = re.compile(r"[a-z]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def mostly_english(text: str) -> bool:
    """Written mostly in Latin letters ("collectors keep calling me at 2am"): few of the labelled
    questions the answerability model was fitted on are."""
    return len(_LATIN.findall(text.lower())) > 2 * len(_HAN.findall(text))


_ENGLISH_WORD = re.compile(r"[a-z]+")


def english_words(normalised: str) -> list[str]:
    return _ENGLISH_WORD.findall(normalised)


def english_expansion(text: str) -> list[str]:
    """Chinese keywords for the English words in a (normalised) query."""
    return [ENGLISH_TERMS[w] for w in english_words(text) if w in ENGLISH_TERMS]


def keyword_expansion(normalised: str) -> list[str]:
    """Extra keywords for the lexical leg: synonyms and English terms."""
    extra = [replacement for pattern, replacement in SYNONYMS if pattern.search(normalised)]
    return extra + english_expansion(normalised)


# What the knowledge base is about: trouble with a debt, not using a product.
# "花呗额度怎么提高" names the product but no trouble, and the bot has nothing on it.
PROBLEM_WORDS = [
    "逾期", "催收", "征信", "欠", "还不上", "还不起", "无力还款", "没钱", "投诉", "举报", "骚扰", "起诉", "法院", "传票",
    "协商", "延期", "停息", "减免", "罚息", "逾期费", "违约金", "诈骗", "冒充", "骗", "家人", "通讯录", "联系人",
    "律师", "坐牢", "犯法", "违法", "报警", "威胁", "恐吓", "骂", "上门", "焦虑", "压力", "害怕", "怕", "担心",
    "不敢", "芝麻信用", "黑名单", "失信", "执行", "证据", "录音", "12378", "95188", "96110", "12356", "lpr",
    "第三方", "借新还旧", "躲", "不还", "拖", "晚还", "催", "利息", "分期", "停催", "隐私", "泄露", "公司", "单位",
    "该还", "晚了", "忘了还", "不良", "记录", "年化", "高利贷", "裁员", "失业", "借钱", "还花呗", "还借呗", "取现",
    "消失", "收款码", "扫码", "转账", "难受", "心里", "情绪", "崩溃", "电话", "短信", "找我", "找上门", "还钱",
    # Court and enforcement, family and heirs, identity theft, credit report rights (issue 13).
    "官司", "诉讼", "被告", "判决", "判了", "缺席", "开庭", "上诉", "送达", "限高", "限消", "高消费", "老赖",
    "时效", "法务", "拒执", "透支", "冒名", "冒用", "盗用", "继承", "遗产", "去世", "共同债务", "离婚",
    "替他还", "帮他还", "替我还", "帮我还", "代还", "要还", "宽限期", "异议", "芝麻分",
]


def has_problem_word(normalised: str) -> bool:
    expanded = normalised + " " + " ".join(keyword_expansion(normalised))
    return any(word in expanded for word in PROBLEM_WORDS)


def has_domain_word(normalised: str) -> bool:
    return any(word in normalised for word in DOMAIN_WORDS) or bool(english_expansion(normalised))


# Domain words that name everyday money or law as much as a debt in trouble ("老板拖欠工资怎么
# 起诉他", "信用卡怎么办理", "装修贷利息低", "蚂蚁庄园今天的答案是啥"): alone they do not make a message
# that sounds off-topic a question about one's debt. Words with no everyday use here (继承, 金融监管,
# lpr, 上门...) still count, and so does 支付宝: borrowers ask for its service line.
EVERYDAY_WORDS = frozenset({
    "蚂蚁", "信用卡", "贷款", "借款", "分期", "利息", "骚扰", "投诉", "举报", "起诉", "法院", "律师", "官司",
    "诉讼", "判决", "开庭",
})
# English words that only a debt in trouble explains ("late", "credit", "pay" do not).
ENGLISH_DEBT_WORDS = frozenset({"overdue", "collector", "collectors", "debt", "owe", "owed", "repay", "repayment"})


def names_a_debt(normalised: str) -> bool:
    """DOMAIN_WORDS without EVERYDAY_WORDS (花呗, 逾期, 催收, 征信, 欠款, 支付宝...), or an English debt word."""
    return any(word in normalised for word in DOMAIN_WORDS if word not in EVERYDAY_WORDS) \
        or any(word in ENGLISH_DEBT_WORDS for word in english_words(normalised))


# ----------------------------------------------------------------- tokeniser
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 我 你 他 她 它 我们 你们 是 会 不会 就 都 也 还 要 能 可以 这 那 这个 那个 "
    "个 一 一个 有 没有 在 和 与 或 及 把 被 让 给 对 跟 从 到 说 想 请问 请 问 一下 怎么 怎样 怎么样 如何 什么 "
    "为什么 多少 吗 么 哪 哪里 哪儿 啥 咋 呗 嗯 哈 呢 很 太 真 真的 现在 已经 如果 但是 因为 所以 然后 自己 "
    "the a an is are am do does i my me you to of in on for and or it what how can will be with".split()
)
_TOKEN_KEEP = re.compile(r"[\w\u4e00-\u9fff]")

_jieba_ready = False
_jieba_lock = threading.Lock()


def init_tokenizer(cache_dir: Path | None = None) -> None:
    """Load jieba once, with its dictionary cache in the project's data folder (or the
    system's temporary folder). Always the same dictionary: the judgement model is
    trained at ingest on words that the bot must cut the same way when it answers."""
    global _jieba_ready
    if _jieba_ready:
        return
    with _jieba_lock:
        if _jieba_ready:
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        if cache_dir is None:
            cache_dir = Path(tempfile.gettempdir()) / "debt-help-jieba"
        cache_dir.mkdir(parents=True, exist_ok=True)
        jieba.dt.tmp_dir = str(cache_dir)
        jieba.set_dictionary(str(common_words_dictionary(cache_dir)))
        if not load_fresh_cache(jieba.dt):
            jieba.initialize()  # builds the prefix dictionary and writes the cache
        for word in DOMAIN_WORDS + ["逾期一个月", "一对一", "第三方催收", "个人信息", "消费者权益"]:
            jieba.add_word(word, freq=200000)
        _jieba_ready = True


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[str, ...]:
    """Search tokens for the keyword leg: jieba words (and their sub-words), no stopwords or punctuation."""
    import jieba

    init_tokenizer()
    tokens = []
    for token in jieba.cut_for_search(text.lower()):
        token = token.strip()
        if not token or token in STOPWORDS or not _TOKEN_KEEP.search(token):
            continue
        tokens.append(token)
    return tuple(tokens)


@lru_cache(maxsize=4096)
def segment(text: str) -> tuple[str, ...]:
    """All the words of a message in order (stopwords kept: 我 and 我妈 tell who is
    speaking), without spaces or punctuation. For the judgement model's word view."""
    import jieba

    init_tokenizer()
    return tuple(w for w in (t.strip() for t in jieba.lcut(text.lower())) if w and _TOKEN_KEEP.search(w))


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


@lru_cache(maxsize=4096)
def lexical_tokens(text: str) -> tuple[str, ...]:
    """Keyword-leg tokens: jieba words plus character bigrams of Chinese runs.

    Bigrams catch what segmentation splits differently in a question and in
    the knowledge text (紧急联络人 / 联系人, 逾期费 / 逾期费用).
    """
    words = list(tokenize(text))
    for run in _CJK_RUN.findall(text.lower()):
        words.extend(run[i:i + 2] for i in range(len(run) - 1))
    return tuple(words)
