"""Fixed copy for the guided flows (Simplified Chinese).

No rule, law or phone number is written here: those are taken from the
knowledge base when a draft is composed (bot/flows/knowledge.py), so a draft
can only cite what the knowledge base says, with its sources.
"""

# --- starting, leaving, resuming ---------------------------------------------------------
# Pressing these buttons (shown under matching answers) starts a flow, as the commands do.
COMPLAINT_OFFER = "帮我写一份投诉材料"
NEGOTIATE_OFFER = "帮我准备协商还款的话术"
PRIVACY_LINE = "你在这里填的内容只临时保存在这段对话里，生成草稿后就删除，不会写进日志；随时发 /forget 可以全部删掉。\n\n"
COMPLAINT_INTRO = ("好，我们一起把投诉材料理清楚。我问几个问题，一次一个，每个都可以跳过；"
                   "最后给你一份草稿，你改好再发。中途不想继续，发 /cancel 就行。\n")
NEGOTIATE_INTRO = ("好，我们一起准备给平台客服打电话时要说的话。我问几个问题，一次一个，每个都可以跳过；"
                   "最后给你一份话术，照着说就行。中途不想继续，发 /cancel 就行。\n")
PROGRESS = "（第{n}步，共{total}步）"
SKIP = "跳过"
DONE = "就这些"
MULTI_MORE = "记下了：{picked}。还有别的吗？可以再点，或者直接打字补充；没有了就点“就这些”。"
CANCELLED = "好的，已经停下了，刚才填的内容也删掉了。有别的想问的，直接告诉我。"
NOTHING_TO_CANCEL = "现在没有正在填写的内容。想写投诉材料发 /complaint，想准备协商还款的话术发 /negotiate。"
RESUME = {"complaint": "继续写投诉材料", "negotiation": "继续准备协商话术"}
RESUMED = "好，我们接着来。\n"
BACK_TO_FLOW = "——\n我们接着刚才的{what}。{question}（可以直接回答，也可以回“跳过”，或发 /cancel 结束）"
FLOW_WHAT = {"complaint": "投诉材料", "negotiation": "协商话术"}
EMPTY_ANSWER = "我没看到文字内容。用文字回答就好，不方便说也可以点“跳过”。\n"
TOO_LONG_ANSWER = "你发来的内容有点长（约{chars}字），刚才的问题用一两句话回答就好，之前填的都还在。\n"
CLEARED = "这次填写的内容已经从我这里删除了。"
MISSING = "（未填写，可自行补充）"

# --- the complaint flow -----------------------------------------------------------------
Q_LENDER = "是哪个平台的欠款？点一下，或者直接打平台名字。"
LENDER_OPTIONS = ("花呗", "借呗", "支付宝其他业务")
Q_CONTACT = "是谁在联系你？如果对方报了公司名，直接打出来。"
CONTACT_PLATFORM = "平台自己的人"
CONTACT_AGENCY = "一家催收公司"
CONTACT_UNKNOWN = "不知道是哪家"
CONTACT_OPTIONS = (CONTACT_PLATFORM, CONTACT_AGENCY, CONTACT_UNKNOWN)
Q_CONDUCT = ("发生了什么？可以点选，也可以直接用自己的话说，"
             "比如“晚上11点打电话、骂人、打给我妈”。")
CONDUCT_OPTIONS = ("夜里打电话", "电话打得太多", "辱骂或威胁", "联系我的家人或同事",
                   "把我欠钱的事告诉别人", "发假的法律文书", "让我转账到个人账户")
Q_WHEN = "从什么时候开始的？大概多久一次？比如“11月20日开始，每天十几个”。"
Q_EVIDENCE = "你手里有哪些证据？可以点选，也可以直接说。"
EVIDENCE_NONE_OPTION = "还没有"
EVIDENCE_OPTIONS = ("通话录音", "通话记录截图", "短信或聊天截图", EVIDENCE_NONE_OPTION)

