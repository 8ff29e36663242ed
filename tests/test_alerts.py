"""Alerts through the durable outbox to a fake Telegram Bot API server (real PTB, loopback)."""

from __future__ import annotations

import itertools
import json
import logging
import os
from datetime import UTC, datetime

import pytest

from tests.conftest import alerts_yaml, channel_target
from watcher.alert.console import format_event
from watcher.alert.outbox import DIGEST_ABOVE, PER_MINUTE, OutboxSender, build_sinks
from watcher.alert.render import render_alert
from watcher.alert.telegram import TelegramConnection, load_token, read_secret_file
from watcher.errors import WatcherError
from watcher.models import Event, EventKind
from watcher.pipeline import run_capture

CHAT = -100123


def outbox(app) -> list[tuple]:
    return app.store.db.execute(
        "SELECT o.id, o.status, e.kind, e.post_id, o.message_ids FROM outbox o "
        "JOIN events e ON e.id = o.event_id ORDER BY o.id"
    ).fetchall()


async def watched_channel(site, make_app, posts: int = 3):
    site.channel("dealer")
    for n in range(posts):
        site.add_post("dealer", f"old post {n}")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)  # the baseline
    return app, target


def body(call) -> str:
    return call.fields.get("text") or call.fields.get("caption") or ""


def sender_for(app, fake) -> OutboxSender:
    return OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake.token, fake.base_url)),
        report=lambda m: None,
    )


async def test_new_post_sends_one_alert_with_its_photos(site, make_app, fake_telegram):
    app, target = await watched_channel(site, make_app)
    photos = [site.add_photo("a", seed=3), site.add_photo("b", seed=4)]
    site.add_post("dealer", "ivory <b>bangle</b> & co, inbox", images=photos)
    summary = await run_capture(app, target)
    sender = sender_for(app, fake_telegram)

    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0  # nothing twice
    sent = fake_telegram.sent_messages(CHAT)
    assert [c.method for c in sent] == ["sendMediaGroup"]
    media = sent[0].json("media")
    caption = media[0]["caption"]
    # The post cannot inject HTML; the keyword it matched is ours to bold.
    assert "<b>ivory</b> &lt;b&gt;bangle&lt;/b&gt; &amp; co" in caption
    assert "<b>Why:</b> ivory" in caption
    assert f"/evidence {summary.capture_id}" in caption and "dealer" in caption
    stored = summary.events[0].details["image_shas"]
    assert sorted(f.sha256 for f in sent[0].files.values()) == sorted(stored)  # our copies
    rows = outbox(app)
    assert [(r[1], r[2], r[3]) for r in rows] == [("sent", "new_post", "dealer/4")]
    assert len(json.loads(rows[0][4])) == 2
    await sender.close()


async def test_deleted_post_alert_attaches_the_last_stored_copy(site, make_app, fake_telegram):
    site.channel("dealer")
    site.add_post("dealer", "first")
    doomed = site.add_post("dealer", "tusk for sale", images=[site.add_photo("t", seed=8)])
    site.add_post("dealer", "third")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    site.delete_post("dealer", doomed)
    await run_capture(app, target)
    sender = sender_for(app, fake_telegram)
    await sender.deliver_due()

    (call,) = fake_telegram.sent_messages(CHAT)
    assert call.method == "sendPhoto"
    assert "deleted" in call.fields["caption"].lower() and "last seen" in call.fields["caption"]
    (upload,) = call.files.values()
    assert app.blobs.verify(upload.sha256)
    await sender.close()


async def test_telegram_down_then_back_delivers_in_order_none_twice(site, make_app, fake_telegram):
    app, target = await watched_channel(site, make_app)
    sender = sender_for(app, fake_telegram)
    fake_telegram.go_down()
    for n in range(3):
        site.add_post("dealer", f"new {n}")
        await run_capture(app, target)
        assert await sender.deliver_due() == 0
    assert [r[1] for r in outbox(app)] == ["pending"] * 3
    errors = app.store.db.execute("SELECT last_error FROM outbox WHERE attempts > 0").fetchall()
    assert errors and "unreachable" in errors[0][0].lower()

    fake_telegram.come_back()
    app.store.db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
    assert await sender.deliver_due() == 3
    sent = fake_telegram.sent_messages(CHAT)
    assert [body(c).split("\n")[1] for c in sent] == ["new 0", "new 1", "new 2"]
    # A post without photos carries the page screenshot instead.
    assert {c.method for c in sent} == {"sendDocument"}
    assert await sender.deliver_due() == 0
    await sender.close()


