"""The chat bot through real PTB polling against the fake Bot API server: updates go in via
``getUpdates`` as Telegram would send them, and we read what the bot sent back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import channel_target, shop_target
from tests.fakes.telegram_api import FakeTelegram, RecordedCall
from tests.reliability import evidence_state
from watcher.alert.outbox import OutboxSender, build_sinks
from watcher.alert.telegram import TelegramConnection
from watcher.app import App
from watcher.bot import replies
from watcher.bot.access import ADMIN_ONLY, REFUSAL
from watcher.bot.buttons import parse_callback
from watcher.bot.connection import telegram_application
from watcher.bot.context import BotContext
from watcher.bot.service import serve_bot
from watcher.bot.work import photo_seen
from watcher.cli import main as cli_main
from watcher.daemon import run_daemon
from watcher.demo.images import variant
from watcher.pipeline import run_capture
from watcher.store import bot_state
from watcher.watchlist import load_watchlist

ADMIN, MEMBER, STRANGER = 111, 222, 999
TEAM, OTHER_GROUP = -100123, -100777
HEADER = (
    "# the team's watchlist: keep this comment\n"
    f"alerts:\n  telegram:\n    chat_ids: [{TEAM}]  # the desk's group\n"
    f"admins: [{ADMIN}]\nmembers: [{MEMBER}]  # field officers\n"
)
REPLIES = ("sendMessage", "editMessageText", "sendDocument")


# -- helpers -------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def running_bot(app: App, fake: FakeTelegram, **options) -> AsyncIterator[BotContext]:
    """The bot as ``watcher run`` starts it: the daemon's Application, real polling."""
    path = Path(app.watchlist.path or "")
    async with telegram_application(app.watchlist, fake.token, fake.base_url) as application:
        assert application is not None
        ctx = BotContext(app, path, capture=lambda target: run_capture(app, target), **options)
        async with serve_bot(application, ctx):
            yield ctx


def said(fake: FakeTelegram, chat: int, since: int = 0) -> list[str]:
    """Texts (and captions) the bot sent or edited in ``chat`` since call number ``since``."""
    return [
        c.fields.get("text") or c.fields.get("caption") or ""
        for c in calls(fake, chat, since, REPLIES)
    ]


def calls(
    fake: FakeTelegram, chat: int | None, since: int, methods: tuple[str, ...]
) -> list[RecordedCall]:
    with fake._lock:
        recent = list(fake.calls[since:])
    return [
        c
        for c in recent
        if c.method in methods and c.ok and (chat is None or c.fields.get("chat_id") == str(chat))
    ]


async def until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {condition}")
        await asyncio.sleep(0.05)


async def ask(fake: FakeTelegram, text: str, user: int, chat: int, expect: str = "") -> list[str]:
    """Send ``text`` as ``user`` in ``chat``; the bot's answers once one contains ``expect``."""
    mark = len(fake.calls)
    fake.push_message(text, user, chat)
    await until(lambda: any(expect in t for t in said(fake, chat, mark)))
    return said(fake, chat, mark)


async def channel_app(site, make_app, *extra_targets: str, tags: str = "") -> App:
    site.channel("dealer")
    site.add_post("dealer", "carved ivory bangle, white gold clasp")
    site.add_post("dealer", "pangolin scales 2kg, inbox")
    extra = f"    tags: [{tags}]\n" if tags else ""
    target = channel_target("dealer", f"{site.base_url}/s/dealer", extra + "    # main seller\n")
    app = make_app(target, *extra_targets, header=HEADER)
    await run_capture(app, app.watchlist.target("dealer"))
    return app


