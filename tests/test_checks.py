"""Light checks between full captures (``full_every``): real Chromium against the fixture site.

A check loads the first page without images and compares its posts with the last capture's;
anything different (a new, edited or deleted post, a login wall, a failure) gives a full
capture at once, so no change is ever recorded from a check.
"""

from __future__ import annotations

import asyncio
import zipfile
from dataclasses import replace

import pytest

from tests.conftest import channel_target
from watcher.alert.console import format_summary
from watcher.capture.browser import Browser
from watcher.detect.diff import posts_fingerprint
from watcher.errors import WatchlistError
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle
from watcher.models import CaptureStatus, Post
from watcher.pipeline import run_capture
from watcher.store.custody import verify_chain
from watcher.watchlist import load_watchlist

CHECKED = "    full_every: 1h\n"


def kinds(summary) -> list[str]:
    return sorted(str(e.kind) for e in summary.events)


def artifact_kinds(app, capture_id: int) -> list[str]:
    return sorted(a.kind for a in app.store.artifacts(capture_id))


def image_requests(site) -> int:
    return sum(1 for path in site.requests if path.startswith("/img/"))


def dealer(site, posts: int = 3) -> list[int]:
    site.channel("dealer")
    return [
        site.add_post("dealer", f"carving {n}", images=[site.add_photo(f"p{n}", seed=n)])
        for n in range(posts)
    ]


def watched_dealer(site, make_app, extra: str = CHECKED):
    """The dealer channel (:func:`dealer`) watched with ``extra`` settings: (app, target)."""
    dealer(site)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer", extra))
    return app, app.watchlist.target("dealer")


async def test_unchanged_page_is_checked_without_images_or_screenshot(site, make_app):
    app, target = watched_dealer(site, make_app)

    first = await run_capture(app, target)
    assert first.mode == "full" and first.status == CaptureStatus.OK
    assert "screenshot" in artifact_kinds(app, first.capture_id)
    fetched = image_requests(site)
    assert fetched >= 3

    second = await run_capture(app, target)
    assert second.status == CaptureStatus.OK and second.mode == "check"
    assert second.events == () and second.post_count == 3
    assert artifact_kinds(app, second.capture_id) == ["html", "metadata", "posts"]
    assert format_summary(second) == (
        f"dealer: ok, check #{second.capture_id}: the same 3 posts as the last capture"
    )
    assert image_requests(site) == fetched  # the checks' browser fetched no photo
    row = app.store.db.execute(
        "SELECT mode, fingerprint FROM captures WHERE id = ?", [second.capture_id]
    ).fetchone()
    first_fp = app.store.db.execute(
        "SELECT fingerprint FROM captures WHERE id = ?", [first.capture_id]
    ).fetchone()[0]
    assert row == ("check", first_fp)
    # The posts were seen by the check: "last seen" moves on, as a deleted-post alert reports.
    seen = app.store.db.execute("SELECT DISTINCT last_capture_id FROM posts").fetchall()
    assert seen == [(second.capture_id,)]
    # Every check is in the signed custody log, saying what it was.
    entry = app.custody.entries(f"capture:{second.capture_id}")[-1]
    assert entry.action == "captured" and entry.details["mode"] == "check"
    assert verify_chain(app.custody.entries(), app.custody.public_keys()) == []


async def test_a_check_that_finds_a_change_becomes_a_full_capture(site, make_app):
    app, target = watched_dealer(site, make_app)
    ids = [post.id for post in site.posts("dealer")]
    await run_capture(app, target)
    assert (await run_capture(app, target)).mode == "check"

    site.add_post("dealer", "teak bangle, inbox", images=[site.add_photo("new", seed=9)])
    new = await run_capture(app, target)
    assert new.mode == "full" and kinds(new) == ["new_post"]
    assert {"screenshot", "image", "wacz"} <= set(artifact_kinds(app, new.capture_id))

    site.edit_post("dealer", ids[1], text="carving SOLD")
    edited = await run_capture(app, target)
    assert edited.mode == "full" and kinds(edited) == ["edited_post"]

    site.delete_post("dealer", ids[1])
    deleted = await run_capture(app, target)
    assert deleted.mode == "full" and kinds(deleted) == ["deleted_post"]

    assert (await run_capture(app, target)).mode == "check"


async def test_a_login_wall_is_recorded_by_a_full_capture(site, make_app):
    app, target = watched_dealer(site, make_app)
    await run_capture(app, target)

    site.route("/s/dealer", "<html><body><h1>Log in to continue</h1></body></html>")
    walled = await run_capture(app, target)
    assert walled.mode == "full" and walled.status != CaptureStatus.OK
    assert "error_screenshot" in artifact_kinds(app, walled.capture_id)

    site.unroute("/s/dealer")
    # After a failure the next capture is full: a check compares with a capture that worked.
    assert (await run_capture(app, target)).mode == "full"
    assert (await run_capture(app, target)).mode == "check"