async def test_restart_midway_loses_nothing_and_sends_nothing_twice(site, make_app, fake_telegram):
    app, target = await watched_channel(site, make_app)
    for n in range(4):
        site.add_post("dealer", f"new {n}")
        await run_capture(app, target)
    first = sender_for(app, fake_telegram)
    sink, chat = first.sinks["telegram"], str(CHAT)
    rows = app.store.due_outbox("9999")[("telegram", chat)]
    assert await first._deliver_chat(sink, chat, rows[:2]) == 2
    fake_telegram.fail_next(1, status=502)  # then Telegram fails and the process stops
    assert await first._deliver_chat(sink, chat, rows[2:]) == 0
    await first.close()

    # "Restart": a new app and sender over the same data folder.
    again = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT)
    )
    second = sender_for(again, fake_telegram)
    again.store.db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
    delivered = await second.deliver_due()
    assert delivered == 2
    texts = [body(c).split("\n")[1] for c in fake_telegram.sent_messages(CHAT)]
    assert texts == ["new 0", "new 1", "new 2", "new 3"]
    assert await second.deliver_due() == 0
    await second.close()


async def test_burst_of_40_posts_is_folded_into_digests_within_limits(
    site, make_app, fake_telegram
):
    app, target = await watched_channel(site, make_app)
    for n in range(40):
        site.add_post("dealer", f"item {n} white gold")
    site.route("/s/dealer", _all_posts_page(site))  # all 40 on one page
    summary = await run_capture(app, target)
    assert summary.count(EventKind.NEW_POST) == 40
    sender = sender_for(app, fake_telegram)

    assert await sender.deliver_due() == 40
    sent = fake_telegram.sent_messages(CHAT)
    assert len(sent) == 2 and all(c.method == "sendMessage" for c in sent)
    assert "25 alerts at once" in sent[0].fields["text"]
    assert "15 alerts at once" in sent[1].fields["text"]
    assert "item 0 white gold" in sent[0].fields["text"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    assert all(g >= 0.95 for g in gaps)  # about one message a second per chat
    assert len(sent) <= PER_MINUTE
    assert {r[1] for r in outbox(app)} == {"sent"}
    digests = app.store.db.execute("SELECT COUNT(DISTINCT digest_id) FROM outbox").fetchone()
    assert digests == (2,)
    assert DIGEST_ABOVE < 40
    await sender.close()


async def test_429_waits_retry_after_then_delivers(site, make_app, fake_telegram):
    app, target = await watched_channel(site, make_app)
    site.add_post("dealer", "new one")
    await run_capture(app, target)
    sender = sender_for(app, fake_telegram)
    fake_telegram.rate_limit_next(1, retry_after=7)

    assert await sender.deliver_due() == 0
    (row,) = app.store.db.execute("SELECT attempts, next_attempt_at FROM outbox").fetchall()
    assert row[0] == 1
    assert await sender.deliver_due() == 0  # not due yet: waits the 7 s Telegram asked for
    app.store.db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
    assert await sender.deliver_due() == 1
    await sender.close()


async def test_permanent_error_is_recorded_and_reported(site, make_app, fake_telegram):
    app, target = await watched_channel(site, make_app)
    site.add_post("dealer", "new one")
    await run_capture(app, target)
    reports: list[str] = []
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake_telegram.token, fake_telegram.base_url)),
        report=reports.append,
    )
    fake_telegram.permanent_error_for_chat(CHAT)

    assert await sender.deliver_due() == 0
    assert [r[1] for r in outbox(app)] == ["failed"]
    assert reports and "chat not found" in reports[0].lower() and "chat_ids" in reports[0]
    assert app.store.outbox_backlog() == {"failed": 1}
    assert await sender.deliver_due() == 0  # not retried forever
    await sender.close()


