"""Tests for the fake Telegram Bot API server, driven by the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import io
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
import telegram
from PIL import Image
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

try:  # importable as `tests.fakes` once the repo root is on sys.path, else as `fakes`
    from tests.fakes import FakeTelegram
except ModuleNotFoundError:
    from fakes import FakeTelegram  # type: ignore[no-redef]

GROUP_ID = -1001234
USER_ID = 4242


def _png(width: int = 8, height: int = 6) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def _noise_png() -> bytes:
    out = io.BytesIO()
    noise = b"".join(hashlib.sha256(n.to_bytes(2, "big")).digest() for n in range(384))
    Image.frombytes("RGB", (64, 64), noise).save(out, "PNG")  # noise: does not compress
    return out.getvalue()


# A real image (the fake refuses photos that do not decode, as Telegram does), followed by every
# byte value and multipart look-alikes, which a PNG decoder ignores after its end chunk.
PNG_BYTES = _png() + bytes(range(256)) * 4 + b"\r\n\r\n--tail\r"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def _make_bot(fake: FakeTelegram, token: str | None = None) -> telegram.Bot:
    return telegram.Bot(
        token or fake.token,
        base_url=f"{fake.base_url}/bot",
        base_file_url=f"{fake.base_url}/file/bot",
        request=HTTPXRequest(connect_timeout=2, read_timeout=5),
        get_updates_request=HTTPXRequest(connect_timeout=2, read_timeout=5),
    )


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with _make_bot(fake) as client:
        yield client


def _retry_after_seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` is an int or a timedelta depending on ``PTB_TIMEDELTA``."""
    value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def test_get_me_describes_the_bot(bot: telegram.Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "watcher_test_bot"
    assert fake.calls_to("getMe")


async def test_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    with pytest.raises(telegram.error.InvalidToken):
        await _make_bot(fake, token="999:WRONG").get_me()
    assert fake.calls[-1].status == 401


async def test_send_message_is_recorded(bot: telegram.Bot, fake: FakeTelegram) -> None:
    markup = telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Ack", callback_data="a")]]
    )
    first = await bot.send_message(GROUP_ID, "<b>alert</b>", parse_mode="HTML", reply_markup=markup)
    second = await bot.send_message(GROUP_ID, "again")

    assert first.text == "<b>alert</b>"
    assert first.chat.type == "group"
    assert first.from_user is not None and first.from_user.id == 123456
    assert second.message_id == first.message_id + 1
    [call, _] = fake.sent_messages(GROUP_ID)
    assert call.fields["chat_id"] == str(GROUP_ID)
    assert call.fields["text"] == "<b>alert</b>"
    assert call.fields["parse_mode"] == "HTML"
    assert call.json("reply_markup")["inline_keyboard"][0][0]["callback_data"] == "a"
    assert fake.sent_messages(chat_id=USER_ID) == []


async def test_send_photo_records_size_and_hash(bot: telegram.Bot, fake: FakeTelegram) -> None:
    message = await bot.send_photo(GROUP_ID, PNG_BYTES, caption="evidence")

    assert message.caption == "evidence"
    assert message.photo[-1].file_size == len(PNG_BYTES)
    [call] = fake.calls_to("sendPhoto")
    photo = call.files["photo"]
    assert photo.size == len(PNG_BYTES)
    assert photo.sha256 == hashlib.sha256(PNG_BYTES).hexdigest()
    assert call.fields["caption"] == "evidence"


async def test_send_media_group_records_three_files(bot: telegram.Bot, fake: FakeTelegram) -> None:
    images = [PNG_BYTES + bytes([i]) for i in range(3)]
    media = [
        telegram.InputMediaPhoto(data, caption="lot 1" if i == 0 else None)
        for i, data in enumerate(images)
    ]
    messages = await bot.send_media_group(GROUP_ID, media)

    assert len(messages) == 3
    assert len({m.media_group_id for m in messages}) == 1
    assert messages[0].caption == "lot 1"
    [call] = fake.sent_messages(GROUP_ID)
    assert len(call.files) == 3
    assert sorted(f.sha256 for f in call.files.values()) == sorted(
        hashlib.sha256(data).hexdigest() for data in images
    )
    attach_names = [item["media"].removeprefix("attach://") for item in call.json("media")]
    assert sorted(attach_names) == sorted(call.files)


