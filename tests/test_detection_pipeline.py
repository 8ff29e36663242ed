"""Detection inside a real capture: keyword matches stored, events and alerts that say why."""

from __future__ import annotations

from tests.conftest import alerts_yaml, channel_target, shop_target
from watcher.demo.images import variant
from watcher.models import EventKind
from watcher.pipeline import run_capture
from watcher.steps.keywords import DETECT_CHARS, DETECT_MATCHES

CHAT = -100777


def outbox_kinds(app) -> list[str]:
    rows = app.store.db.execute(
        "SELECT e.kind FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id"
    ).fetchall()
    return [r[0] for r in rows]


async def test_keyword_post_alerts_once_and_says_why(site, make_app):
    site.channel("dealer")
    site.add_post("dealer", "bán vòng tay ngà voi, inbox giá")  # matched, but a baseline
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts_yaml(CHAT))
    target = app.watchlist.target("dealer")
    baseline = await run_capture(app, target)
    assert baseline.events == ()
    stored = app.store.db.execute("SELECT grp, text FROM keyword_matches").fetchall()
    assert stored and stored[0][1].lower() == "ngà voi"

    site.add_post("dealer", "New stock: i.v.o.r.y bangles and 象牙 chopsticks")
    site.add_post("dealer", "Teak elephant statue, hand carved")
    summary = await run_capture(app, target)

    new_posts = [e for e in summary.events if e.kind == EventKind.NEW_POST]
    keyword = [e for e in summary.events if e.kind == EventKind.KEYWORD]
    assert len(new_posts) == 2 and len(keyword) == 1
    assert keyword[0].post_id == "dealer/2"
    texts = {k["text"] for k in keyword[0].details["keywords"]}
    assert {"i.v.o.r.y", "象牙"} <= texts
    flagged = next(e for e in new_posts if e.post_id == "dealer/2")
    assert flagged.details["groups"] == keyword[0].details["groups"]
    # One alert per post: the new_post alert carries the match, the keyword event is not sent.
    assert outbox_kinds(app) == ["new_post", "new_post"]


async def test_alert_on_keyword_target_alerts_only_on_matches(site, make_app):
    site.channel("noisy")
    site.add_post("noisy", "hello")
    app = make_app(
        channel_target("noisy", f"{site.base_url}/s/noisy", "    alert_on: keyword\n"),
        header=alerts_yaml(CHAT),
    )
    target = app.watchlist.target("noisy")
    await run_capture(app, target)
    site.add_post("noisy", "ceramic cats")
    site.add_post("noisy", "穿山甲鳞片 for sale")
    await run_capture(app, target)

    assert outbox_kinds(app) == ["keyword"]


async def test_edit_adding_a_code_word_is_a_keyword_hit(site, make_app):
    site.channel("dealer")
    first = site.add_post("dealer", "carved bangle")
    site.add_post("dealer", "other")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    site.edit_post("dealer", first, text="carved bangle, real rhino horn")
    summary = await run_capture(app, target)

    keyword = [e for e in summary.events if e.kind == EventKind.KEYWORD]
    assert len(keyword) == 1 and keyword[0].details["post_event"] == "edited_post"
    assert "rhino" in keyword[0].details["groups"][0]


async def test_a_phone_shared_by_two_accounts_links_them(site, make_app):
    site.channel("dealer")
    site.shop("front")
    site.add_post("dealer", "Inbox or call 012 345 678 for prices")
    site.add_post("front", "ceramic cats")
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        shop_target("front", f"{site.base_url}/shop/front"),
    )
    await run_capture(app, app.watchlist.target("dealer"))
    await run_capture(app, app.watchlist.target("front"))
    site.add_post("front", "Bangles, contact +855 12 345 678 (Telegram)")
    summary = await run_capture(app, app.watchlist.target("front"))

    (event,) = [e for e in summary.events if e.kind == EventKind.CONTACT_SEEN_BEFORE]
    assert event.details["value"] == "+85512345678"
    assert event.details["first_seen"]["target"] == "dealer"
    stored = app.store.db.execute("SELECT DISTINCT target FROM contacts ORDER BY 1").fetchall()
    assert stored == [("dealer",), ("front",)]