async def test_a_full_capture_can_be_asked_for(site, make_app):
    app, target = watched_dealer(site, make_app)
    await run_capture(app, target)
    asked = await run_capture(app, target, full=True)  # `watcher check --full`
    assert asked.mode == "full" and "screenshot" in artifact_kinds(app, asked.capture_id)


async def test_full_capture_again_once_full_every_has_passed(site, make_app):
    app, target = watched_dealer(site, make_app)  # full_every: 1h
    assert (await run_capture(app, target)).mode == "full"
    assert (await run_capture(app, target)).mode == "check"
    # The same data with full_every: 1s, a second after: the full capture is due however
    # long the first two took (a 2 s window failed on a loaded machine).
    await asyncio.sleep(1.1)
    later = make_app(channel_target("dealer", f"{site.base_url}/s/dealer", "    full_every: 1s\n"))
    assert (await run_capture(later, later.watchlist.target("dealer"))).mode == "full"


@pytest.mark.parametrize(
    "extra",
    [
        "",  # full_every not set: every capture is full, as before checks existed
        # A check reads one page: deeper pages (and scroll, load_more: the same rule) need a
        # full look.
        CHECKED + "    pages: 2\n",
    ],
)
async def test_targets_that_are_never_checked(site, make_app, extra):
    app, target = watched_dealer(site, make_app, extra)
    await run_capture(app, target)
    again = await run_capture(app, target)
    assert again.mode == "full"
    assert "screenshot" in artifact_kinds(app, again.capture_id)


def test_full_every_is_checked_in_the_watchlist(write_watchlist):
    path = write_watchlist(
        """
        defaults:
          full_every: 6h
        targets:
          - {name: a, platform: telegram, url: 'https://t.me/s/a'}
          - {name: b, platform: telegram, url: 'https://t.me/s/b', full_every: 0}
        """
    )
    watchlist = load_watchlist(path)
    assert [t.full_every for t in watchlist.targets] == [6 * 3600.0, 0.0]

    bad = write_watchlist(
        "targets:\n  - {name: a, platform: telegram, url: 'https://t.me/s/a', full_every: soon}\n",
        name="bad.yaml",
    )
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(bad)
    message = str(caught.value)
    assert "full_every" in message and "`soon` is not a length of time" in message
    assert "e.g. 30s, 15m, 2h" in message


def test_view_counts_do_not_change_the_fingerprint():
    post = Post("c/1", "ivory", image_urls=("https://x/1.jpg",), views="1.2K")
    same = posts_fingerprint([post])
    assert posts_fingerprint([replace(post, views="9K")]) == same
    assert posts_fingerprint([replace(post, image_urls=())]) != same
    assert posts_fingerprint([replace(post, text="ivory!")]) != same
    assert posts_fingerprint([post, replace(post, post_id="c/2")]) != same


async def test_checks_go_into_evidence_bundles_that_verify(site, make_app, tmp_path):
    app, target = watched_dealer(site, make_app)
    await run_capture(app, target)
    checked = await run_capture(app, target)
    assert checked.mode == "check"

    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    report = verify_bundle(bundle, Trust.of(app.custody.key.fingerprint))
    assert [f.message for f in report.findings if not f.ok] == []
    with zipfile.ZipFile(bundle) as opened:
        names = opened.namelist()
    assert f"captures/{checked.capture_id}/capture.json" in names


async def test_checks_reuse_contexts_without_carrying_cookies(site):
    # The checks' browser keeps anonymous contexts for the next check (a new one was most of a
    # check's cost) but nothing a site set: cookies are cleared, the page left blank, others
    # closed. A context whose capture failed is not reused.
    site.route("/cookie", "<p>hi</p>", headers={"Set-Cookie": "visitor=42; Path=/"})
    browser = Browser(
        max_concurrent=2, images=False, reuse_contexts=True, allow_private_network=True
    )
    try:
        async with browser.context() as first:
            page = await first.new_page()
            await page.goto(f"{site.base_url}/cookie")
            assert [c["name"] for c in await first.cookies()] == ["visitor"]
        async with browser.context() as second:
            assert second is first
            assert await second.cookies() == []
            assert [page.url for page in second.pages] == ["about:blank"]  # ready to navigate
            await second.new_page()  # a second page is closed when the context is kept
        with pytest.raises(RuntimeError):
            async with browser.context() as third:
                assert third is first and len(third.pages) == 1
                raise RuntimeError("the capture failed")
        async with browser.context() as fourth:
            assert fourth is not first
    finally:
        await browser.close()