# -- commands ------------------------------------------------------------------------------
async def test_status_targets_and_search_answer_members_quickly(site, make_app, fake_telegram):
    app = await channel_app(site, make_app, tags="ivory, cambodia")
    site.edit_post("dealer", 1, text="carved bangle SOLD")
    await run_capture(app, app.watchlist.target("dealer"))
    site.add_post("dealer", "carved rhino horn cup")
    await run_capture(app, app.watchlist.target("dealer"))

    async with running_bot(app, fake_telegram):
        (commands,) = fake_telegram.calls_to("setMyCommands")
        names = {c["command"] for c in commands.json("commands")}
        assert {"status", "search", "evidence", "watch", "pause", "similar"} <= names

        started = time.monotonic()
        (status,) = await ask(fake_telegram, "/status", MEMBER, TEAM, "watcher status")
        assert time.monotonic() - started < 1.0  # a cached query answers within a second
        assert "dealer" in status and "ok" in status and "Alerts waiting: 2" in status
        assert "Blocked sessions: none" in status

        (listed,) = await ask(fake_telegram, "/targets ivory", MEMBER, MEMBER, "tagged")
        assert "dealer" in listed and "ivory, cambodia" in listed
        await ask(fake_telegram, "/targets rhino", MEMBER, MEMBER, "No target")

        # Every stored version is searched: the edit removed "ivory", the old version has it.
        (found,) = await ask(fake_telegram, "/search ivory gold", MEMBER, TEAM, "matching")
        assert "dealer" in found and "carved ivory bangle" in found
        assert "v1 (edited since)" in found and f'href="{site.base_url}/dealer/1"' in found
        (newest,) = await ask(fake_telegram, "/search carved", MEMBER, TEAM, "matching")
        assert "2 posts" in newest and "carved ivory" not in newest  # a post's newest version
        assert newest.index("rhino horn cup") < newest.index("SOLD")  # newest first
        await ask(fake_telegram, '/search "elephant tusk', MEMBER, TEAM, "Nothing")

    rows = bot_state.recent_requests(app.store)
    assert {(r["command"], r["user_id"], r["result"]) for r in rows} >= {
        ("status", MEMBER, "ok"),
        ("search", MEMBER, "ok"),
    }


async def test_check_says_working_then_edits_in_the_result(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)
    site.add_post("dealer", "new tusk just in")

    async with running_bot(app, fake_telegram):
        mark = len(fake_telegram.calls)
        fake_telegram.push_message("/check dealer", MEMBER, TEAM)
        await until(lambda: calls(fake_telegram, TEAM, mark, ("editMessageText",)))
        first, *_ = calls(fake_telegram, TEAM, mark, ("sendMessage",))
        assert "working" in first.fields["text"]
        (edit,) = calls(fake_telegram, TEAM, mark, ("editMessageText",))
        assert "dealer: ok, capture #2" in edit.fields["text"] and "1 new" in edit.fields["text"]
        assert "/evidence 2" in edit.fields["text"]

        (unknown,) = await ask(fake_telegram, "/check nobody", MEMBER, TEAM, "no target")
        assert "known: dealer" in unknown  # a member may see the target names


async def test_pause_and_resume_are_for_admins(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)

    async with running_bot(app, fake_telegram):
        await ask(fake_telegram, "/pause dealer 2h", MEMBER, TEAM, ADMIN_ONLY)
        assert not bot_state.is_paused(app.store, "dealer")

        (paused,) = await ask(fake_telegram, "/pause dealer 2h", ADMIN, TEAM, "paused")
        assert "dealer" in paused and "/resume dealer" in paused
        assert bot_state.is_paused(app.store, "dealer")
        (status,) = await ask(fake_telegram, "/status", MEMBER, TEAM, "watcher status")
        assert "1 paused" in status and "⏸ paused until" in status

        await ask(fake_telegram, "/pause dealer soon", ADMIN, TEAM, "not a duration")
        await ask(fake_telegram, "/resume dealer", ADMIN, TEAM, "resumed")
        assert not bot_state.is_paused(app.store, "dealer")

    actions = [e.action for e in app.custody.entries()]
    assert "target_paused" in actions and "target_resumed" in actions
    log = {(r["command"], r["user_id"], r["result"]) for r in bot_state.recent_requests(app.store)}
    assert ("pause", MEMBER, "refused") in log and ("pause", ADMIN, "ok") in log


