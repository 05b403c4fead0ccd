"""Fixed Telegram copy (Simplified Chinese), already in Telegram HTML.

Everything here is static: no dynamic string is ever interpolated into these
constants without `html.escape`. Facts (phone numbers, complaint channels,
legal details) are NOT written here: they come from the knowledge base through
the engine, so /complain asks the engine a fixed question instead.
"""

from __future__ import annotations

# --- commands ---------------------------------------------------------------------
# (command, description shown in Telegram's command menu), registered with setMyCommands.
COMMANDS: list[tuple[str, str]] = [
    ("start", "开始使用：我能做什么、隐私说明"),
    ("help", "使用帮助"),
    ("topics", "按主题浏览常见问题"),
    ("complain", "被催收骚扰：投诉渠道和证据清单"),
    ("complaint", "一步步写投诉材料（生成草稿）"),
    ("negotiate", "准备和平台协商还款的话术"),
    ("cancel", "退出正在填写的内容"),
    ("reset", "重新开始对话"),
    ("forget", "删除我为你保存的对话信息"),
]

WELCOME = (
    "你好，我是一个帮你了解<b>花呗、借呗等消费贷逾期</b>问题的助手。"
    "欠款逾期的人很多，先别慌，我们一步一步来。\n\n"
    "<b>我能帮你</b>\n"
    "• 了解逾期后一般会发生什么：催收流程、征信影响、利息费用、会不会被起诉\n"
    "• 弄清催收的边界、怎么和平台协商还款、去哪里投诉、怎么识别诈骗\n"
    "• 每个回答都会注明所依据的来源\n\n"
    "<b>我做不到</b>\n"
    "• 我不是律师，回答只是一般信息，<b>不构成法律意见</b>；具体情况请以平台和官方渠道为准，必要时咨询律师或法律援助机构\n"
    "• 我看不到你的账户，也不能替你还款、减免费用或“停催”\n\n"
    "<b>隐私说明</b>\n"
    "你的消息只用来回答你的问题，我只保留继续对话所需的最少信息，不记录聊天原文。"
    "请不要发给我身份证号、银行卡号、密码或验证码。"
    "随时发送 /forget，就能删除我为你保存的对话信息。\n\n"
    "直接打字告诉我你遇到的情况就可以，比如“花呗逾期一个月会怎么样”。"
    "也可以点下面的主题看看。"
)

HELP = (
    "<b>怎么用</b>\n"
    "像聊天一样直接提问就好，比如“催收天天给我家人打电话怎么办”。"
    "回答下面的按钮可以直接点，继续问相关的问题。\n\n"
    "<b>命令</b>\n"
    "/topics 按主题浏览常见问题\n"
    "/complain 被催收骚扰时：投诉渠道和要保存的证据\n"
    "/complaint 一步步帮你写投诉材料，最后生成草稿\n"
    "/negotiate 帮你准备和平台协商还款时要说的话\n"
    "/cancel 退出正在填写的内容\n"
    "/reset 换个话题，重新开始\n"
    "/forget 删除我为你保存的对话信息\n"
    "/start 我能做什么、隐私说明\n\n"
    "在群里，请@我或回复我的消息，我才会回答。涉及个人欠款的情况，更建议私聊我。\n\n"
    "我的回答只是一般信息，不构成法律意见。"
)

TOPICS_INTRO = "你想了解哪方面？点一个主题，我先讲讲最常见的问题。"

# Topic label -> the representative question sent through the engine when pressed.
# Order is the keyboard order; callback data carries the index, so append only.
TOPICS: list[tuple[str, str]] = [
    ("催收流程", "逾期以后一般会怎么被催收？"),
    ("还款协商", "还不上钱，怎么和平台协商延期或分期还款？"),
    ("征信影响", "花呗借呗逾期会不会上征信？"),
    ("利息费用", "逾期以后的利息和费用怎么算？"),
    ("法律诉讼", "逾期会不会被起诉？"),
    ("催收边界", "催收人员有哪些行为是不允许的？"),
    ("投诉维权", "遇到催收骚扰，去哪里投诉？"),
    ("防范诈骗", "怎么识别冒充催收的诈骗？"),
    ("心理支持", "欠了钱压力很大、很焦虑，怎么办？"),
]

# /complain: complaint channels and the evidence checklist, both from the knowledge base
# (no phone numbers here). Two questions, answered in turn: one retrieval returns one
# entry, and a combined question brings back only one of the two.
COMPLAIN_QUESTIONS: tuple[str, ...] = ("被违规催收了，可以去哪里投诉", "投诉催收要保存哪些证据")

# --- replies to things the bot cannot read -----------------------------------------------
NON_TEXT = {
    "sticker": "收到你的表情 🙂 不过我只能看懂文字。有什么想问的，直接打字告诉我就好。",
    "photo": (
        "我暂时看不了图片和视频。如果是催收短信或账单截图，可以把关键内容打成文字发给我"
        "（记得先去掉身份证号、卡号等个人信息）。"
    ),
    "voice": "我暂时还听不了语音。方便的话，用文字简单说说你的情况吧。",
    "document": "文件我打不开。可以把想问的内容直接打字发给我（记得先去掉个人信息）。",
    "location": "不需要发送位置哦。为了保护你的隐私，我不会使用位置信息。有什么想问的，直接打字告诉我。",
    "contact": "请不要发送联系人信息，我用不到它，也不会保存。有问题直接打字问我就好。",
    "other": "我只能看懂文字消息。直接打字告诉我你遇到的情况吧。",
}

CAPTION_ONLY = "图片和文件里的内容我看不到，先回答你附上的文字。需要的话，也可以把关键内容打成文字发给我（记得先去掉个人信息）。"

EDITED = "看到你修改了消息 🙂 修改后的内容我不会重新回答。如果想问新的问题，直接再发一条就好。"

UNKNOWN_COMMAND = "这个命令我不认识。可以发送 /topics 浏览常见问题，或者直接打字提问。"

GROUP_EMPTY_MENTION = (
    "我在 🙂 请在@我的同一条消息里写下你的问题，或者回复我的消息。"
    "涉及个人欠款的情况，更建议私聊我。"
)

RATE_LIMITED = "你发得有点快，我需要一点时间整理回答 🙏 请等大约 {seconds} 秒再发，我会继续帮你。"

BUTTON_EXPIRED = "这个按钮已经过期了。请直接打字提问，或发送 /topics。"

ERROR = "抱歉，我这边刚才出了点问题，没能回答你。请稍后再试一次，或者换个说法问我。"

SHUTTING_DOWN = "抱歉，我正在重新启动，刚才的问题没来得及回答。请过一两分钟再发一次。"

SOURCES_LABEL = "来源："

# A draft (/complaint, /negotiate) also comes as a .txt file (bot/telegram/drafts.py).
DRAFT_FILE_NAME = "草稿"
DRAFT_FILE_CAPTION = "同样的内容做成了文本文件，方便你复制、修改或转发。"

# Appended to a streamed answer while it is still arriving.
STREAMING_SUFFIX = " …"