async def test_a_reference_photo_from_an_earlier_case_alerts_by_name(site, make_app, tmp_path):
    folder = tmp_path / "seized"
    folder.mkdir()
    (folder / "case-12-bangle.jpg").write_bytes(variant(77))
    site.channel("dealer")
    site.add_post("dealer", "old")
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        header=f"images:\n  known: [{folder}]\n",
    )
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    site.add_post("dealer", "new stock", images=[site.add_photo("x", seed=77, scale=0.7)])
    site.add_post("dealer", "other", images=[site.add_photo("y", seed=78)])
    summary = await run_capture(app, target)

    (event,) = [e for e in summary.events if e.kind == EventKind.KNOWN_IMAGE]
    assert event.details["reference"] == "seized/case-12-bangle.jpg"
    assert event.post_id == "dealer/2"


async def test_login_wall_is_blocked_not_deleted(site, make_app):
    site.channel("dealer")
    for n in range(4):
        site.add_post("dealer", f"post {n}")
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer", "    session: puppet-1\n").replace(
            "    session: puppet-1\n", ""
        ),
    )
    target = app.watchlist.target("dealer")
    await run_capture(app, target)
    site.route(
        "/s/dealer",
        "<html><body><form id=login_form action=/login><input name=email>"
        "<input type=password name=pass><button>Log in</button></form></body></html>",
    )
    blocked = await run_capture(app, target)

    assert blocked.status == "blocked" and blocked.reason == "login_wall"
    assert "log" in blocked.events[0].details["message"].lower()
    assert app.store.db.execute(
        "SELECT COUNT(*) FROM posts WHERE deleted_at IS NOT NULL"
    ).fetchone() == (0,)
    status = app.store.last_capture("dealer")
    assert status is not None and status.status == "blocked"

    site.route("/s/dealer", "<html><body><section class=tgme_channel_history></section></body>")
    empty = await run_capture(app, target)
    assert empty.status == "blocked" and empty.reason == "empty_after_posts"
    assert app.store.db.execute(
        "SELECT COUNT(*) FROM posts WHERE deleted_at IS NOT NULL"
    ).fetchone() == (0,)


def test_console_shows_one_line_per_post_with_keywords():
    from watcher.alert.console import events_to_show
    from watcher.models import Event

    new = Event(EventKind.NEW_POST, "dealer", "d/1", {"text": "象牙"})
    keyword = Event(EventKind.KEYWORD, "dealer", "d/1", {"post_event": "new_post"})
    alone = Event(EventKind.KEYWORD, "noisy", "n/9", {"post_event": "new_post"})
    assert events_to_show([new, keyword, alone]) == [new, alone]


async def test_a_huge_post_is_stored_whole_but_read_by_detection_only_so_far(site, make_app):
    # A hostile "post" of 1 MB: every word a keyword, a phone number at the very end.
    spam = "ivory bangle, call 012 345 678. " * 33_000
    site.channel("dealer")
    site.add_post("dealer", spam + " pangolin scales, zalo 0912 345 678")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    summary = await run_capture(app, app.watchlist.target("dealer"))

    assert summary.status == "ok"
    (text,) = app.store.db.execute("SELECT text FROM post_versions").fetchone()
    assert text.endswith("zalo 0912 345 678")  # the evidence is whole
    matches = app.store.db.execute("SELECT term, start FROM keyword_matches").fetchall()
    assert len(matches) == DETECT_MATCHES
    assert all(start < DETECT_CHARS for _term, start in matches)
    contacts = app.store.db.execute("SELECT value FROM contacts").fetchall()
    assert 0 < len(contacts) <= DETECT_MATCHES
    assert ("+84912345678",) not in contacts  # past the part detection reads
