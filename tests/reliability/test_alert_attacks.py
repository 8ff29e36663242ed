"""A dealer's post must not be able to make an alert fail for good.

Telegram refuses a whole message for one unbalanced tag, one character over its limit or one
photo it cannot use, and a refused alert used to be marked failed, never sent. Each attack here
goes through the real path (fixture site, Chromium, pipeline, outbox, PTB) to the fake Bot API
server, which refuses what Telegram refuses; each ends with the alert delivered.
"""

from __future__ import annotations

import html
import io

from PIL import Image

from tests.conftest import alerts_yaml, channel_target
from tests.fakes.telegram_api import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    ApiError,
    RecordedCall,
    parse_html,
    utf16_length,
)
from watcher.alert.outbox import OutboxSender, build_sinks
from watcher.alert.render import fit_html, visible_length
from watcher.alert.telegram import TelegramConnection
from watcher.pipeline import run_capture

CHAT = -100123
HOSTILE = (
    "<b>&amp; &lt;i&gt; 🐘 e\u0301\u0302 👨\u200d👩\u200d👧 ✋🏽 &#128024; <&<&<&<&<&<&<& > \" '\n"
)


async def watched(site, make_app):
    site.channel("dealer")
    for n in range(3):
        site.add_post("dealer", f"old post {n}")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)  # the baseline
    return app, target


async def deliver(app, fake) -> list[RecordedCall]:
    """Run the outbox once; what reached the chat. Every alert must be sent, none failed."""
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake.token, fake.base_url)),
        report=lambda m: None,
    )
    try:
        await sender.deliver_due()
    finally:
        await sender.close()
    statuses = app.store.db.execute("SELECT status, last_error FROM outbox").fetchall()
    assert statuses and all(s == "sent" for s, _ in statuses), statuses
    return fake.sent_messages(CHAT)


def shown(call: RecordedCall) -> tuple[str, int]:
    """The caption or text the chat shows (parsed as Telegram would) and its limit."""
    if call.method == "sendMediaGroup":
        first = call.json("media")[0]
        return parse_html(first.get("caption", "")), CAPTION_LIMIT
    if call.method == "sendMessage":
        text = call.fields["text"]
        return (parse_html(text) if call.fields.get("parse_mode") else text), TEXT_LIMIT
    return parse_html(call.fields.get("caption", "")), CAPTION_LIMIT


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 60, 30)).save(out, "PNG")
    return out.getvalue()


async def test_keyword_across_a_line_break_at_the_cut_of_a_padded_post(
    site, make_app, fake_telegram
):
    # "&" is one character to Telegram but five in HTML: the post is short to the eye and long
    # as markup, and the old cut (by markup length, at a line break) fell inside the <b> that
    # bolds "rhino\nhorn".
    app, target = await watched(site, make_app)
    site.add_post("dealer", "&" * 150 + " rhino\nhorn " + "&" * 140 + " inbox")
    summary = await run_capture(app, target)
    (call,) = await deliver(app, fake_telegram)

    assert call.method == "sendDocument"  # the page screenshot, the alert as its caption
    caption = call.fields["caption"]
    text, limit = shown(call)  # parses: the fake would have refused it otherwise
    assert utf16_length(text.strip()) <= limit
    assert "<b>rhino\nhorn</b>" in caption  # the match is bold, closed where it should be
    assert f"/evidence {summary.capture_id}" in text  # the evidence line is never cut


async def test_a_post_of_markup_emoji_and_combining_marks(site, make_app, fake_telegram):
    app, target = await watched(site, make_app)
    # Mostly characters HTML escapes (up to six times longer as markup), with line breaks.
    site.add_post("dealer", "ivory " + (HOSTILE + "&<\"'" * 20) * 8)
    summary = await run_capture(app, target)
    (call,) = await deliver(app, fake_telegram)

    text, limit = shown(call)
    assert utf16_length(text.strip()) <= limit
    # The post's markup and entities are shown as the text they are, never obeyed or decoded.
    assert "ivory <b>&amp; &lt;i&gt; 🐘 e\u0301\u0302 👨\u200d👩\u200d👧" in text
    assert f"/evidence {summary.capture_id}" in text


async def test_a_photo_that_is_not_an_image_is_left_out_and_said(site, make_app, fake_telegram):
    app, target = await watched(site, make_app)
    fake_photo = site.put_image("fake", b"<html>this is not a photo</html>" * 20, "image/jpeg")
    real = site.add_photo("real", seed=5)
    site.add_post("dealer", "tusk, two photos", images=[fake_photo, real])
    summary = await run_capture(app, target)
    (shas,) = [e.details["image_shas"] for e in summary.events if e.kind == "new_post"]
    assert len(shas) == 2  # both kept as evidence
    (call,) = await deliver(app, fake_telegram)

    assert call.method == "sendPhoto"  # the real one only
    (upload,) = call.files.values()
    assert upload.sha256 == shas[1]
    assert "1 photo not attached (not a valid image)" in shown(call)[0]


async def test_a_1x400_photo_is_left_out_and_said(site, make_app, fake_telegram):
    app, target = await watched(site, make_app)
    sliver = site.put_image("sliver", png(1, 400), "image/png")
    site.add_post("dealer", "horn, one odd photo", images=[sliver])
    await run_capture(app, target)
    (call,) = await deliver(app, fake_telegram)

    assert call.method == "sendDocument"  # no photo left: the page screenshot instead
    assert "1 photo not attached (proportions Telegram refuses)" in shown(call)[0]


async def test_a_refused_alert_goes_once_more_as_plain_text(site, make_app, fake_telegram):
    app, target = await watched(site, make_app)
    site.add_post("dealer", "pangolin <scales> & more", images=[site.add_photo("p", seed=6)])
    await run_capture(app, target)
    fake_telegram.fail_next(1, status=400)  # whatever Telegram found wrong with it
    (call,) = await deliver(app, fake_telegram)

    assert call.method == "sendMessage" and "parse_mode" not in call.fields
    assert "pangolin <scales> & more" in call.fields["text"]  # plain: nothing escaped
    assert "sent as plain text" in call.fields["text"]


async def test_an_alert_refused_twice_is_failed_not_retried_forever(site, make_app, fake_telegram):
    app, target = await watched(site, make_app)
    site.add_post("dealer", "pangolin scales")
    await run_capture(app, target)
    fake_telegram.fail_next(2, status=400)
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake_telegram.token, fake_telegram.base_url)),
        report=lambda m: None,
    )
    assert await sender.deliver_due() == 0
    await sender.close()
    assert app.store.db.execute("SELECT status FROM outbox").fetchall() == [("failed",)]
    assert len(fake_telegram.sent_messages(CHAT, include_failed=True)) == 2  # once more, once


def test_every_cut_of_hostile_markup_parses_and_fits():
    # The renderer's cut against the fake's own parser (tdlib's rules): at every limit.
    markup = "<b>Why:</b> " + "".join(
        f'<a href="https://t.me/x?a=1&amp;b={n}"><b>{html.escape(HOSTILE)}</b></a> <s>x</s>\n'
        for n in range(6)
    )
    assert parse_html(markup)  # whole, it parses
    for limit in range(0, visible_length(markup) + 2):
        cut = fit_html(markup, limit)
        try:
            text = parse_html(cut)
        except ApiError as refused:
            raise AssertionError(f"limit {limit}: {refused.description}: {cut!r}") from None
        assert utf16_length(text) <= limit
        assert "\u200d…" not in text  # no joiner left dangling before the ellipsis