async def test_strangers_are_refused_everywhere_and_nothing_leaks(
    site, make_app, fake_telegram, caplog
):
    caplog.set_level(logging.WARNING)
    app = await channel_app(site, make_app)

    async with running_bot(app, fake_telegram):
        # A stranger in a private chat, and in the team's own group.
        (first,) = await ask(fake_telegram, "/targets", STRANGER, STRANGER, REFUSAL)
        mark = len(fake_telegram.calls)
        for text in ("/status", "/search ivory", "/evidence 1", "/links dealer", "hello"):
            fake_telegram.push_message(text, STRANGER, STRANGER)
        fake_telegram.push_photo(variant(3), STRANGER, STRANGER)
        (in_team,) = await ask(fake_telegram, "/status", STRANGER, TEAM, REFUSAL)
        # A member, but in a group that is not the team's.
        (elsewhere,) = await ask(fake_telegram, "/status", MEMBER, OTHER_GROUP, REFUSAL)
        await until(lambda: len(bot_state.recent_requests(app.store)) >= 9)
        later = said(fake_telegram, STRANGER, mark)

    assert first == in_team == elsewhere == REFUSAL.replace("'", "&#x27;")
    assert later == []  # refused once a minute per chat: no flood, and nothing else
    everything = " ".join(said(fake_telegram, STRANGER) + said(fake_telegram, OTHER_GROUP))
    assert "dealer" not in everything and "ivory" not in everything
    assert not calls(fake_telegram, None, 0, ("sendDocument", "getFile"))
    refusals = [r for r in bot_state.recent_requests(app.store) if r["result"] == "refused"]
    assert {r["user_id"] for r in refusals} == {STRANGER, MEMBER} and len(refusals) == 9
    assert "refused status from user 999" in caplog.text
    assert fake_telegram.token not in caplog.text


async def test_oversized_messages_are_refused_unread(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)
    async with running_bot(app, fake_telegram):
        (reply,) = await ask(fake_telegram, "/search " + "ivory " * 400, MEMBER, TEAM, "too long")
    assert "at most 1000" in reply
    assert bot_state.recent_requests(app.store)[0]["detail"] == "message too long"


# -- /watch --------------------------------------------------------------------------------
async def test_watch_adds_the_target_only_after_an_admin_confirms_keeping_comments(
    site, make_app, fake_telegram
):
    app = await channel_app(site, make_app)
    path = Path(app.watchlist.path or "")
    before = path.read_text()

    async with running_bot(app, fake_telegram):
        (refused,) = await ask(fake_telegram, "/watch https://t.me/newchan", MEMBER, TEAM, "admin")
        assert refused == ADMIN_ONLY
        mark = len(fake_telegram.calls)
        fake_telegram.push_message("/watch https://t.me/ivorydeals front-man", ADMIN, TEAM)
        await until(lambda: calls(fake_telegram, TEAM, mark, ("sendMessage",)))
        (proposal,) = calls(fake_telegram, TEAM, mark, ("sendMessage",))
        assert (
            "front-man" in proposal.fields["text"]
            and "https://t.me/s/ivorydeals" in (proposal.fields["text"])
        )
        buttons = [b for row in proposal.json("reply_markup")["inline_keyboard"] for b in row]
        confirm = buttons[0]["callback_data"]
        message_id = _last_bot_message_id(fake_telegram, TEAM)
        assert path.read_text() == before  # nothing written before confirmation

        async def press(data: str, user: int) -> str:
            mark = len(fake_telegram.calls)
            fake_telegram.push_callback(data, user, TEAM, message_id)
            await until(lambda: calls(fake_telegram, None, mark, ("answerCallbackQuery",)))
            (answer,) = calls(fake_telegram, None, mark, ("answerCallbackQuery",))
            return answer.fields.get("text", "")

        assert await press(confirm, MEMBER) == ADMIN_ONLY  # a member cannot confirm
        assert await press("wa:AAAAAAAAAAAAAAAA", ADMIN) == "This proposal is no longer open."
        assert path.read_text() == before
        mark = len(fake_telegram.calls)
        assert await press(confirm, ADMIN) == "Adding…"
        await until(lambda: calls(fake_telegram, TEAM, mark, ("editMessageText",)))
        assert await press(confirm, ADMIN) == "This proposal is no longer open."  # used once

    after = path.read_text()
    assert "# the team's watchlist: keep this comment" in after
    assert "# the desk's group" in after and "# field officers" in after
    assert "# main seller" in after
    assert after.replace(before, "") == (
        "  - name: front-man\n    platform: telegram\n    url: https://t.me/s/ivorydeals\n"
    )
    assert load_watchlist(path).target("front-man").url == "https://t.me/s/ivorydeals"
    (entry,) = [e for e in app.custody.entries() if e.action == "watchlist_changed"]
    assert entry.details["target"]["name"] == "front-man"
    assert entry.details["confirmed_by"] == ADMIN and entry.details["proposed_by"] == ADMIN


