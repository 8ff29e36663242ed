"""Dealers: accounts tied by shared contacts, photos and forwards, grouped, named, confirmed or
rejected by a person; on real SQLite files filled the way captures fill them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_links import REPOST, Archive
from watcher.demo.images import encode, make_photo, variant
from watcher.detect.dealers import Observation, Rules, build_ties, group, tie_id
from watcher.errors import WatcherError
from watcher.store.dealers import (
    dealers,
    find_dealer,
    find_tie,
    observations,
    record_verdict,
    rename,
)


@pytest.fixture
def archive(tmp_path: Path):
    made = Archive(tmp_path / "data")
    yield made
    made.store.close()


def _accounts(store) -> list[tuple[str, ...]]:
    return [d.accounts for d in dealers(store)]


def test_a_shared_phone_ties_two_accounts_with_its_evidence(archive: Archive):
    archive.post("dealer", "1", "Ivory bangle, call 012 345 678")
    archive.post("bystander", "5", "ceramic cats, call 097 123 4567")
    archive.post("front", "10", "new stock WhatsApp +855 12 345 678")

    (dealer,) = dealers(archive.store)
    assert dealer.accounts == ("dealer", "front")  # the first seen account anchors it
    assert dealer.name.startswith("dealer-")
    (tie,) = dealer.ties
    (key,) = tie.keys
    assert (key.kind, key.key, tie.joins) == ("phone", "+85512345678", True)
    assert [(s.account, s.post_id, s.detail) for s in key.seen] == [
        ("dealer", "1", "012 345 678"),
        ("front", "10", "+855 12 345 678"),
    ]
    assert key.seen[0].at == "2026-11-01T10:01:00Z"
    # The name is kept: a second look finds the same dealer under the same name.
    assert find_dealer(archive.store, dealer.name).accounts == dealer.accounts


def test_a_stock_photo_on_many_accounts_does_not_make_them_one_dealer(archive: Archive):
    stock = encode(make_photo(5))
    archive.post("shop1", "1", "ceramic elephant", (stock,))
    for n, name in enumerate(["shop2", "shop3", "shop4", "shop5"], start=2):
        archive.post(name, str(n), "statue", (variant(5, **REPOST),))
    assert _accounts(archive.store) == []
    assert build_ties(observations(archive.store)) == []  # no tie stands on a stock photo
    # Two accounts sharing two photos nobody else has are tied: the rule only spares the
    # stock photo.
    archive.post("shop1", "7", "bangle", (encode(make_photo(6)),))
    archive.post("shop1", "8", "tusk", (encode(make_photo(7)),))
    archive.post("shop2", "17", "bangle", (variant(6, **REPOST),))
    archive.post("shop2", "18", "tusk", (variant(7, **REPOST),))
    assert _accounts(archive.store) == [("shop1", "shop2")]
    (tie,) = dealers(archive.store)[0].ties
    assert [(k.kind, k.common, k.accounts) for k in tie.keys] == [
        ("photo", False, 2),
        ("photo", False, 2),
        ("photo", True, 5),  # listed as evidence on a tie that stands on the others
    ]


def test_a_common_phone_is_weak_too_and_the_threshold_is_configurable():
    seen = [Observation("link", "https://market.example/", f"acc{i}") for i in range(5)]
    seen += [Observation("phone", "+85512345678", a) for a in ("acc0", "acc1")]
    assert [d.accounts for d in group(build_ties(seen))] == [("acc0", "acc1")]
    loose = Rules(common_after=10)
    assert [d.accounts for d in group(build_ties(seen, rules=loose))] == [
        ("acc0", "acc1", "acc2", "acc3", "acc4")
    ]


def test_a_rejected_tie_stays_rejected_whatever_comes_later(archive: Archive):
    archive.post("dealer", "1", "call 012 345 678")
    archive.post("cousin", "2", "call +855 12 345 678")
    (dealer,) = dealers(archive.store)
    tie = find_tie(dealer, "cousin,dealer")
    assert tie.id == tie_id("dealer", "cousin")
    record_verdict(archive.store, tie, "rejected", "cli:test")
    assert _accounts(archive.store) == []
    # More and stronger evidence later: still the team's call.
    archive.post("cousin", "3", "tg @ivory_kh, WhatsApp 012 345 678")
    archive.post("dealer", "4", "t.me/ivory_kh")
    assert _accounts(archive.store) == []
    (again,) = build_ties(observations(archive.store), {tie.id: "rejected"})
    assert len(again.keys) == 2 and again.weight == 1.0 and not again.joins


def test_a_confirmed_tie_joins_even_when_weak(archive: Archive):
    archive.post("a", "1", "bangle", (encode(make_photo(11)),))
    archive.post("b", "2", "bangle", (variant(11, **REPOST),))
    assert _accounts(archive.store) == []  # one reposted photo is not enough
    (tie,) = build_ties(observations(archive.store))
    record_verdict(archive.store, tie, "confirmed", "cli:test")
    assert _accounts(archive.store) == [("a", "b")]


def test_a_renamed_dealer_answers_to_both_names(archive: Archive):
    archive.post("dealer", "1", "call 012 345 678")
    archive.post("front", "2", "call +855 12 345 678")
    (dealer,) = dealers(archive.store)
    rename(archive.store, dealer, "tiger-bones-pp")
    assert dealers(archive.store)[0].name == "tiger-bones-pp"
    assert find_dealer(archive.store, dealer.name).name == "tiger-bones-pp"
    with pytest.raises(WatcherError, match="one word"):
        rename(archive.store, dealer, "two words")
    with pytest.raises(WatcherError, match="no dealer named nobody; known: tiger-bones-pp"):
        find_dealer(archive.store, "nobody")


# -- the dealer who comes back (real captures of the loopback fixture site) -------------------
async def test_a_returning_dealer_is_announced_once_for_a_new_account(site, make_app):
    from datetime import UTC, datetime, timedelta

    from tests.conftest import channel_target
    from watcher.models import EventKind
    from watcher.pipeline import run_capture

    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    site.channel("ivory-kh")
    site.add_post("ivory-kh", "Ivory bangles, call +855 12 345 678", posted_at=old)
    site.channel("bystander")
    site.add_post("bystander", "ceramic cats")
    app = make_app(
        channel_target("ivory-kh", f"{site.base_url}/s/ivory-kh"),
        channel_target("bystander", f"{site.base_url}/s/bystander"),
        channel_target("ivory-kh2", f"{site.base_url}/s/ivory-kh2"),
    )
    first = await run_capture(app, app.watchlist.target("ivory-kh"))
    assert not [e for e in first.events if e.kind == EventKind.DEALER_RETURNED]
    # A new page of the same phone a month after the old page went quiet.
    site.channel("ivory-kh2")
    site.add_post("ivory-kh2", "New shop! bangles, WhatsApp 012 345 678")
    back = await run_capture(app, app.watchlist.target("ivory-kh2"))
    (event,) = [e for e in back.events if e.kind == EventKind.DEALER_RETURNED]
    payload = event.payload
    assert (payload.account, payload.accounts, payload.how) == (
        "ivory-kh2",
        ("ivory-kh",),
        "silent",
    )
    assert payload.dealer.startswith("ivory-kh-") and payload.same == ("phone +85512345678",)
    assert payload.gone_since[:10] == old[:10]
    line = payload.console(event, None)
    assert line.startswith(f"ivory-kh2 looks like {payload.dealer} (accounts ivory-kh, silent")
    assert "same phone +85512345678" in line
    # The same account again, with more of the same: it has history now, no second alert.
    site.add_post("ivory-kh2", "more bangles, call +855 12 345 678")
    again = await run_capture(app, app.watchlist.target("ivory-kh2"))
    assert again.status == "ok" and again.events
    assert not [e for e in again.events if e.kind == EventKind.DEALER_RETURNED]
    # An old account that starts sharing the phone is a front man, not a return.
    await run_capture(app, app.watchlist.target("bystander"))
    site.add_post("bystander", "also bangles: +855 12 345 678")
    later = await run_capture(app, app.watchlist.target("bystander"))
    assert [e.kind for e in later.events if e.kind == EventKind.DEALER_RETURNED] == []
    count = app.store.db.execute("SELECT COUNT(*) FROM events WHERE kind = 'dealer_returned'")
    assert count.fetchone()[0] == 1


async def test_no_return_while_the_dealer_is_still_posting(site, make_app):
    from tests.conftest import channel_target
    from watcher.models import EventKind
    from watcher.pipeline import run_capture

    site.channel("live")
    site.add_post("live", "call +855 12 345 678")
    site.channel("mirror")
    site.add_post("mirror", "call 012 345 678")
    app = make_app(
        channel_target("live", f"{site.base_url}/s/live"),
        channel_target("mirror", f"{site.base_url}/s/mirror"),
    )
    await run_capture(app, app.watchlist.target("live"))
    summary = await run_capture(app, app.watchlist.target("mirror"))
    assert [e for e in summary.events if e.kind == EventKind.CONTACT_SEEN_BEFORE]
    assert not [e for e in summary.events if e.kind == EventKind.DEALER_RETURNED]


# -- the command line -------------------------------------------------------------------------
def test_cli_lists_shows_rejects_and_renames(archive: Archive, tmp_path: Path, capsys):
    # The command line in this process (main() as `python -m watcher` runs it): the same
    # parsing, output and error paths, without starting eight interpreters.
    from types import SimpleNamespace

    from watcher.cli import main

    def watcher(*args: str) -> SimpleNamespace:
        code = main(list(args))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    archive.post("dealer", "1", "Ivory bangle, call 012 345 678")
    archive.post("front", "10", "new stock WhatsApp +855 12 345 678")
    archive.post("cousin", "20", "tg @ivory_kh")
    archive.post("dealer", "2", "t.me/ivory_kh")
    archive.store.close()
    data = ["--data", str(tmp_path / "data"), "--watchlist", str(tmp_path / "none.yaml")]

    listed = watcher("dealers", *data)
    assert listed.returncode == 0, listed.stderr
    head = listed.stdout.splitlines()
    assert head[0] == "dealers: 1"
    name = head[1].split(":")[0]
    silent = "(silent since 2026-11-01)"  # their posts are a month old: marked as gone
    assert head[1] == f"{name}: 3 accounts: dealer {silent}, front {silent}, cousin {silent}"
    assert "phone +85512345678" in listed.stdout and "telegram ivory_kh" in listed.stdout

    shown = watcher("dealer", name, *data)
    assert shown.returncode == 0, shown.stderr
    assert '      dealer post 1  2026-11-01T10:01:00Z  "012 345 678"' in shown.stdout
    assert '      front post 10  2026-11-01T10:02:00Z  "+855 12 345 678"' in shown.stdout

    rejected = watcher("dealer", name, "--reject", "cousin,dealer", *data)
    assert rejected.returncode == 0, rejected.stderr
    assert "rejected; kept for good" in rejected.stdout
    after = watcher("dealers", *data)
    assert f"{name}: 2 accounts: dealer {silent}, front {silent}" in after.stdout
    assert "cousin" not in after.stdout

    renamed = watcher("dealer", name, "--rename", "tiger-bones-pp", *data)
    assert renamed.returncode == 0, renamed.stderr
    old_name = watcher("dealer", name, *data)
    assert old_name.stdout.startswith("tiger-bones-pp: 2 accounts")
    assert f"also called: {name}" in old_name.stdout

    missing = watcher("dealer", "nobody", *data)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "watcher: no dealer named nobody; known: tiger-bones-pp"


# -- the dossier --------------------------------------------------------------------------------
async def test_the_dossier_bundle_verifies_and_leads_with_graph_and_timeline(
    site, make_app, tmp_path
):
    import re
    import zipfile

    from tests.conftest import channel_target, watcher
    from watcher.pipeline import run_capture

    site.channel("ivory-kh")
    site.channel("ivory-kh2")
    site.add_photo("bangle", 41)
    site.add_photo("bangle-repost", 41, **REPOST)
    site.add_post("ivory-kh", "Ivory bangles, call +855 12 345 678", images=["bangle"])
    site.add_post("ivory-kh2", "Bangles again, WhatsApp 012 345 678", images=["bangle-repost"])
    app = make_app(
        channel_target("ivory-kh", f"{site.base_url}/s/ivory-kh"),
        channel_target("ivory-kh2", f"{site.base_url}/s/ivory-kh2"),
    )
    for name in ("ivory-kh", "ivory-kh2"):
        await run_capture(app, app.watchlist.target(name))
    (dealer,) = dealers(app.store)
    fingerprint = app.custody.key.fingerprint

    exported = watcher("export", "--dealer", dealer.name, "--out", "bundles", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (bundle,) = (tmp_path / "bundles").glob("*.zip")
    assert bundle.name.startswith(f"watcher-evidence-dealer-{dealer.name}-")
    verified = watcher("verify", str(bundle), "--key", fingerprint, cwd=tmp_path)
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout

    with zipfile.ZipFile(bundle) as opened:
        report = opened.read("index.html").decode()
        names = set(opened.namelist())
    dossier = report.index("<h2 id=dealer>")
    assert report.index("<h2 class=first>Summary") < dossier < report.index("<h2 id=activity>")
    graph = re.search(r"<svg[^>]*class=graph.*?</svg>", report, re.S).group(0)
    assert graph.count("<circle") == 2 and graph.count("<line") == 1
    assert ">ivory-kh<" in graph and ">ivory-kh2<" in graph and "phone, 1 photo" in graph
    assert "<script" not in report.lower()
    assert "+85512345678" in report[dossier:]
    assert report.count("<svg xmlns") >= 3  # the graph and a timeline per account
    assert "class=timeline" in report
    # The shared photo side by side: both images are files of the bundle.
    pair = re.search(r"id=dealer-photos>.*?<div class=pair>(.*?)</div>", report, re.S).group(1)
    shown = re.findall(r"src='(images/[0-9a-f]{64}\.jpg)'", pair)
    assert len(shown) == 2 and set(shown) <= names
    custody = watcher("dealer", dealer.name, cwd=tmp_path)
    assert custody.returncode == 0 and "photo" in custody.stdout


async def test_the_dossier_shows_keywords_read_in_a_photo_with_its_hash_and_post(
    site, make_app, tmp_path
):
    # Keywords read in a photo live on its photo_text event, not in keyword_matches: the
    # keyword section showed text hits only, so a dealer who wrote "ngà voi" on the photo
    # alone had an empty one.
    import zipfile

    from selectolax.lexbor import LexborHTMLParser

    from tests.conftest import channel_target
    from watcher.detect.ocr import OcrStatus, PhotoText, TextBox
    from watcher.evidence.bundle import Selection, export_bundle
    from watcher.evidence.dossier import dealer_targets
    from watcher.pipeline import run_capture
    from watcher.steps.photo_text import record_reading

    for feed in ("ivory-kh", "ivory-kh2"):
        site.channel(feed)
        site.add_post(feed, "Bangles, call +855 12 345 678")  # the tie: one phone
    app = make_app(
        channel_target("ivory-kh", f"{site.base_url}/s/ivory-kh"),
        channel_target("ivory-kh2", f"{site.base_url}/s/ivory-kh2"),
    )
    for target in app.watchlist.targets:
        await run_capture(app, target)  # baselines
    site.add_photo("bracelet", 43)
    site.add_post("ivory-kh2", "New stock, ask me", images=["bracelet"])
    await run_capture(app, app.watchlist.target("ivory-kh2"))
    (post_id, sha), *others = app.store.db.execute(
        "SELECT p.post_id, pi.sha256 FROM post_images pi JOIN post_versions v"
        " ON v.id = pi.version_id JOIN posts p ON p.id = v.post_row WHERE v.text LIKE 'New%'"
    ).fetchall()
    assert others == []
    # What the OCR engine would have read, through the reader's own recording path.
    box = ((10, 10), (300, 10), (300, 50), (10, 50))
    read = PhotoText(OcrStatus.OK, (TextBox("NGÀ VOI thật 100%", 0.93, box),), "", 640, 480)
    (event,) = record_reading(app, sha, read)
    assert [h.term for h in event.payload.keywords] == ["ngà voi"]

    (dealer,) = dealers(app.store)
    selection = Selection(dealer=dealer.name, targets=tuple(dealer_targets(dealer)))
    (bundle,) = export_bundle(app, selection, tmp_path / "bundles")
    with zipfile.ZipFile(bundle) as opened:
        report = opened.read("index.html").decode()
        names = set(opened.namelist())
    tree = LexborHTMLParser(report)
    (found,) = tree.css(".finding.keyword.in-photo")
    words = " ".join(found.text().split())
    assert f"ivory-kh2 / {post_id}" in words and f"in the photo {sha[:12]}" in words
    assert [m.text() for m in found.css("mark")] == ["NGÀ VOI"]
    anchor = found.css_first("a[href^='#post-']").attributes["href"][1:]
    assert tree.css_first(f"section.post[id='{anchor}']") is not None  # links to its post
    (img,) = found.css("img")
    assert img.attributes["src"] in names and sha in img.attributes["src"]
    assert "KEYWORDS IN PHOTO" in tree.css_first(f"section.post[id='{anchor}']").text()
    assert "<b>1</b>posts with keywords (1 hits)" in report


# -- the bot ------------------------------------------------------------------------------------
async def test_bot_dealer_obeys_access_and_alerts_offer_the_dealer(site, make_app, fake_telegram):
    from tests.conftest import channel_target
    from tests.test_bot import (
        ADMIN,
        HEADER,
        MEMBER,
        STRANGER,
        TEAM,
        _last_bot_message_id,
        ask,
        calls,
        running_bot,
        until,
    )
    from watcher.alert.outbox import OutboxSender, build_sinks
    from watcher.alert.telegram import TelegramConnection
    from watcher.bot.access import ADMIN_ONLY, REFUSAL
    from watcher.pipeline import run_capture

    site.channel("ivory-kh")
    site.channel("front")
    site.add_post("ivory-kh", "Ivory bangles, call +855 12 345 678")
    site.add_post("front", "ceramic cats")
    app = make_app(
        channel_target("ivory-kh", f"{site.base_url}/s/ivory-kh"),
        channel_target("front", f"{site.base_url}/s/front"),
        header=HEADER,
    )
    await run_capture(app, app.watchlist.target("ivory-kh"))
    await run_capture(app, app.watchlist.target("front"))
    site.add_post("front", "bangles too, WhatsApp 012 345 678")
    await run_capture(app, app.watchlist.target("front"))
    (dealer,) = dealers(app.store)
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake_telegram.token, fake_telegram.base_url)),
    )
    await sender.deliver_due()
    await sender.close()
    (contact,) = [e for e in app.store.events() if e.kind == "contact_seen_before"]
    (alert,) = [
        m
        for m in fake_telegram.sent_messages(TEAM)
        if "Contact seen on another account" in (m.fields.get("text") or "")
    ]
    buttons = [b for row in alert.json("reply_markup")["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons][-1] == "Dealer"
    (row,) = app.store.outbox_for_event(contact.id)
    alert_id = row.message_ids[0]  # the contact alert (not the newest message)

    async with running_bot(app, fake_telegram):
        (listed,) = await ask(fake_telegram, "/dealer", MEMBER, TEAM, "dealer")
        assert dealer.name in listed and "ivory-kh, front" in listed
        (shown,) = await ask(fake_telegram, f"/dealer {dealer.name}", MEMBER, TEAM, "Dealer ")
        assert "phone +85512345678" in shown and "reject TIE" not in shown  # a member's view
        (stranger,) = await ask(fake_telegram, f"/dealer {dealer.name}", STRANGER, TEAM, REFUSAL)
        assert dealer.name not in stranger
        tie = dealer.ties[0].id
        (member,) = await ask(
            fake_telegram, f"/dealer {dealer.name} reject {tie}", MEMBER, TEAM, ADMIN_ONLY
        )
        assert member == ADMIN_ONLY
        assert dealers(app.store) == [dealer]  # still one dealer: a member cannot reject
        answers = await ask(fake_telegram, f"/dealer {dealer.name}", ADMIN, TEAM, "Your word")
        assert "reject TIE" in answers[0]
        (judge,) = [
            c
            for c in calls(fake_telegram, TEAM, 0, ("sendMessage",))
            if c.fields["text"].startswith("Your word")
        ]
        (button,) = [b for row in judge.json("reply_markup")["inline_keyboard"] for b in row]
        assert button == {
            "text": "✖ Not one dealer: front ↔ ivory-kh",
            "callback_data": f"tr:{tie}",
        }
        judge_id = _last_bot_message_id(fake_telegram, TEAM)

        async def press(data: str, user: int, message_id: int) -> str:
            mark = len(fake_telegram.calls)
            fake_telegram.push_callback(data, user, TEAM, message_id)
            await until(lambda: calls(fake_telegram, None, mark, ("answerCallbackQuery",)))
            (answer,) = calls(fake_telegram, None, mark, ("answerCallbackQuery",))
            return answer.fields.get("text", "")

        assert await press(f"tr:{tie}", MEMBER, judge_id) == ADMIN_ONLY
        assert await press("tr:t00000000", ADMIN, judge_id) == "This tie is not in the archive."
        assert dealers(app.store) == [dealer]

        mark = len(fake_telegram.calls)
        fake_telegram.push_callback(f"dl:{contact.id}", MEMBER, TEAM, alert_id)
        await until(lambda: calls(fake_telegram, TEAM, mark, ("sendMessage",)))
        (pressed,) = calls(fake_telegram, TEAM, mark, ("sendMessage",))
        assert f"Dealer {dealer.name}" in pressed.fields["text"]

        assert await press(f"tr:{tie}", ADMIN, judge_id) == "Tie rejected"
    assert dealers(app.store) == []
    (verdict,) = app.store.db.execute("SELECT verdict, by FROM dealer_verdicts").fetchall()
    assert verdict == ("rejected", f"telegram:{ADMIN}")


def test_the_return_alert_reads_as_one_sentence_with_the_dealer_button():
    from watcher.alert.render import render_alert
    from watcher.kinds import DealerReturned
    from watcher.models import Event, EventKind

    payload = DealerReturned(
        account="ivory-kh2",
        dealer="ivory-kh-3f9a",
        accounts=("ivory-kh", "author:Ivory Shop"),
        gone_since="2026-11-01T01:00:00Z",
        how="blocked",
        same=("phone +85512345678",),
        photos_seen=3,
    )
    event = Event(EventKind.DEALER_RETURNED, "ivory-kh2", "ivory-kh2/1", payload, 7, id=12)
    message = render_alert(event, "ivory-kh2", None)
    assert (
        "<b>ivory-kh2</b> looks like <b>ivory-kh-3f9a</b> (accounts ivory-kh, Ivory Shop, "
        "blocked since 1 Nov 2026, 01:00 UTC): same phone +85512345678, 3 photos seen before."
    ) in message.html
    assert "/dealer ivory-kh-3f9a" in message.html
    assert ("Dealer", "dl:12") in message.buttons


def test_a_forward_ties_the_forwarder_to_the_account_forwarded_from():
    seen = [
        Observation("forward", "author:Ivory Wholesale", "front", "1"),
        Observation("forward", "author:Ivory Wholesale", "other-front", "9"),
        Observation("photo", "a" * 64, "front", "2"),
        Observation("photo", "a" * 64, "author:Ivory Wholesale", "3"),
    ]
    (dealer,) = group(build_ties(seen))
    assert dealer.accounts == ("author:Ivory Wholesale", "front")  # 0.3 + 0.3 joins
    (tie,) = dealer.ties
    assert [k.kind for k in tie.keys] == ["forward", "photo"]


async def test_in_a_group_the_author_is_the_account(site, make_app):
    from tests.conftest import channel_target
    from watcher.pipeline import run_capture

    site.channel("market")
    site.add_post("market", "Ivory bangles, call +855 12 345 678", author="Ivory Shop")
    site.add_post("market", "ceramic cats", author="Cat Lady")
    site.channel("ivory-new")
    site.add_post("ivory-new", "bangles, WhatsApp 012 345 678")
    app = make_app(
        channel_target("market", f"{site.base_url}/s/market"),
        channel_target("ivory-new", f"{site.base_url}/s/ivory-new"),
    )
    for name in ("market", "ivory-new"):
        await run_capture(app, app.watchlist.target(name))
    (dealer,) = dealers(app.store)
    assert dealer.accounts == ("author:Ivory Shop", "ivory-new")  # not the whole group
    assert dealer.ties[0].keys[0].seen[0].target == "market"


def test_only_an_account_with_a_key_another_shows_is_grouped_at_its_first_capture(
    archive: Archive,
):
    """``could_tie`` lets a new account's first capture skip grouping the whole archive;
    it must never say no for an account that is in a dealer (or the return is missed)."""
    from watcher.store.dealers import could_tie

    archive.post("dealer", "1", "Ivory bangle, call 012 345 678")
    archive.post("front", "10", "new stock WhatsApp +855 12 345 678")
    # Two reposted photos join (one alone is too weak to).
    archive.post("poster", "3", "carving", (encode(make_photo(7)), encode(make_photo(8))))
    archive.post("reposter", "4", "again", (variant(7, **REPOST), variant(8, **REPOST)))
    archive.post("alone", "5", "ceramic cats, call 097 123 4567", (encode(make_photo(9)),))

    in_dealers = {a for d in dealers(archive.store) for a in d.accounts}
    assert in_dealers >= {"dealer", "front", "poster", "reposter"}
    for account in in_dealers:
        assert could_tie(archive.store, account), account
    # Its own phone on its own page and a photo nobody else has: tied to nothing.
    assert not could_tie(archive.store, "alone")
    # The same phone on a second page later: now it could.
    archive.post("alone-too", "6", "call +855 97 123 4567")
    assert could_tie(archive.store, "alone")
