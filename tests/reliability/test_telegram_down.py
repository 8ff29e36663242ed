"""Telegram unreachable for hours: the outbox holds every alert, then drains in order,
folded into digests, none twice, when the server returns."""

from __future__ import annotations

import re

from tests.conftest import alerts_yaml
from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.alert.outbox import DIGEST_SIZE, OutboxSender, build_sinks
from watcher.alert.telegram import TelegramConnection
from watcher.pipeline import run_capture

CHAT = -100555
POSTS = 60


def statuses(app) -> dict[str, int]:
    rows = app.store.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
    return dict(rows.fetchall())


async def test_hours_down_then_drains_in_order_digested(site, make_app, fake_telegram):
    site.route("/shop", shop_page(listing("p000", "baseline")))
    app = make_app(hostile_target("shop", f"{site.base_url}/shop"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("shop")
    await run_capture(app, target)  # the baseline: no alerts
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake_telegram.token, fake_telegram.base_url)),
        report=lambda m: None,
    )
    fake_telegram.go_down()
    # New listings arrive in three captures while Telegram is down.
    shown = [listing("p000", "baseline")]
    for batch in range(3):
        for n in range(POSTS // 3):
            number = batch * (POSTS // 3) + n + 1
            shown.append(listing(f"p{number:03d}", f"listing order-{number:03d}"))
        site.route("/shop", shop_page(*shown))
        await run_capture(app, target)
        assert await sender.deliver_due() == 0
    # Hours of failed retries: many attempts, the backoff long since due again.
    app.store.db.execute(
        "UPDATE outbox SET attempts = 40, next_attempt_at = '2000-01-01T00:00:00.000Z'"
    )
    assert statuses(app) == {"pending": POSTS}  # nothing dropped, nothing failed for good

    fake_telegram.come_back()
    delivered = 0
    for _ in range(5):
        delivered += await sender.deliver_due()
    assert delivered == POSTS and statuses(app) == {"sent": POSTS}
    sent = fake_telegram.sent_messages(CHAT)
    assert len(sent) <= -(-POSTS // DIGEST_SIZE) + 1  # digests, not 60 messages
    text = "\n".join(c.fields.get("text") or c.fields.get("caption") or "" for c in sent)
    order = re.findall(r"order-(\d{3})", text)
    assert len(order) == POSTS and len(set(order)) == POSTS  # each once
    assert order == sorted(order)  # in the order they happened
    await sender.close()
