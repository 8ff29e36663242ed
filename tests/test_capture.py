"""End to end: real Chromium against the loopback fixture site, real SQLite in a temp folder."""

from __future__ import annotations

import gzip
import io
import sqlite3
import zipfile

from PIL import Image

from tests.conftest import channel_target, shop_target
from watcher.capture.page import MAX_SCREENSHOT_HEIGHT
from watcher.demo.images import big_photo_bytes
from watcher.models import CaptureStatus, EventKind
from watcher.pipeline import run_capture
from watcher.steps.keep import keep
from watcher.steps.take import take
from watcher.timeutil import utc_now


def kinds(summary) -> list[str]:
    return sorted(str(e.kind) for e in summary.events)


async def test_baseline_then_exactly_one_new_post(site, make_app):
    site.channel("dealer")
    for n in range(3):
        site.add_post("dealer", f"carving {n}", images=[site.add_photo(f"p{n}", seed=n)])
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")

    first = await run_capture(app, target)
    assert first.status == CaptureStatus.OK and first.baseline
    assert first.post_count == 3
    assert first.events == ()  # a baseline is recorded, not alerted as new

    site.add_post("dealer", "teak bangle, inbox for price")
    second = await run_capture(app, target)
    assert not second.baseline
    assert kinds(second) == ["new_post"]
    event = second.events[0]
    assert event.post_id == "dealer/4"
    assert "teak bangle" in event.details["text"]
    assert event.details["permalink"].endswith("/dealer/4")

    third = await run_capture(app, target)
    assert third.events == ()  # nothing changed: nothing to say


async def test_edit_keeps_every_version(site, make_app):
    site.channel("dealer")
    first_id = site.add_post("dealer", "ivory bracelet 200$")
    site.add_post("dealer", "other item")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)

    site.edit_post("dealer", first_id, text="bracelet SOLD")
    summary = await run_capture(app, target)

    assert kinds(summary) == ["edited_post"]
    details = summary.events[0].details
    assert details["previous_text"] == "ivory bracelet 200$"
    assert details["text"] == "bracelet SOLD"
    versions = app.store.db.execute(
        "SELECT v.version, v.text FROM post_versions v JOIN posts p ON p.id = v.post_row "
        "WHERE p.post_id = 'dealer/1' ORDER BY v.version"
    ).fetchall()
    assert versions == [(1, "ivory bracelet 200$"), (2, "bracelet SOLD")]


async def test_image_swap_is_an_edit(site, make_app):
    site.channel("dealer")
    post = site.add_post("dealer", "same words", images=[site.add_photo("a", seed=1)])
    site.add_post("dealer", "later")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)

    site.edit_post("dealer", post, images=[site.add_photo("b", seed=2)])
    summary = await run_capture(app, target)

    assert kinds(summary) == ["edited_post"]
    assert summary.events[0].details["text_changed"] is False
    assert len(summary.events[0].details["images_added"]) == 1


async def test_deleted_post_records_when_last_seen(site, make_app):
    site.channel("dealer")
    ids = [site.add_post("dealer", f"post {n}") for n in range(5)]
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    baseline = await run_capture(app, target)

    site.delete_post("dealer", ids[2])
    summary = await run_capture(app, target)

    assert kinds(summary) == ["deleted_post"]
    event = summary.events[0]
    assert event.post_id == "dealer/3"
    assert event.details["text"] == "post 2"
    assert event.details["last_capture_id"] == baseline.capture_id
    assert event.details["last_seen_at"] <= summary.started_at
    row = app.store.db.execute(
        "SELECT deleted_at, deleted_capture_id FROM posts WHERE post_id = 'dealer/3'"
    ).fetchone()
    assert row[0] is not None and row[1] == summary.capture_id
    # The deleted post's text stays in the archive: evidence is never thrown away.
    assert app.store.db.execute(
        "SELECT COUNT(*) FROM post_versions WHERE text = 'post 2'"
    ).fetchone() == (1,)


