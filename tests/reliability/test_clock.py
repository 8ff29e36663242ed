"""The clock jumping backwards: captures, custody and alerts carry on, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import watcher.pipeline
import watcher.steps.record
from tests.conftest import alerts_yaml, channel_target
from watcher.store.custody import verify_chain
from watcher.timeutil import to_iso, utc_now

CHAT = -100555


async def test_captures_and_alerts_survive_a_clock_jumping_back_two_days(
    site, make_app, monkeypatch: pytest.MonkeyPatch
):
    site.channel("dealer")
    for n in range(3):
        site.add_post("dealer", f"post {n}")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("dealer")
    await run_and_check(app, target)
    site.add_post("dealer", "queued before the jump")
    await run_and_check(app, target)

    past = datetime.now(UTC) - timedelta(days=2)
    for step in (watcher.pipeline, watcher.steps.record):  # the capture's start and end
        monkeypatch.setattr(step, "utc_now", lambda: to_iso(past))
    site.add_post("dealer", "captured after the jump")
    summary = await run_and_check(app, target)
    assert [e.post_id for e in summary.events] == ["dealer/5"]

    # Alerts queued before the jump are due at the jumped-back time, in order.
    due = app.store.due_outbox(to_iso(past))[("telegram", str(CHAT))]
    assert [r.event.post_id for r in due] == ["dealer/4", "dealer/5"]
    # A normal backoff is still honoured.
    app.store.mark_retry(due[0].id, "down", to_iso(past + timedelta(minutes=5)))
    assert app.store.due_outbox(to_iso(past)) == {}

    assert verify_chain(app.custody.entries(), app.custody.public_keys()) == []
    assert utc_now() > to_iso(past)


async def run_and_check(app, target):
    summary = await watcher.pipeline.run_capture(app, target)
    assert summary.status == "ok", summary
    return summary