def _last_bot_message_id(fake: FakeTelegram, chat: int) -> int:
    with fake._lock:
        ours = [m for (c, _), m in fake._messages.items() if c == chat and m["from"]["is_bot"]]
    return ours[-1]["message_id"]


# -- photos and links ----------------------------------------------------------------------
async def test_forwarded_repost_photo_finds_the_original_post(site, make_app, fake_telegram):
    site.channel("dealer")
    site.add_post("dealer", "tusk carving", images=[site.add_photo("orig", seed=3)])
    site.add_post("dealer", "second")
    site.shop("front")
    repost = site.add_photo("re", seed=3, scale=0.6, quality=70, crop=0.03, watermark="shop")
    site.add_post("front", "antique carving, inbox", images=[repost])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        shop_target("front", f"{site.base_url}/shop/front"),
        header=HEADER,
    )
    await run_capture(app, app.watchlist.target("dealer"))
    await run_capture(app, app.watchlist.target("front"))
    # Queued before the bot polls, as a forward from another channel would arrive.
    forwarded = fake_telegram.push_photo(
        variant(3, scale=0.5, quality=60, crop=0.02, watermark="@front"), MEMBER, MEMBER
    )
    forwarded["message"]["forward_origin"] = {
        "type": "channel",
        "chat": {"id": -100555, "type": "channel", "title": "Front shop"},
        "message_id": 9,
        "date": int(time.time()),
    }

    async with running_bot(app, fake_telegram):
        await until(lambda: any("Seen in" in t for t in said(fake_telegram, MEMBER)))
        (found,) = said(fake_telegram, MEMBER)
        assert "dealer" in found and "post dealer/1" in found and "distance" in found
        assert "front" in found  # the shop's repost is stored too

        # In the team group a photo alone is not a question; /similar in reply to it is.
        mark = len(fake_telegram.calls)
        photo = fake_telegram.push_photo(variant(3, scale=0.7), MEMBER, TEAM)["message"]
        unrelated = fake_telegram.push_photo(variant(77), MEMBER, MEMBER)
        await until(lambda: any("Not seen" in t for t in said(fake_telegram, MEMBER, mark)))
        assert said(fake_telegram, TEAM, mark) == []
        fake_telegram.push_message("/similar", MEMBER, TEAM, reply_to_message=photo)
        await until(lambda: any("Seen in" in t for t in said(fake_telegram, TEAM, mark)))
        assert unrelated

        (links,) = await ask(fake_telegram, "/links dealer", MEMBER, TEAM, "linked")
        assert "front" in links and "By shared photos" in links
        (other,) = await ask(fake_telegram, "/links front", MEMBER, TEAM, "linked")
        assert "dealer" in other and "1 of its photos were theirs first" in other


async def test_similar_in_the_chat_names_reference_photos_as_the_cli_does(site, make_app, tmp_path):
    # One implementation behind /similar and `watcher similar`: the bot used to leave out
    # the team's reference photos (images.known), which the CLI lists.
    folder = tmp_path / "seized"
    folder.mkdir()
    (folder / "case-12-bangle.jpg").write_bytes(variant(77))
    site.channel("dealer")
    site.add_post("dealer", "old")
    site.add_post("dealer", "new stock", images=[site.add_photo("x", seed=77, scale=0.7)])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        header=f"images:\n  known: [{folder}]\n",
    )
    await run_capture(app, app.watchlist.target("dealer"))

    answer = await photo_seen(app, variant(77, scale=0.5, watermark="@front"))
    assert [post.target for post, _ in answer.matches] == ["dealer"]
    (reference, distance) = answer.references[0]
    assert reference.name.endswith("case-12-bangle.jpg") and distance <= 10
    (text,) = replies.similar_text(answer)
    assert "Seen in 1 post" in text and "case-12-bangle.jpg" in text

    unrelated = await photo_seen(app, variant(3))
    assert unrelated.matches == [] and unrelated.references == []
    assert replies.similar_text(unrelated)[0].startswith("Not seen before")