async def test_without_a_token_alerts_stay_in_the_outbox(site, make_app, monkeypatch):
    monkeypatch.delenv("WATCHER_TELEGRAM_TOKEN", raising=False)
    app, target = await watched_channel(site, make_app)
    site.add_post("dealer", "new one")
    await run_capture(app, target)
    token = load_token(app.watchlist.alerts.telegram)
    sender = OutboxSender(
        app, build_sinks(app, telegram=TelegramConnection(token)), report=lambda m: None
    )

    assert token is None and sender.sinks == {}
    assert await sender.deliver_due() == 0
    assert [r[1] for r in outbox(app)] == ["pending"]


def test_token_file_must_be_private(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("123:SECRET-TOKEN-VALUE\n")
    os.chmod(secret, 0o644)
    with pytest.raises(WatcherError) as info:
        read_secret_file(secret)
    assert "chmod 600" in str(info.value) and "SECRET-TOKEN-VALUE" not in str(info.value)
    os.chmod(secret, 0o600)
    assert read_secret_file(secret) == "123:SECRET-TOKEN-VALUE"


async def test_rejected_token_never_reaches_logs(site, make_app, fake_telegram, caplog):
    caplog.set_level(logging.DEBUG)
    app, target = await watched_channel(site, make_app)
    site.add_post("dealer", "new one")
    await run_capture(app, target)
    reports: list[str] = []
    wrong = "999:WRONG-SECRET-TOKEN"
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(wrong, fake_telegram.base_url)),
        reports.append,
    )

    assert await sender.deliver_due() == 0
    assert reports and "token" in reports[0]
    everything = caplog.text + " ".join(reports) + json.dumps(outbox(app))
    assert "WRONG-SECRET-TOKEN" not in everything
    await sender.close()


def test_render_escapes_and_fits_telegram_limits():
    event = Event(
        EventKind.NEW_POST,
        "dealer",
        "d/1",
        {
            "text": "<script>alert(1)</script> " + "x" * 5000,
            "permalink": "https://t.me/d/1",
            "image_shas": ["a" * 64],
        },
        capture_id=7,
    )
    message = render_alert(event, "telegram", None)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert len(message.html) <= 4096 and len(message.caption) <= 1024
    assert message.photo_shas == ("a" * 64,)
    assert "/evidence 7" in message.caption


def _all_posts_page(site) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{site.base_url}/s/dealer") as response:
        first = response.read().decode()
    with urllib.request.urlopen(f"{site.base_url}/s/dealer?before=24") as response:
        older = response.read().decode()
    start = older.find('<section class="tgme_channel_history')
    body = older[older.find(">", start) + 1 : older.find("</section>", start)]
    marker = first.find(">", first.find('<section class="tgme_channel_history')) + 1
    return first[:marker] + body + first[marker:]


def test_render_bolds_matched_keywords_and_says_why():
    text = "Bán <vòng> ngà voi & 象牙"
    start = text.index("ngà voi")
    event = Event(
        EventKind.NEW_POST,
        "dealer",
        "d/2",
        {
            "text": text,
            "keywords": [
                {
                    "group": "ivory",
                    "term": "ngà voi",
                    "start": start,
                    "end": start + 7,
                    "text": "ngà voi",
                },
                {
                    "group": "ivory",
                    "term": "象牙",
                    "start": len(text) - 2,
                    "end": len(text),
                    "text": "象牙",
                },
            ],
        },
    )
    message = render_alert(event, "telegram", None)
    assert "Bán &lt;vòng&gt; <b>ngà voi</b> &amp; <b>象牙</b>" in message.html
    assert "<b>Why:</b> ivory (ngà voi, 象牙)" in message.html


RENDERED_AT = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)


