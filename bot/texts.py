"""Fixed user-facing copy (Simplified Chinese). Facts and numbers live in knowledge/;
the only phone numbers here are the crisis lines, which must be shown even if the
store is unavailable, and a test checks each appears in the knowledge base."""

CRISIS_LINES = (
    "- 全国心理援助热线：12356（各地接听时间不同，暂时没人接就打下面的号码）\n"
    "- 北京心理危机研究与干预中心：010-82951332（据报道24小时有人接听）；"
    "免费热线 800-810-1117（资料较早，手机可能打不通）\n"
    "- 如果你正处在危险中，请马上拨打 110 或 120。"
)
CRISIS = (
    "听到你这么说，我很担心你。你现在的安全，比任何一笔欠款都重要。\n\n"
    "如果你有伤害自己的念头，请现在就联系能帮你的人：\n" + CRISIS_LINES + "\n\n"
    "也可以告诉身边一个信任的人，请他现在陪着你。\n\n"
    "欠款的事是可以一步一步处理的，不必一个人扛。等你愿意的时候，我可以陪你看看怎么和平台协商还款。"
)
# Before any reply to a message that might hint at self-harm (bot/judgement: crisis risk).
CRISIS_RISK_LINE = "先说一句：如果你有伤害自己的念头，请马上打 12356（全国心理援助热线）或 110，你不用一个人扛。\n\n"
CRISIS_SUGGESTIONS = ["逾期了很焦虑怎么办", "还不上钱怎么和平台协商"]

NO_EVASION_HELP_LINE = "另外说一句：如果是想躲开催收、不还这笔钱，这个我帮不了，拖下去通常会更糟；能还多少就主动和平台商量多少，是更稳的路。"
EVASION_PREFACE = "躲避催收、不还款的办法我不能提供，这样做通常会让情况更糟。更稳妥的路是主动协商。\n\n"
THREAT_PREFACE = (
    "对方威胁要伤害你或你的家人，这已经不是正常催收。如果你觉得有现实的危险，请马上拨打 110 报警；"
    "把通话录音、短信和聊天截图都保存好。被这样威胁一定很害怕，你不用一个人扛。\n\n"
)
IDENTITY_THEFT_PREFACE = "如果这笔借款不是你本人借的，先把情况留下记录，再按下面的步骤去核实和处理。\n\n"

DECLINE_OUT_OF_SCOPE = (
    "这个问题不在我能帮忙的范围里，抱歉。\n\n"
    "我专门解答欠款逾期的相关问题，比如花呗、借呗逾期后会怎样、怎么协商还款、征信影响，"
    "以及遇到催收骚扰怎么投诉。你可以直接问我这些。"
)
DECLINE_NOT_IN_KNOWLEDGE = (
    "这个问题我没有可靠的资料，不想给你说错。\n\n"
    "最准确的答案在支付宝 App 里对应的产品页面（比如花呗、借呗的账单和设置页），"
    "也可以打支付宝客服 95188 直接问；如果是要投诉催收，可以打 12378。\n\n"
    "我能帮你的有：逾期后会怎么催收、怎么协商延期或分期、征信影响、催收不能做什么、去哪里投诉。"
)
# A question about another lender that only an Alipay entry would answer: that lender's
# rules may differ, and 95188 cannot answer for it.
DECLINE_OTHER_LENDER = (
    "{lender}的具体规则我这里没有可靠的资料，它和花呗、借呗的规则不一定一样，不想给你说错。\n\n"
    "最准确的答案在{ask}，直接问他们就好；如果是要投诉催收，可以打 12378。\n\n"
    "我能帮你的有：逾期后一般会怎么催收、怎么协商延期或分期、征信影响、催收不能做什么、去哪里投诉。"
)
COMMAND_HINT_OPTIONS = ["逾期一个月会怎么催收", "怎么和平台协商还款", "催收骚扰去哪里投诉"]
SCOPE_SUGGESTIONS = ["逾期一个月会怎么催收", "怎么和平台协商分期还款", "催收骚扰去哪里投诉"]

CLARIFY_GENERAL = "别着急，我们一件一件来。你最想先了解哪方面？"
CLARIFY_BETWEEN = "我想确认一下，你问的是下面哪一个？点一下就好；都不是的话，换个说法再问我。"
CLARIFY_GREETING = "你好，我在。我可以帮你了解欠款逾期后的情况和可以做的事。你想先问哪方面？"
CLARIFY_UPSET = ("看起来你现在不太好受。愿意的话，用一两句话说说发生了什么，我陪你一起想办法。"
                 "如果有伤害自己的念头，请马上打 12356（全国心理援助热线）或 110。")
CLARIFY_EMPTY = "我没看到文字内容。可以用一两句话告诉我你遇到的情况吗？比如“花呗逾期一个月会怎么样”。"
CLARIFY_TOO_LONG = (
    "你发来的内容有点长（约{chars}字），我怕理解偏了。\n\n"
    "能用一两句话说说你最想问的问题吗？比如“逾期一个月会怎么催收”。"
)
CLARIFY_OPTIONS = ["逾期后会怎么催收", "怎么和平台协商还款", "逾期对征信有什么影响", "被催收骚扰怎么投诉"]

SLOT_PREFIX_OVERDUE = "你提到{product}逾期{duration}。"
SLOT_PREFIX_RELATIVE = "你是在替家人或朋友问。"
SLOT_PREFIX_ABUSIVE = "你提到催收方式让你很难受，这不是你应该承受的。"

RESET = "好的，我们重新开始。之前的对话内容不会再影响回答。你想了解什么？"
FORGET = "已删除我为这段对话保存的全部信息。之后如果再来问，我们会从头开始。"

ANSWER_DISCLAIMER = "以上为一般信息，不构成法律意见；具体金额和规则以平台账单页和官方渠道为准。"
# Added by data, not by each answer's prose: when an entry rests on a source that the
# registry (knowledge/sources.yaml) marks `secondary` (news, reposts, Q&A pages).
HEDGED_NOTE = "以上部分内容来自公开报道或网上公开资料，具体以平台和官方渠道的答复为准。"
ANSWER_DISCLAIMER_HEDGED = ("以上为一般信息，部分内容来自公开报道或网上公开资料，不构成法律意见；"
                            "具体金额和规则以平台账单页和官方渠道为准。")

COMMAND_HELP = (
    "我可以帮你了解欠款逾期后的情况：催收会怎么进行、怎么协商还款、征信影响、逾期费用、"
    "催收不能做什么、遇到骚扰去哪里投诉。直接用一句话问我就行。\n\n"
    "/complaint 一步步帮你写投诉催收的材料，/negotiate 帮你准备和平台协商还款的话术，/cancel 中途退出。\n"
    "/reset 重新开始对话，/forget 删除我为这段对话保存的信息。"
)

ALSO_RELEVANT = "另外，关于“{title}”：{first_line}"

ACKNOWLEDGE = "好的。有想问的，直接用一句话告诉我就行，比如“逾期一个月会怎么催收”。"
THANKS = "不客气。欠款的事慢慢来，一步一步处理。之后还有想问的，随时来找我。"
WHO_AM_I = (
    "我是一个帮你了解欠款逾期问题的助手，不是真人，也不是律师或平台客服。\n\n"
    "我的回答只来自整理过的资料，会注明出处：比如催收会怎么进行、怎么协商还款、征信影响、"
    "催收不能做什么、遇到骚扰去哪里投诉。具体金额和规则，请以平台账单页和官方渠道为准。"
)