COMPLAINT_DONE = "草稿写好了。先核对一遍，按实际情况改成你自己的话，再按最后的顺序发出去。"
DRAFT_HEAD = "【投诉草稿】"
DRAFT_OPENING = "您好，我想反映我遇到的催收问题，请帮忙核实处理。"
F_LENDER = "涉及平台"
F_CONTACT = "联系我的是"
F_CONDUCT = "发生了什么"
F_WHEN = "开始时间和频率"
F_EVIDENCE = "我手里的证据"
NO_EVIDENCE = "目前还没有整理"
RULES_HEAD = "【相关规定】（摘自整理的公开资料，引用前请按出处核对）"
RULES_NONE = "【相关规定】（你描述的情况，我整理的资料里没有对应的条文，这部分先不写；可以只陈述事实。）"
SOURCE_LINE = "   出处：{basis}"
ASKS_HEAD = "【我的诉求】"
ASK_VERIFY = "请核实上面的情况；如果属实，请要求催收方停止这些做法。"
ASK_FAMILY = "请要求催收方不要再联系我的家人、朋友或同事。"
ASK_NAME = "请告诉我是哪家机构在催收，以及催收人员的工号。"
ASK_REPLY = "请把处理结果答复给我。"
DRAFT_END = "——草稿到这里——"
ROUTE_HEAD = "发给谁（按顺序，前一步没解决再走下一步）："
ROUTE_OTHER_PLATFORM = "{lender}的官方客服（App 内客服或官方热线）：说明经过，提交证据。"
ROUTE_IF_ALIPAY = "如果是花呗、借呗："
ROUTE_SOURCE = "（出处：{basis}）"
EVIDENCE_HEAD = "投诉时附上的证据：{items}。"
EVIDENCE_NONE = "证据还没有整理的话，先从现在开始保存："

# --- the negotiation flow -----------------------------------------------------------------
Q_PRODUCT = "是哪个产品逾期了？"
PRODUCT_OPTIONS = ("花呗", "借呗", "网商贷")
Q_OVERDUE = "逾期多久了？"
OVERDUE_OPTIONS = ("刚逾期几天", "一个月左右", "三个月以上")
Q_AMOUNT = "大概欠多少钱？不想说可以跳过。"
Q_REASON = "是什么原因暂时还不上？点一下，或者用自己的话说。"
REASON_OPTIONS = ("失业了", "生病了", "收入减少了")
Q_MONTHLY = "留出基本生活开支以后，每个月实际能拿出多少钱来还？"

NEGOTIATE_DONE = "话术准备好了。打电话前先看一遍，按实际情况改一改。"
SCRIPT_HEAD = "【协商还款话术】"
S_WHERE = "先找谁："
S_WHERE_OTHER = "联系{product}的官方客服（App 内客服或官方热线）。"
S_OPEN = "一、开口先说"
S_OPEN_LINE = "“您好，我的{product}{overdue}{amount}。我不是不想还，想和您商量一个我做得到的还款方案。”"
S_OVERDUE = "目前逾期{duration}了"
S_OVERDUE_UNKNOWN = "目前逾期了"
S_AMOUNT = "，欠款大约{amount}"
S_HARDSHIP = "二、如实说明困难"
S_HARDSHIP_LINE = "“最近{reason}，暂时没办法一次还清。需要的话，我可以提供相关证明。”"
S_REASON_MISSING = "［说明原因，比如失业、生病、收入减少］"
S_PREPARE = "可以提前准备："
S_ASK = "三、提出请求（用商量的语气，一条一条问）"
S_ASK_INSTALMENTS = "“能不能帮我办分期，每月还{monthly}左右？”"
S_ASK_INSTALMENTS_OPEN = "“能不能帮我办分期，按我能承受的金额来还？”"
S_ASK_EXTENSION_FIRST = "“我现在每个月实在拿不出钱，能不能先申请延期还款？”"
S_ASK_EXTENSION = "“如果分期办不了，能不能申请延期还款？”"
S_ASK_RELIEF = "“逾期产生的罚息和费用，能不能帮忙申请减免？”"
S_MONTHLY_UNKNOWN = "打电话前先算一算："
S_RECORD = "四、通话时记下来"
S_RECORD_ITEMS = ("日期和时间", "客服的工号或姓名", "谈好的方案：每期还多少、分几期、从哪天开始")
S_CONFIRM = "五、挂电话以后"
S_CONFIRM_LINE = ("打开 App 核对：账单金额和还款日期是否和谈好的一致；对不上就再联系客服确认，"
                  "别只凭电话里的口头答应。之后按方案按时还。")
S_DONT = "六、不要做的事"
S_DONT_PROMISE = "不要承诺做不到的金额，宁可少一点但能按时还。"
S_DONT_PERSONAL = "不要往任何个人账户、个人收款码转钱。"
S_DONT_AGENT = "不要找收费的“代理协商”“停息挂账”“代理退息”“反催收”中介。"
