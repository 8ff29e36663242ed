"""A recipe that starts to miss is recorded as ``layout_changed``, alerted once, and marks
nothing new or deleted: pure rules first, then a fixture site whose markup changes under a
running watch."""

from __future__ import annotations

import itertools
import urllib.request

from tests.conftest import shop_target
from watcher.alert.console import format_event
from watcher.alert.render import render_alert
from watcher.detect.layout import LayoutChange, Seen, detect_layout_change
from watcher.models import CaptureStatus, EventKind, Post
from watcher.pipeline import run_capture

TEXTS = ("ivory bangle", "horn carving", "tusk piece", "old netsuke")
SEEN = Seen(
    post_ids=frozenset({"a", "b", "c", "d"}),
    texts=TEXTS,
    times=("2026-01-01T00:00:00.000Z",) * 4,
    recent_counts=(4, 4, 4),
)


def _posts(ids, texts=TEXTS, time="2026-01-02T00:00:00.000Z") -> list[Post]:
    return [Post(i, text=t, posted_at=time) for i, t in zip(ids, texts, strict=False)]


def test_unchanged_new_and_first_captures_are_not_layout_changes():
    assert detect_layout_change(_posts("abcd"), SEEN) is None
    assert detect_layout_change(_posts("eabc"), SEEN) is None  # one new post
    fresh = _posts("wxyz", ("new tusk", "new horn", "new skin", "new scale"))
    assert detect_layout_change(fresh, SEEN) is None  # a page that turned over
    assert detect_layout_change(_posts("abcd"), Seen(frozenset(), (), (), ())) is None


def test_every_text_or_time_empty_names_the_field():
    change = detect_layout_change(_posts("abcd", ("",) * 4), SEEN)
    assert change is not None and change.field == "text"
    change = detect_layout_change(_posts("abcd", time=None), SEEN)
    assert change is not None and change.field == "time"
    # A target whose posts seldom had a time: no time now is no news.
    untimed = Seen(SEEN.post_ids, SEEN.texts, (None,) * 4, SEEN.recent_counts)
    assert detect_layout_change(_posts("abcd", time=None), untimed) is None


def test_same_posts_under_new_ids_is_an_id_change():
    change = detect_layout_change(_posts(["x1", "x2", "x3", "x4"]), SEEN)
    assert change == LayoutChange("id", change.details) and "same posts" in change.details


def test_far_fewer_posts_than_the_last_captures_read():
    many = Seen(SEEN.post_ids, SEEN.texts, SEEN.times, (20, 21, 19))
    change = detect_layout_change(_posts("ab"), many)
    assert change is not None and change.field == "post" and "about 20" in change.details
    assert detect_layout_change(_posts("abcd") * 3, many) is None


def _page(site, name: str) -> str:
    with urllib.request.urlopen(f"{site.base_url}/shop/{name}") as answer:  # loopback
        return answer.read().decode("utf-8")


async def test_markup_changing_under_a_running_watch(site, make_app):
    site.shop("store")
    for text in ("ivory bangle", "horn carving", "tusk piece"):
        site.add_post("store", text)
    app = make_app(shop_target("store", f"{site.base_url}/shop/store"))
    target = app.watchlist.target("store")
    baseline = await run_capture(app, target)
    assert baseline.status == CaptureStatus.OK

    # The shop renames the description's class: posts still found, every text empty.
    page = _page(site, "store")
    site.route("/shop/store", page.replace('class="desc"', 'class="description"'))
    changed = await run_capture(app, target)
    again = await run_capture(app, target)

    assert changed.status == CaptureStatus.FAILED and changed.reason == "layout_changed"
    (alert,) = changed.events
    message = alert.details["message"]
    assert "`text`" in message and "watcher probe --target store" in message
    assert again.reason == "layout_changed" and again.events[0].id is None  # one alert
    assert render_alert(alert, "generic", None).html.startswith("<b>🧩 Layout changed</b>")
    assert format_event(alert).startswith("[LAYOUT CHANGED] store")
    row = app.store.db.execute(
        "SELECT reason, message FROM captures WHERE id = ?", [changed.capture_id]
    ).fetchone()
    assert row[0] == "layout_changed" and "text" in row[1]

    # Then ids that change on every load: the same posts look new, the old ones gone.
    counter = itertools.count()
    site.unroute("/shop/store")
    original = _page(site, "store")
    for _ in range(2):
        n = next(counter)
        site.route("/shop/store", original.replace('data-id="L', f'data-id="R{n}-L'))
        churn = await run_capture(app, target)
        assert churn.reason == "layout_changed"
        assert (
            "`id`"
            in app.store.db.execute(
                "SELECT message FROM captures WHERE id = ?", [churn.capture_id]
            ).fetchone()[0]
        )

    # The page back as it was: the watch recovers and nothing was ever new or deleted.
    site.unroute("/shop/store")
    back = await run_capture(app, target)
    assert back.status == CaptureStatus.OK
    kinds = [e.kind for e in app.store.events("store")]
    assert kinds == [EventKind.CAPTURE_FAILED, EventKind.CAPTURE_RECOVERED]
    assert EventKind.NEW_POST not in kinds and EventKind.DELETED_POST not in kinds
    assert {p.post_id for p in app.store.live_posts("store")} == {"L1001", "L1002", "L1003"}
