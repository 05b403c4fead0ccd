"""The guided flows in Telegram: commands, one-tap answers, the draft as text and as a .txt file."""

from __future__ import annotations

import pytest

from bot.flows import texts as flow_texts
from bot.telegram import texts
from bot.telegram.drafts import draft_file

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ME = 333_444_555
COMPLAINT_ANSWERS = ["支付宝", "不知道是哪家公司", "晚上11点打电话、骂人、打给我妈", "11月20日开始，每天十几个", "有录音和截图"]
NEGOTIATE_ANSWERS = ["借呗", "两个月", "2万", "失业了", "每月1000"]


async def finish(api, bot, text: str) -> tuple[str, bytes, str | None]:
    """Send the last answer; wait for the draft file. Returns (chat text shown, file bytes, file name)."""
    before = len(api.documents(ME))
    api.user_message(ME, text)
    await api.wait_for_call("sendDocument", count=before + 1, timeout=30)
    await api.settle()
    shown = "\n\n".join(m.plain for m in api.unread(ME))
    api._cursor[ME] += len(api.unread(ME))
    document = api.documents(ME)[-1]
    return shown, document.content, document.filename


async def test_complaint_in_telegram_ends_with_the_draft_as_text_and_as_a_file(real_bot, api):
    assert {"complaint", "negotiate", "cancel"} <= {c["command"] for c in api.commands}
    [first] = await real_bot.ask(ME, "/complaint")
    assert "第1步" in first.plain and "/forget" in first.plain
    assert {"花呗", "跳过"} <= {label for label, _ in first.buttons}
    for answer in COMPLAINT_ANSWERS[:-1]:
        [question] = await real_bot.ask(ME, answer)
        assert "步" in question.plain and question.buttons
    shown, content, filename = await finish(api, real_bot, COMPLAINT_ANSWERS[-1])
    assert real_bot.engine.replies[-1].kind == "draft"
    assert filename == "投诉草稿.txt"
    text = content.decode("utf-8-sig")
    for needle in ("不知道是哪家公司", "晚上11点打电话、骂人、打给我妈", "22点", "95188", "12378", "录音", texts.SOURCES_LABEL):
        assert needle in text
        assert needle in shown or needle == texts.SOURCES_LABEL
    route = text.split("——草稿到这里——", 1)[1]
    assert route.index("95188") < route.index("12378")


async def test_negotiation_by_buttons_and_typing_in_telegram(real_bot, api):
    [first] = await real_bot.ask(ME, "/negotiate")
    api.press_button(ME, label="借呗", message_id=first.message_id)
    [second] = await api.wait_for_messages(ME)
    assert "逾期多久" in second.plain
    for answer in NEGOTIATE_ANSWERS[1:-1]:
        await real_bot.ask(ME, answer)
    shown, content, filename = await finish(api, real_bot, NEGOTIATE_ANSWERS[-1])
    assert filename == "协商还款话术.txt"
    assert "每月还1000元左右" in shown and "每月还1000元左右" in content.decode("utf-8-sig")
    assert "工号" in shown


async def test_cancel_and_a_sticker_mid_flow_in_telegram(real_bot, api):
    await real_bot.ask(ME, "/complaint")
    await real_bot.ask(ME, "支付宝")
    api.user_message(ME, kind="sticker")  # answered by the front end; the flow is untouched
    [sticker] = await api.wait_for_messages(ME)
    assert sticker.text == texts.NON_TEXT["sticker"]
    [step3] = await real_bot.ask(ME, "不知道")
    assert "第3步" in step3.plain
    [cancelled] = await real_bot.ask(ME, "/cancel")
    assert cancelled.plain.startswith(flow_texts.CANCELLED)
    assert not api.documents(ME)


def test_the_draft_file_is_named_after_its_heading_and_opens_as_chinese_text():
    from bot.reply import Reply

    name, content = draft_file(Reply("草稿写好了。\n\n【投诉草稿】\n第一行\n第二行", "draft"))
    assert name == "投诉草稿.txt"
    assert content.startswith("\ufeff".encode()) and "第一行\r\n第二行".encode() in content
    assert draft_file(Reply("没有标题", "draft"))[0] == texts.DRAFT_FILE_NAME + ".txt"