def edited_event(before: str, after: str, **extra) -> Event:
    details = {
        "text": after,
        "previous_text": before,
        "text_changed": True,
        "posted_at": "2026-11-22T03:01:00.000Z",
        "permalink": "https://t.me/d/3",
        **extra,
    }
    return Event(EventKind.EDITED_POST, "dealer", "d/3", details, capture_id=9)


def test_an_edit_shows_what_changed_word_by_word():
    padding = " ".join(f"word{n}" for n in range(60))  # a long unchanged stretch
    before = f"Carved <ivory> bangle. Price 1200 USD. {padding} Delivery to Hanoi."
    after = f"Carved <ivory> bangle. Price 900 USD. {padding} Delivery to Phnom Penh."
    message = render_alert(edited_event(before, after), "telegram", None, now=RENDERED_AT)

    (line,) = [x for x in message.html.split("\n") if x.startswith("<b>Edited:</b>")]
    assert "Price <s>1200</s> <u>900</u> USD." in line
    assert "Delivery to <s>Hanoi.</s> <u>Phnom Penh.</u>" in line
    assert "&lt;ivory&gt;" in line  # the post's text stays escaped inside the marks
    assert "…" in line and "word30" not in line  # the unchanged middle is elided
    assert "word0" in line and "word59" in line  # with a little context on each side
    # Not the old text and the new one after each other.
    assert "Before:" not in message.html and message.html.count("Carved") <= 1
    assert "Edited:" in message.caption and "<s>1200</s>" in message.caption


def test_alert_times_are_written_for_people():
    message = render_alert(edited_event("a b", "a c"), "telegram", None, now=RENDERED_AT)
    assert "Posted: 22 Nov 2026, 03:01 UTC (3 h ago)" in message.html
    assert "2026-11-22T03:01" not in message.html
    deleted = Event(
        EventKind.DELETED_POST,
        "dealer",
        "d/4",
        {
            "text": "tusk",
            "first_seen_at": "2026-11-01T10:00:00.000Z",
            "last_seen_at": "2026-11-22T05:00:00.000Z",
        },
    )
    shown = render_alert(deleted, None, None, now=RENDERED_AT).html
    assert "First seen 1 Nov 2026, 10:00 UTC (20 days ago)" in shown
    assert "last seen 22 Nov 2026, 05:00 UTC (1 h ago)" in shown
    printed = format_event(deleted, RENDERED_AT)
    assert "last seen 22 Nov 2026, 05:00 UTC (1 h ago)" in printed and "T05:00" not in printed


def test_console_marks_an_edit_like_a_word_diff():
    event = edited_event("Price 1200 USD, inbox", "Price 900 USD, inbox now")
    printed = format_event(event, RENDERED_AT)
    assert "edited: Price [-1200-] {+900+} USD, inbox {+now+}" in printed
    assert "was:" not in printed


def test_photo_checks_follow_telegrams_rules():
    from io import BytesIO

    from PIL import Image

    from watcher.alert.photos import BAD_SHAPE, NOT_AN_IMAGE, photo_problem
    from watcher.demo.images import variant

    def png(width: int, height: int) -> bytes:
        out = BytesIO()
        Image.new("RGB", (width, height)).save(out, "PNG")
        return out.getvalue()

    jpeg = variant(3)
    assert photo_problem(jpeg) is None and photo_problem(png(20, 400)) is None
    assert photo_problem(jpeg[: len(jpeg) // 2]) == NOT_AN_IMAGE  # truncated: pixels missing
    assert photo_problem(b"<html>a page, not a photo</html>") == NOT_AN_IMAGE
    assert photo_problem(png(1, 400)) == BAD_SHAPE  # ratio over 20
    assert photo_problem(png(9000, 1001)) == BAD_SHAPE  # width + height over 10,000


def test_an_edit_that_only_rewraps_the_text_shows_the_text_and_the_photo_change():
    event = edited_event("Price 900\nUSD", "Price 900 USD", images_added=["b" * 64])
    message = render_alert(event, "telegram", None, now=RENDERED_AT)
    assert "Edited:" not in message.html  # whitespace is not a change
    assert "Price 900 USD" in message.html and "<b>Photos:</b> 1 added, 0 removed" in message.html