# -- evidence ------------------------------------------------------------------------------
async def test_evidence_sends_a_bundle_that_watcher_verify_accepts(
    site, make_app, fake_telegram, tmp_path, capsys
):
    app = await channel_app(site, make_app)

    async with running_bot(app, fake_telegram) as ctx:
        mark = len(fake_telegram.calls)
        fake_telegram.push_message("/evidence 1", MEMBER, TEAM)
        await until(lambda: calls(fake_telegram, TEAM, mark, ("editMessageText",)))
        (document,) = calls(fake_telegram, TEAM, mark, ("sendDocument",))
        (edit,) = calls(fake_telegram, TEAM, mark, ("editMessageText",))
        assert "working" in said(fake_telegram, TEAM, mark)[0]
        assert "sent" in edit.fields["text"] and "watcher verify" in edit.fields["text"]

        await ask(fake_telegram, "/evidence nope/1", MEMBER, TEAM, "nothing to export")

    (upload,) = document.files.values()
    (bundle,) = ctx.exports_dir.glob("*.zip")
    assert upload.filename == bundle.name and upload.size == bundle.stat().st_size
    assert upload.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()  # what was sent
    capsys.readouterr()
    assert cli_main(["verify", str(bundle), "--key", app.custody.key.fingerprint]) == 0
    assert "exported" in [e.action for e in app.custody.entries()]


async def test_evidence_too_large_for_telegram_says_where_it_is(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)
    async with running_bot(app, fake_telegram, upload_limit=2000):
        mark = len(fake_telegram.calls)
        fake_telegram.push_message("/evidence dealer/1", MEMBER, TEAM)
        await until(lambda: calls(fake_telegram, TEAM, mark, ("editMessageText",)))
        (edit,) = calls(fake_telegram, TEAM, mark, ("editMessageText",))
    assert not calls(fake_telegram, TEAM, mark, ("sendDocument",))
    assert (
        "on the server at" in edit.fields["text"] and "self-hosted Bot API" in edit.fields["text"]
    )
    assert str(app.data_dir / "exports") in edit.fields["text"]