# PTB 22 warns (from inside RetryAfter itself) that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_rate_limit_raises_retry_after(bot: telegram.Bot, fake: FakeTelegram) -> None:
    fake.rate_limit_next(1, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(GROUP_ID, "hello")
    assert _retry_after_seconds(caught.value) == 7

    await bot.send_message(GROUP_ID, "hello")
    assert len(fake.sent_messages(GROUP_ID)) == 1
    assert len(fake.sent_messages(GROUP_ID, include_failed=True)) == 2


async def test_fail_next_raises_network_error(bot: telegram.Bot, fake: FakeTelegram) -> None:
    fake.fail_next(1, status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(GROUP_ID, "hello")
    assert (await bot.send_message(GROUP_ID, "hello")).text == "hello"


async def test_permanent_chat_error_raises_bad_request(
    bot: telegram.Bot, fake: FakeTelegram
) -> None:
    fake.permanent_error_for_chat(GROUP_ID)
    for _ in range(2):
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(GROUP_ID, "hello")
    assert (await bot.send_message(USER_ID, "hello")).chat.id == USER_ID


async def test_go_down_and_come_back_on_same_port(bot: telegram.Bot, fake: FakeTelegram) -> None:
    await bot.send_message(GROUP_ID, "before")  # leaves a keep-alive connection in the pool
    port = fake.port

    fake.go_down()
    with pytest.raises((NetworkError, TimedOut)):
        await bot.send_message(GROUP_ID, "while down")

    fake.come_back()
    assert fake.port == port
    assert (await bot.send_message(GROUP_ID, "after")).text == "after"
    assert [c.fields["text"] for c in fake.sent_messages(GROUP_ID)] == ["before", "after"]


async def test_get_updates_returns_pushed_messages_and_respects_offset(
    bot: telegram.Bot, fake: FakeTelegram
) -> None:
    pushed = fake.push_message("/status now", user_id=USER_ID, chat_id=GROUP_ID)
    fake.push_message("hi", user_id=USER_ID, chat_id=USER_ID)

    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["/status now", "hi"]
    command = updates[0].message
    assert command is not None and command.from_user is not None
    assert command.from_user.id == USER_ID
    assert command.chat.type == "group"
    assert command.parse_entities([telegram.MessageEntity.BOT_COMMAND]) == {
        command.entities[0]: "/status"
    }
    assert updates[0].update_id == pushed["update_id"]

    remaining = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert [u.update_id for u in remaining] == [updates[1].update_id]
    assert await bot.get_updates(offset=updates[1].update_id + 1, timeout=1) == ()


async def test_callback_query_refers_to_bot_message(bot: telegram.Bot, fake: FakeTelegram) -> None:
    sent = await bot.send_message(GROUP_ID, "alert")
    fake.push_callback("ack:1", user_id=USER_ID, chat_id=GROUP_ID, message_id=sent.message_id)

    [update] = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query is not None and query.data == "ack:1"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert await query.answer("ok")
    edited = await bot.edit_message_text("alert (acked)", GROUP_ID, sent.message_id)
    assert isinstance(edited, telegram.Message) and edited.text == "alert (acked)"


async def test_get_file_downloads_pushed_photo(bot: telegram.Bot, fake: FakeTelegram) -> None:
    fake.push_photo(PNG_BYTES, user_id=USER_ID, chat_id=GROUP_ID, caption="look")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.caption == "look"

    file = await bot.get_file(update.message.photo[-1].file_id)
    assert file.file_size == len(PNG_BYTES)
    assert bytes(await file.download_as_bytearray()) == PNG_BYTES


async def test_unknown_method_and_json_bodies(fake: FakeTelegram) -> None:
    def post(method: str, payload: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{fake.base_url}/bot{fake.token}/{method}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    assert post("sendSticker", {}) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    status, body = post("sendMessage", {"chat_id": GROUP_ID, "text": "json"})
    assert status == 200 and body["result"]["text"] == "json"
    assert fake.calls_to("sendMessage")[0].fields == {"chat_id": str(GROUP_ID), "text": "json"}


async def test_concurrent_sends_get_distinct_ids(bot: telegram.Bot, fake: FakeTelegram) -> None:
    messages = await asyncio.gather(*(bot.send_message(GROUP_ID, f"m{i}") for i in range(20)))

    assert sorted(m.message_id for m in messages) == list(range(1, 21))
    assert len(fake.sent_messages(GROUP_ID)) == 20


async def test_server_never_prints_the_token(
    bot: telegram.Bot, fake: FakeTelegram, capfd: pytest.CaptureFixture[str]
) -> None:
    await bot.send_message(GROUP_ID, "hello")
    fake.fail_next(1, status=500)
    with pytest.raises(NetworkError):
        await bot.send_message(GROUP_ID, "hello")
    with pytest.raises(telegram.error.EndPointNotFound):
        await bot.do_api_request("noSuchMethod")

    captured = capfd.readouterr()
    assert fake.token not in captured.out + captured.err


# -- what Telegram refuses, the fake refuses ------------------------------------------------
@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("ivory <b", "Unclosed start tag at byte offset 6"),
        ("a <br> b", 'Unsupported start tag "br" at byte offset 2'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_html_telegram_cannot_parse_is_refused(
    bot: telegram.Bot, fake: FakeTelegram, html: str, error: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        await bot.send_message(GROUP_ID, html, parse_mode="HTML")
    said = refused.value.message.lower()  # PTB drops "Bad Request: " and capitalises
    assert "can't parse entities" in said and error.lower() in said
    assert fake.sent_messages(GROUP_ID) == []


async def test_limits_count_visible_text_in_utf16(bot: telegram.Bot, fake: FakeTelegram) -> None:
    # 4,096 visible characters pass however long the HTML is; one more is refused.
    padded = "<b>" + "&amp;" * 4000 + "</b>" + "&lt;" * 96
    assert (await bot.send_message(GROUP_ID, padded, parse_mode="HTML")).message_id
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(GROUP_ID, padded + "x", parse_mode="HTML")
    # An emoji outside the BMP counts two: 512 of them fill a caption exactly.
    await bot.send_photo(GROUP_ID, PNG_BYTES, caption="🐘" * 512)
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(GROUP_ID, PNG_BYTES, caption="🐘" * 512 + "x")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_document(GROUP_ID, b"doc", caption="x" * 1025)
    # Entities Telegram does not know are left as text; only its own are decoded.
    sent = await bot.send_message(GROUP_ID, "a &nbsp; &amp; &#128024; &", parse_mode="HTML")
    assert sent.text == "a &nbsp; &amp; &#128024; &"  # the fake echoes what it was sent


@pytest.mark.parametrize(
    ("photo", "error"),
    [
        (b"<html>not a photo</html>", "IMAGE_PROCESS_FAILED"),
        (_noise_png()[:2000], "IMAGE_PROCESS_FAILED"),  # a header, half the pixels
        (_png(1, 400), "PHOTO_INVALID_DIMENSIONS"),
        (_png(9000, 1100), "PHOTO_INVALID_DIMENSIONS"),
    ],
)
async def test_photos_telegram_cannot_take_are_refused(
    bot: telegram.Bot, fake: FakeTelegram, photo: bytes, error: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_photo(GROUP_ID, photo)
    media = [telegram.InputMediaPhoto(PNG_BYTES), telegram.InputMediaPhoto(photo)]
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_media_group(GROUP_ID, media)
    assert fake.sent_messages(GROUP_ID) == []  # a group is refused whole
    assert (await bot.send_document(GROUP_ID, photo)).document  # as a file it goes
