"""HTTP light checks (no renderer), per-host politeness and spread first runs: real HTTP
against the loopback fixture site, real Chromium for the full captures.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tests.conftest import channel_target, watcher
from watcher.capture.adapters import adapter_for
from watcher.capture.fetch import accept_language, cookie_header, retry_after_seconds
from watcher.detect.diff import posts_fingerprint
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.scheduler import first_run_in, schedule_target, spread_offset
from watcher.steps.take import HTTP_READER
from watcher.store.check_modes import BROWSER, check_mode
from watcher.watchlist import parse_watchlist

CHECKED = "    full_every: 1h\n"


def dealer(site, posts: int = 3) -> None:
    site.channel("dealer")
    for n in range(posts):
        site.add_post("dealer", f"carving {n}", images=[site.add_photo(f"p{n}", seed=n)])


def page_loads(site, path: str) -> int:
    return sum(1 for p in site.requests if p == path)


def capture_row(app, capture_id: int) -> tuple[str, str]:
    return app.store.db.execute(
        "SELECT mode, browser_version FROM captures WHERE id = ?", [capture_id]
    ).fetchone()


def metadata(app, capture_id: int) -> dict:
    (art,) = [a for a in app.store.artifacts(capture_id) if a.kind == "metadata"]
    return json.loads(app.blobs.read(art.sha256))


async def test_an_unchanged_page_is_checked_over_http_without_a_browser(site, make_app):
    dealer(site)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer", CHECKED))
    target = app.watchlist.target("dealer")
    first = await run_capture(app, target)
    assert first.mode == "full" and first.status == CaptureStatus.OK
    loads, images = page_loads(site, "/s/dealer"), sum(p.startswith("/img/") for p in site.requests)

    second = await run_capture(app, target)
    assert second.status == CaptureStatus.OK and second.mode == "check"
    assert second.post_count == 3 and second.events == ()
    # One plain GET of the page, nothing else: no image, no browser (the checks' Chromium
    # was never even started).
    assert page_loads(site, "/s/dealer") == loads + 1
    assert sum(p.startswith("/img/") for p in site.requests) == images
    assert app._check_browser is None
    assert capture_row(app, second.capture_id) == ("check", HTTP_READER)
    meta = metadata(app, second.capture_id)
    assert meta["read_by"] == "http"
    # The same visitor as the baseline capture's browser.
    assert meta["user_agent"] == app.browser.user_agent
    assert check_mode(app.store, "dealer") is None


async def test_an_http_check_that_sees_a_change_gives_a_full_capture(site, make_app):
    dealer(site)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer", CHECKED))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    assert (await run_capture(app, target)).mode == "check"

    site.add_post("dealer", "teak bangle, inbox", images=[site.add_photo("new", seed=9)])
    loads = page_loads(site, "/s/dealer")
    new = await run_capture(app, target)
    assert new.mode == "full" and [str(e.kind) for e in new.events] == ["new_post"]
    assert capture_row(app, new.capture_id)[1] != HTTP_READER  # the browser took it
    assert page_loads(site, "/s/dealer") == loads + 2  # the HTTP check, then the browser
    # A real change: the server's HTML held what the browser saw, so HTTP checks go on.
    assert check_mode(app.store, "dealer") is None
    again = await run_capture(app, target)
    assert again.mode == "check" and capture_row(app, again.capture_id)[1] == HTTP_READER


async def test_a_page_built_by_scripts_is_marked_for_browser_checks(site, make_app, tmp_path):
    dealer(site)
    url = f"{site.base_url}/js/dealer"
    app = make_app(channel_target("dealer", url, CHECKED))
    target = app.watchlist.target("dealer")
    first = await run_capture(app, target)
    assert first.status == CaptureStatus.OK and first.post_count == 3  # the browser ran it

    # The HTTP answer holds no post: a full capture follows, sees the same 3 posts, and
    # the target's checks move to the browser.
    second = await run_capture(app, target)
    assert second.mode == "full" and second.status == CaptureStatus.OK and second.events == ()
    marked = check_mode(app.store, "dealer")
    assert marked is not None and marked.mode == BROWSER
    assert "held 0 of the 3 posts the browser saw" in marked.reason

    third = await run_capture(app, target)
    assert third.mode == "check" and third.status == CaptureStatus.OK
    assert capture_row(app, third.capture_id)[1] == app.check_browser.version

    status = watcher("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "dealer: light checks need the browser, since" in status.stdout
    assert "(it is built by scripts)" in status.stdout


async def test_429_with_retry_after_keeps_watcher_away_from_the_host(site, make_app):
    dealer(site)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer", CHECKED))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)

    site.route("/s/dealer", "slow down", status=429, headers={"Retry-After": "3600"})
    loads = page_loads(site, "/s/dealer")
    limited = await run_capture(app, target)
    assert limited.status != CaptureStatus.OK and limited.reason == "rate_limited"
    # The check was refused: no full capture hit the host on top of it.
    assert page_loads(site, "/s/dealer") == loads + 1
    until = app.hosts.waiting_until("127.0.0.1")
    assert until is not None and until > datetime.now(UTC) + timedelta(minutes=59)

    site.unroute("/s/dealer")  # the site would answer now, but it asked for an hour
    later = await run_capture(app, target)  # a full capture (the last one failed)
    (message,) = app.store.db.execute(
        "SELECT message FROM captures WHERE id = ?", [later.capture_id]
    ).fetchone()
    assert later.reason == "rate_limited" and "left alone until" in message
    assert page_loads(site, "/s/dealer") == loads + 1  # not one more request


async def test_a_browser_capture_that_gets_503_puts_the_host_on_hold(site, make_app):
    dealer(site)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))  # no checks
    site.route("/s/dealer", "busy", status=503, headers={"Retry-After": "120"})
    busy = await run_capture(app, app.watchlist.target("dealer"))
    assert busy.reason == "rate_limited"
    assert app.hosts.waiting_until("127.0.0.1") is not None


async def test_per_host_spacing_from_the_watchlist_orders_visits(site, make_app):
    # Two targets on one host with `concurrent: 1`: never two page loads at once.
    dealer(site)
    site.channel("other")
    site.add_post("other", "ivory bangle")
    header = "hosts:\n  127.0.0.1: {concurrent: 1, spacing: 0s}\n"
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        channel_target("other", f"{site.base_url}/s/other"),
        header=header,
    )
    assert app.hosts.limit_for("127.0.0.1", "telegram").concurrent == 1
    inside, most = 0, 0
    real_visit = app.hosts.visit

    def counting(host, platform, max_wait):
        cm = real_visit(host, platform, max_wait)

        class Counted:
            async def __aenter__(self):
                nonlocal inside, most
                await cm.__aenter__()
                inside += 1
                most = max(most, inside)

            async def __aexit__(self, *exc):
                nonlocal inside
                inside -= 1
                return await cm.__aexit__(*exc)

        return Counted()

    app.hosts.visit = counting
    summaries = await asyncio.gather(*(run_capture(app, t) for t in app.watchlist.targets))
    assert [s.status for s in summaries] == [CaptureStatus.OK, CaptureStatus.OK]
    assert most == 1


def test_first_runs_of_many_targets_spread_over_the_interval():
    every = 900.0
    names = [f"channel-{n}" for n in range(1000)]
    text = "targets:\n" + "".join(
        f"  - {{name: {n}, platform: telegram, url: 'https://t.me/s/{n}', every: 15m}}\n"
        for n in names
    )
    targets = parse_watchlist(text).targets
    offsets = [first_run_in(t, captured_before=True) for t in targets]
    assert all(0 <= o < every for o in offsets)
    # Ten equal slices of the interval each get about a tenth (100 +- 40), not a burst.
    slices = [0] * 10
    for o in offsets:
        slices[int(o / every * 10)] += 1
    assert min(slices) >= 60 and max(slices) <= 140
    # The same place after a restart; a never-captured target within the first minute.
    assert offsets == [first_run_in(t, captured_before=True) for t in targets]
    assert spread_offset("a", every) != spread_offset("b", every)
    assert all(first_run_in(t, captured_before=False) < 60 for t in targets)


async def test_scheduled_jobs_start_at_their_spread_places():
    text = "targets:\n" + "".join(
        f"  - {{name: t{n}, platform: telegram, url: 'https://t.me/s/t{n}', every: 15m}}\n"
        for n in range(50)
    )
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        before = datetime.now(UTC)
        for target in parse_watchlist(text).targets:
            schedule_target(scheduler, target, _noop, first_run_in(target, True))
        runs = sorted((job.next_run_time - before).total_seconds() for job in scheduler.get_jobs())
    finally:
        scheduler.shutdown(wait=False)
    assert runs[0] < 120 and runs[-1] > 780  # from the start to the end of the interval
    assert len({round(r) for r in runs}) > 40  # not all at one moment


async def _noop(target) -> None:
    return None


def test_http_identity_helpers():
    cookies = [
        {"name": "sid", "value": "s1", "domain": ".example.com", "path": "/", "secure": True},
        {"name": "host", "value": "h1", "domain": "www.example.com", "path": "/"},
        {"name": "other", "value": "x", "domain": ".elsewhere.org", "path": "/"},
        {"name": "old", "value": "o", "domain": ".example.com", "path": "/", "expires": 1},
        {"name": "deep", "value": "d", "domain": ".example.com", "path": "/shop"},
    ]
    assert cookie_header(cookies, "https://www.example.com/s/x") == "sid=s1; host=h1"
    assert cookie_header(cookies, "http://www.example.com/") == "host=h1"  # not secure
    assert cookie_header(cookies, "https://m.example.com/shop/1") == "deep=d; sid=s1"
    assert accept_language("en-US") == "en-US,en;q=0.9" and accept_language("ru") == "ru"
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Sun, 06 Dec 2026 12:05:00 GMT", now) == 300.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


REAL_TELEGRAM = sorted((Path(__file__).parent / "fixtures" / "real" / "telegram").glob("*.html"))


@pytest.mark.parametrize("html_path", REAL_TELEGRAM, ids=lambda p: p.stem)
async def test_real_telegram_previews_read_the_same_without_a_renderer(site, browser, html_path):
    # Saved t.me/s pages: the posts read from the HTML as the server sent it must be those
    # read from the page Chromium built from it, or every real Telegram target would be
    # marked as needing the browser at its first check.
    raw = html_path.read_text(encoding="utf-8")
    site.route("/s/real", raw)
    url = f"{site.base_url}/s/real"
    adapter = adapter_for("telegram", None)
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto(url, wait_until="domcontentloaded")
        rendered = await page.content()
    now = datetime.now(UTC)
    served = adapter.extract(raw, url, now)
    assert served and posts_fingerprint(served) == posts_fingerprint(
        adapter.extract(rendered, url, now)
    )