# -- buttons under alerts ------------------------------------------------------------------
async def test_alert_buttons_work_and_forged_presses_are_refused(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)
    site.add_post("dealer", "fresh horn")
    await run_capture(app, app.watchlist.target("dealer"))
    sender = OutboxSender(
        app,
        build_sinks(app, telegram=TelegramConnection(fake_telegram.token, fake_telegram.base_url)),
    )
    assert await sender.deliver_due() == 1
    await sender.close()
    (alert,) = fake_telegram.sent_messages(TEAM)
    buttons = [b for row in alert.json("reply_markup")["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["Evidence", "Mute target 24h", "Mark reviewed"]
    (event,) = [e for e in app.store.events() if e.kind == "new_post"]
    alert_id = _last_bot_message_id(fake_telegram, TEAM)

    async with running_bot(app, fake_telegram):

        async def press(data: str, user: int, message_id: int = alert_id) -> str:
            mark = len(fake_telegram.calls)
            fake_telegram.push_callback(data, user, TEAM, message_id)
            await until(lambda: calls(fake_telegram, None, mark, ("answerCallbackQuery",)))
            (answer,) = calls(fake_telegram, None, mark, ("answerCallbackQuery",))
            return answer.fields.get("text", "")

        assert await press(f"rv:{event.id}", MEMBER) == "Marked reviewed"
        assert bot_state.reviewed_by(app.store, event) == MEMBER
        assert await press(f"rv:{event.id}", MEMBER) == "Already marked reviewed."
        assert await press(f"mu:{event.id}", MEMBER) == ADMIN_ONLY
        assert await press(f"mu:{event.id}", STRANGER) == REFUSAL
        assert not bot_state.is_muted(app.store, "dealer")
        # Forged: a real event id on another message, an unknown id, and junk.
        assert "does not belong" in await press(f"mu:{event.id}", ADMIN, message_id=alert_id + 50)
        assert "does not belong" in await press("ev:999999", ADMIN)
        assert await press("rm -rf:1", ADMIN) == "This button is not valid."
        assert not bot_state.is_muted(app.store, "dealer")
        assert await press(f"mu:{event.id}", ADMIN) == "dealer muted for 24 h"
        assert bot_state.is_muted(app.store, "dealer")

        mark = len(fake_telegram.calls)
        assert await press(f"ev:{event.id}", MEMBER) == "Building the evidence bundle…"
        await until(lambda: calls(fake_telegram, TEAM, mark, ("sendDocument",)))

    refused = [r for r in bot_state.recent_requests(app.store) if r["result"] != "ok"]
    assert len(refused) >= 5


def test_callback_data_is_parsed_strictly():
    assert parse_callback("ev:12").event_id == 12
    for forged in ("ev:0", "ev:-1", "ev:1;drop", "zz:1", "wa:short", "ev:" + "9" * 30, None, ""):
        assert parse_callback(forged) is None


# -- inside `watcher run` ------------------------------------------------------------------
async def test_the_daemon_runs_the_bot_on_its_own_loop(site, tmp_path, monkeypatch):
    site.channel("dealer")
    site.add_post("dealer", "carving")
    with FakeTelegram() as fake:
        monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", fake.token)
        watchlist = tmp_path / "watchlist.yaml"
        watchlist.write_text(
            HEADER + "targets:\n" + channel_target("dealer", f"{site.base_url}/s/dealer")
        )
        stop = asyncio.Event()
        daemon = asyncio.create_task(
            run_daemon(
                watchlist,
                tmp_path / "data",
                console=False,
                stop=stop,
                telegram_base_url=fake.base_url,
            )
        )
        try:
            await until(lambda: fake.calls_to("getUpdates"), timeout=20)
            site.add_post("dealer", "white gold bangle")
            mark = len(fake.calls)
            fake.push_message("/check dealer", ADMIN, ADMIN)
            await until(lambda: calls(fake, ADMIN, mark, ("editMessageText",)), timeout=30)
            (edit,) = calls(fake, ADMIN, mark, ("editMessageText",))
            assert "dealer: ok" in edit.fields["text"]
            # The team chat also gets the capture's alert: pick the status out.
            answers = await ask(fake, "/status", MEMBER, TEAM, "watcher status")
            assert any("watcher status" in a and "dealer" in a for a in answers)
        finally:
            stop.set()
            assert await asyncio.wait_for(daemon, 45) == 0
        assert fake.calls_to("setMyCommands")


async def test_no_bot_command_changes_the_evidence(site, make_app, fake_telegram):
    app = await channel_app(site, make_app)
    data = app.data_dir
    before = evidence_state.snapshot(data)

    async with running_bot(app, fake_telegram):
        for text, user, expect in (
            ("/status", MEMBER, "dealer"),
            ("/targets", MEMBER, "dealer"),
            ("/search ivory", MEMBER, "ivory"),
            ("/search ../../blobs", MEMBER, ""),
            ("/links dealer", MEMBER, ""),
            ("/evidence ../../keys", MEMBER, ""),
            ("/pause dealer 2h", ADMIN, "paused"),
            ("/resume dealer", ADMIN, "resumed"),
            ("/help", MEMBER, ""),
            ("/status", STRANGER, REFUSAL),
        ):
            await ask(fake_telegram, text, user, TEAM if user != STRANGER else user, expect)
        mark = len(fake_telegram.calls)
        fake_telegram.push_message("/evidence 1", MEMBER, TEAM)  # a bundle: read, not written
        await until(lambda: calls(fake_telegram, TEAM, mark, ("editMessageText",)))

    # No evidence file changed; the custody log only grew, by what the admin and the export did.
    allowed = {"target_paused", "target_resumed", "exported"}
    added = evidence_state.assert_only_appended(data, before, allowed=allowed)
    assert [entry["action"] for entry in added] == ["target_paused", "target_resumed", "exported"]


async def test_a_stranger_flooding_the_bot_is_counted_not_logged_line_by_line(
    site, make_app, fake_telegram, caplog
):
    caplog.set_level(logging.WARNING)
    app = await channel_app(site, make_app)

    def counted() -> int:
        rows = bot_state.recent_requests(app.store, limit=1000)
        return sum(int(r["args"]) for r in rows if r["command"] == bot_state.COUNTED)

    async with running_bot(app, fake_telegram):
        for n in range(200):
            fake_telegram.push_message(f"hello {n}", STRANGER, STRANGER)
        await until(lambda: counted() == 200 - bot_state.REFUSALS_LOGGED, timeout=60)

    rows = [r for r in bot_state.recent_requests(app.store, limit=1000) if r["user_id"] == STRANGER]
    assert len(rows) == bot_state.REFUSALS_LOGGED + 1  # bounded, whatever the stranger sends
    (summary,) = [r for r in rows if r["command"] == bot_state.COUNTED]
    assert summary["result"] == "refused" and summary["args"] == "180"
    assert "180 more refused requests" in summary["detail"]
    assert caplog.text.count("refused text from user 999") == bot_state.REFUSALS_LOGGED