async def test_oldest_post_leaving_the_window_is_not_a_deletion(site, make_app):
    site.channel("dealer")
    ids = [site.add_post("dealer", f"post {n}") for n in range(20)]
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)

    site.add_post("dealer", "newest")  # the page shows 20 posts: post 0 drops off the page
    summary = await run_capture(app, target)

    assert kinds(summary) == ["new_post"]
    assert ids[0] == 1


async def test_repost_on_another_target_is_seen_before_but_unrelated_photo_is_not(site, make_app):
    site.channel("dealer")
    site.shop("frontman")
    site.add_post("dealer", "carved tusk", images=[site.add_photo("orig", seed=41)])
    site.add_post("frontman", "first listing", images=[site.add_photo("other", seed=99)])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        shop_target("frontman", f"{site.base_url}/shop/frontman"),
    )
    dealer, frontman = app.watchlist.target("dealer"), app.watchlist.target("frontman")
    await run_capture(app, dealer)
    await run_capture(app, frontman)

    repost = site.add_photo("repost", seed=41, scale=0.6, quality=70, crop=0.03, watermark="x")
    site.add_post("frontman", "vintage bangle", images=[repost])
    site.add_post("frontman", "teak elephant", images=[site.add_photo("teak", seed=7)])
    summary = await run_capture(app, frontman)

    seen = [e for e in summary.events if e.kind == EventKind.IMAGE_SEEN_BEFORE]
    assert len(seen) == 1
    details = seen[0].details
    assert seen[0].post_id == "L1002"
    assert details["first_seen"]["target"] == "dealer"
    assert details["first_seen"]["post_id"] == "dealer/1"
    assert details["distance"] <= 10
    assert details["same_target"] is False
    assert sorted(str(e.kind) for e in summary.events).count("new_post") == 2


async def test_identical_image_is_stored_once(site, make_app):
    site.channel("a")
    site.channel("b")
    photo = site.add_photo("same", seed=5)
    site.add_post("a", "x", images=[photo])
    site.add_post("b", "y", images=[photo])
    app = make_app(
        channel_target("a", f"{site.base_url}/s/a"), channel_target("b", f"{site.base_url}/s/b")
    )
    await run_capture(app, app.watchlist.target("a"))
    summary = await run_capture(app, app.watchlist.target("b"))

    assert app.store.db.execute("SELECT COUNT(*) FROM images").fetchone() == (1,)
    sha = app.store.db.execute("SELECT sha256 FROM images").fetchone()[0]
    assert app.store.db.execute(
        "SELECT COUNT(*) FROM artifacts WHERE sha256 = ?", [sha]
    ).fetchone() == (2,)
    assert len(list(app.blobs.root.rglob(sha))) == 1
    # The same bytes on another account is the strongest repost signal: distance 0.
    seen = [e for e in summary.events if e.kind == EventKind.IMAGE_SEEN_BEFORE]
    assert [e.details["distance"] for e in seen] == [0]


async def test_dead_target_fails_while_others_succeed(site, make_app):
    site.channel("alive")
    site.add_post("alive", "hello")
    site.route("/s/gone", "<h1>Not found</h1>", status=404)
    app = make_app(
        channel_target("alive", f"{site.base_url}/s/alive"),
        channel_target("gone", f"{site.base_url}/s/gone"),
        channel_target("nohost", "http://127.0.0.1:9/s/x"),
    )
    results = {t.name: await run_capture(app, t) for t in app.watchlist.targets}

    assert results["alive"].status == CaptureStatus.OK
    assert results["gone"].status == CaptureStatus.FAILED
    assert results["gone"].reason == "http_error"
    assert results["nohost"].status == CaptureStatus.FAILED
    assert results["nohost"].reason == "network"
    event = results["gone"].events[0]
    assert event.kind == EventKind.CAPTURE_FAILED and "HTTP 404" in event.details["message"]
    rows = app.store.db.execute(
        "SELECT target, status, reason FROM captures ORDER BY target"
    ).fetchall()
    assert rows == [
        ("alive", "ok", None),
        ("gone", "failed", "http_error"),
        ("nohost", "failed", "network"),
    ]
    # The failure is kept with a screenshot of what the browser showed.
    kinds_kept = app.store.db.execute(
        "SELECT a.kind FROM artifacts a JOIN captures c ON c.id = a.capture_id "
        "WHERE c.target = 'gone'"
    ).fetchall()
    assert kinds_kept == [("error_screenshot",)]


async def test_failure_streak_alerts_once_then_recovers(site, make_app):
    site.channel("flaky")
    site.add_post("flaky", "one")
    app = make_app(channel_target("flaky", f"{site.base_url}/s/flaky"))
    target = app.watchlist.target("flaky")
    await run_capture(app, target)
    site.route("/s/flaky", "down", status=503)
    first = await run_capture(app, target)
    second = await run_capture(app, target)
    site.unroute("/s/flaky")
    back = await run_capture(app, target)

    stored = [e.kind for e in app.store.events("flaky")]
    assert stored == [EventKind.CAPTURE_FAILED, EventKind.CAPTURE_RECOVERED]
    assert first.events[0].id is not None and second.events[0].id is None
    assert back.events[0].details == {"failures": 2}


async def test_selector_matching_nothing_is_a_clear_failure(site, make_app):
    site.shop("store")
    site.add_post("store", "item")
    yaml = shop_target("store", f"{site.base_url}/shop/store").replace(
        "post: .listing", "post: .product-card"
    )
    app = make_app(yaml)
    summary = await run_capture(app, app.watchlist.target("store"))

    assert summary.status == CaptureStatus.FAILED and summary.reason == "no_posts"
    message = summary.events[0].details["message"]
    assert ".product-card" in message and "selectors" in message and "store" in message


async def test_500_posts_and_a_20mb_image(site, make_app):
    site.channel("big")
    big = site.put_image("huge.png", big_photo_bytes(20 * 1024 * 1024), "image/png")
    site.add_post("big", "huge photo", images=[big])
    for n in range(499):
        site.add_post("big", f"post {n} " + "lorem ipsum " * 20)
    # Serve all 500 on one page (the channel page shows 20), as a dumped listing would.
    site.route("/s/bigpage", _long_page(site))
    app = make_app(
        channel_target("big", f"{site.base_url}/s/bigpage"),
        channel_target("bigimg", f"{site.base_url}/s/big", "    pages: 30\n"),
    )
    page = await run_capture(app, app.watchlist.target("big"))
    assert page.status == CaptureStatus.OK and page.post_count == 500
    # The page is far taller than a screenshot may be: its top, cut at the limit.
    (shot,) = app.store.db.execute(
        "SELECT a.sha256 FROM artifacts a WHERE a.kind = 'screenshot' AND a.capture_id = ?",
        [page.capture_id],
    ).fetchone()
    with Image.open(io.BytesIO(app.blobs.read(shot))) as image:
        assert image.size == (1280, MAX_SCREENSHOT_HEIGHT)
        assert image.convert("L").getextrema()[0] < 128  # text was painted, not a blank cut

    paged = await run_capture(app, app.watchlist.target("bigimg"))
    assert paged.status == CaptureStatus.OK
    assert paged.post_count == 500  # read back through ?before= pages
    size = app.store.db.execute("SELECT size, phash IS NOT NULL FROM images").fetchall()
    assert (len(big_photo_bytes(20 * 1024 * 1024)) >= 20 * 1024 * 1024) and size
    assert any(s >= 20 * 1024 * 1024 and hashed for s, hashed in size)


def _long_page(site) -> str:
    import urllib.request

    chunks = []
    before = None
    while True:
        query = f"?before={before}" if before else ""
        with urllib.request.urlopen(f"{site.base_url}/s/big{query}") as response:
            html = response.read().decode()
        start = html.find('<section class="tgme_channel_history')
        end = html.find("</section>", start)
        if start < 0 or '<div class="tgme_widget_message ' not in html[start:end]:
            break
        chunks.insert(0, html[html.find(">", start) + 1 : end])
        before = min(int(x) for x in __import__("re").findall(r'data-post="big/(\d+)"', html))
    return "<html><body><section>" + "".join(chunks) + "</section></body></html>"


def test_database_survives_reopen(tmp_path):
    from watcher.store.db import Store

    store = Store(tmp_path / "w.db")
    store.upsert_target("t", "telegram", "http://127.0.0.1/x", "2026-01-01T00:00:00.000Z")
    store.close()
    again = Store(tmp_path / "w.db")
    assert again.db.execute("SELECT name FROM targets").fetchall() == [("t",)]
    applied = again.db.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert ("m001_initial",) in applied
    assert sqlite3.connect(tmp_path / "w.db").execute("PRAGMA integrity_check").fetchone() == (
        "ok",
    )


async def test_images_the_page_loaded_are_not_downloaded_again(site, make_app):
    site.channel("dealer")
    site.add_post(
        "dealer", "two photos", images=[site.add_photo("a1", seed=1), site.add_photo("a2", seed=2)]
    )
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    summary = await run_capture(app, app.watchlist.target("dealer"))

    assert summary.new_images == 2
    fetched = [p for p in site.requests if p.startswith("/img/")]
    assert sorted(fetched) == ["/img/a1", "/img/a2"]  # once each, by the page itself


async def test_unchanged_page_reuses_stored_hashes_and_skips_the_mhtml(site, make_app):
    site.channel("dealer")
    site.add_post("dealer", "one photo", images=[site.add_photo("a1", seed=1)])
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    # A stored hash that decoding could never give: seeing it back proves no second decode.
    app.store.db.execute("UPDATE images SET phash = '0000000000000001'")

    taken = await take(app, target)
    kept = await keep(app, target, taken, utc_now())

    assert taken.snapshot.mhtml is None  # same HTML as last time: no new web archive either
    assert "wacz" not in {a.kind for a in kept.artifacts}
    (image,) = kept.images.values()
    assert image.phash == 1
    assert image.url == f"{site.base_url}/img/a1"

    site.add_post("dealer", "a new post")
    changed = await take(app, target)
    # The page changed: a new WACZ; the MHTML (every photo again, as base64) only on the
    # target's first capture unless the watchlist says keep_mhtml.
    assert changed.snapshot.mhtml is None
    assert "wacz" in {a.kind for a in (await keep(app, target, changed, utc_now())).artifacts}


async def test_first_capture_and_keep_mhtml_take_the_mhtml(site, make_app):
    site.channel("dealer")
    site.add_post("dealer", "one photo", images=[site.add_photo("a1", seed=1)])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        channel_target("kept", f"{site.base_url}/s/dealer", extra="    keep_mhtml: true\n"),
    )
    first = await run_capture(app, app.watchlist.target("dealer"))
    await run_capture(app, app.watchlist.target("kept"))
    site.add_post("dealer", "a new post")
    second = await run_capture(app, app.watchlist.target("dealer"))
    kept = await run_capture(app, app.watchlist.target("kept"))

    def kinds(summary) -> set[str]:
        rows = app.store.db.execute(
            "SELECT kind FROM artifacts WHERE capture_id = ?", [summary.capture_id]
        )
        return {kind for (kind,) in rows}

    def mhtml_in_wacz(summary) -> bool:
        (sha,) = app.store.db.execute(
            "SELECT sha256 FROM artifacts WHERE kind = 'wacz' AND capture_id = ?",
            [summary.capture_id],
        ).fetchone()
        with zipfile.ZipFile(io.BytesIO(app.blobs.read(sha))) as wacz:
            warc = gzip.decompress(wacz.read("archive/capture.warc.gz"))
        return b"urn:watcher:mhtml" in warc

    assert {"wacz", "screenshot"} <= kinds(first) and mhtml_in_wacz(first)
    assert "wacz" in kinds(second) and not mhtml_in_wacz(second)
    assert mhtml_in_wacz(kept)  # keep_mhtml: true, every changed capture
