"""Telegram groups and private channels through the team's account (issue 24).

WHAT IS FAKED, AND WHY: the Telegram API cannot be reached from the machines these tests run
on, so ``ScriptedTelegram`` stands in for Telethon's ``TelegramClient`` (the object
``watcher.capture.tgapi.client.telethon_client`` would build). It answers the few calls the
boundary makes (connect, is_user_authorized, get_me, get_entity, invite requests,
iter_messages, download_media) from a scripted chat history, with Telethon's OWN objects:
``types.Message``, ``MessageMediaPhoto``, ``Photo``, ``PeerChannel``, ``MessageFwdHeader``,
``MessageReplyHeader``, ``MessageEntityTextUrl``..., and raises Telethon's OWN errors
(``FloodWaitError`` with its seconds, ``InviteRequestSentError``, ``UserDeactivatedBanError``,
``SessionRevokedError``...). Nothing of watcher is faked: the boundary's translation, the
pipeline, the store (SQLite files), the diff, the alerts' queue, the rendering (screenshotted
by the real Chromium), the custody log, export and verify all run for real. Sleeping is
recorded instead of done, so a 17-second flood wait takes no time and can be asserted.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from telethon import errors
from telethon.tl import functions, types

from tests.conftest import watcher
from watcher.capture.tgapi.accounts import (
    RequestBudget,
    TelegramAccounts,
    TelegramSession,
    load_credentials,
)
from watcher.capture.tgapi.client import log_in, parse_chat_link, telethon_client
from watcher.capture.tgapi.records import RENDERING_LABEL
from watcher.commands.session import check_telegram
from watcher.errors import WatcherError
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.store.telegram_chats import stored_chat
from watcher.watchlist import check_watchlist

CHAT_ID = 1777000111
INVITE = "https://t.me/+AbCdEfGhIjKlMnOp"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def jpeg(seed: int) -> bytes:
    """A small real JPEG, different for each seed (so perceptual hashes differ)."""
    image = Image.new("RGB", (64, 48), ((seed * 40) % 256, (seed * 90) % 256, (seed * 10) % 256))
    for x in range(0, 64, 8):
        for y in range(0, 48, 8):
            if (x // 8 + y // 8 + seed) % 3 == 0:
                image.putpixel((x, y), (255, 255, 255))
                image.paste((seed * 17 % 256, 20, 200), (x, y, x + 4, y + 4))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


class ScriptedTelegram:
    """A fake of Telethon's TelegramClient playing one chat's scripted history."""

    def __init__(self) -> None:
        self.channel = types.Channel(
            id=CHAT_ID,
            title="Ivory traders (private)",
            photo=types.ChatPhotoEmpty(),
            date=T0,
            access_hash=987654321,
            megagroup=True,
        )
        self.messages: dict[int, types.Message] = {}
        self.removed: dict[int, types.Message] = {}
        self.photos: dict[int, bytes] = {}  # photo id -> bytes
        self.authorised = True
        self.errors: dict[str, list[Exception]] = {}  # method -> errors raised next, in order
        self.calls: list[str] = []
        self.joined = False
        self.connected = 0  # connections open at once (one account: never more than one)
        self.most_connected = 0

    # -- the script ------------------------------------------------------------------------
    def post(self, msg_id: int, text: str = "", **extra: object) -> types.Message:
        photo_seed = extra.pop("photo", None)
        media = None
        if photo_seed is not None:
            photo_id = 5000 + msg_id * 10 + int(photo_seed)  # type: ignore[call-overload]
            self.photos[photo_id] = jpeg(int(photo_seed))  # type: ignore[call-overload]
            size = types.PhotoSize("y", 64, 48, len(self.photos[photo_id]))
            media = types.MessageMediaPhoto(
                photo=types.Photo(photo_id, 42, b"ref", T0, [size], dc_id=2)
            )
        message = types.Message(
            id=msg_id,
            peer_id=types.PeerChannel(CHAT_ID),
            date=T0 + timedelta(minutes=msg_id),
            message=text,
            from_id=types.PeerUser(4242),
            media=media,
            **extra,  # type: ignore[arg-type]
        )
        self.messages[msg_id] = message
        return message

    def edit(self, msg_id: int, text: str) -> None:
        old = self.messages[msg_id]
        old.message = text
        old.edit_date = T0 + timedelta(hours=5)

    def delete(self, msg_id: int) -> None:
        self.removed[msg_id] = self.messages.pop(msg_id)

    def restore(self, msg_id: int) -> None:
        self.messages[msg_id] = self.removed.pop(msg_id)

    def fail(self, method: str, *errs: Exception) -> None:
        self.errors.setdefault(method, []).extend(errs)

    def _maybe_fail(self, method: str) -> None:
        self.calls.append(method)
        queue = self.errors.get(method)
        if queue:
            raise queue.pop(0)

    # -- the TelegramClient calls the boundary makes -------------------------------------------
    async def connect(self) -> None:
        self._maybe_fail("connect")
        self.connected += 1
        self.most_connected = max(self.most_connected, self.connected)
        await asyncio.sleep(0.05)  # let another capture run, if anything would let it

    async def disconnect(self) -> None:
        self.connected -= 1

    async def is_user_authorized(self) -> bool:
        self._maybe_fail("is_user_authorized")
        return self.authorised

    async def get_me(self) -> types.User:
        self._maybe_fail("get_me")
        return types.User(id=4242000, username="team_reader", first_name="Team")

    async def get_entity(self, what: object) -> object:
        self._maybe_fail("get_entity")
        return self.channel

    async def __call__(self, request: object) -> object:
        name = type(request).__name__
        self._maybe_fail(name)
        if isinstance(request, functions.messages.CheckChatInviteRequest):
            if self.joined:
                return types.ChatInviteAlready(chat=self.channel)
            return types.ChatInvite(
                title=self.channel.title,
                photo=types.PhotoEmpty(1),
                participants_count=40,
                color=0,
                megagroup=True,
            )
        if isinstance(request, functions.messages.ImportChatInviteRequest):
            self.joined = True
            return types.Updates(updates=[], users=[], chats=[self.channel], date=T0, seq=0)
        raise AssertionError(f"unexpected request {name}")

    async def iter_messages(self, peer: object, limit: int | None = None):  # type: ignore[no-untyped-def]
        self._maybe_fail("iter_messages")
        assert isinstance(peer, types.InputPeerChannel) and peer.channel_id == CHAT_ID
        for msg_id in sorted(self.messages, reverse=True)[:limit]:
            yield self.messages[msg_id]

    async def download_media(self, message: types.Message, file: object = None) -> bytes:
        self._maybe_fail("download_media")
        assert file is bytes
        return self.photos[message.media.photo.id]


class Sleeps:
    """Recorded sleeps: the account waits exactly as asked, in no time."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def telegram_target(name: str = "traders", url: str = INVITE, session: str = "acct") -> str:
    return f"  - name: {name}\n    platform: telegram\n    url: {url}\n    session: {session}\n"


@pytest.fixture
def tg(make_app, monkeypatch):
    """(app, scripted chat, sleeps): one target read through account ``acct``."""
    monkeypatch.setenv("WATCHER_TELEGRAM_API_ID", "123456")
    monkeypatch.setenv("WATCHER_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
    chat = ScriptedTelegram()
    sleeps = Sleeps()
    app = make_app(telegram_target(), header="alerts:\n  telegram:\n    chat_ids: [-100777]\n")
    accounts = TelegramAccounts(
        app.data_dir, factory=lambda session, creds: chat, sleep=sleeps, per_minute=6000
    )
    accounts.sessions.save(TelegramSession("acct", "1BVtsOK-a-secret-session-string", 4242000))
    app._telegram = accounts
    return app, chat, sleeps


def kinds(summary) -> list[str]:
    return sorted(str(e.kind) for e in summary.events)


async def capture(app):
    return await run_capture(app, app.watchlist.target("traders"))


# -- the history: new, edit, delete, restore, albums, forwards ----------------------------------
async def test_history_through_the_real_pipeline(tg):
    app, chat, _ = tg
    chat.post(1, "selling bangles, DM +855 12 345 678", photo=1)
    chat.post(
        2,
        "album caption: raw ivory 3kg",
        photo=2,
        grouped_id=77,
        entities=[types.MessageEntityTextUrl(0, 5, "https://example.org/price")],
    )
    chat.post(3, "", photo=3, grouped_id=77)
    chat.post(
        4,
        "forwarded stock list",
        fwd_from=types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(555), channel_post=12),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=1),
        views=31,
        forwards=2,
    )

    first = await capture(app)
    assert first.status == CaptureStatus.OK, first.reason
    assert first.baseline and first.post_count == 3  # the album is one post
    posts = {p.post_id: p for p in app.store.live_posts("traders")}
    assert set(posts) == {"1", "2", "4"}
    assert len(posts["2"].image_shas) == 2 and all(posts["2"].image_shas)
    assert posts["1"].permalink == f"https://t.me/c/{CHAT_ID}/1"
    # The invite was used once; the chat's id is stored so the link is never resolved again.
    assert chat.calls.count("ImportChatInviteRequest") == 1
    assert stored_chat(app.store, "traders", INVITE).chat_id == CHAT_ID

    chat.post(5, "new tusk, 200$", photo=5)
    chat.edit(4, "forwarded stock list: SOLD OUT")
    chat.delete(1)
    second = await capture(app)
    assert second.status == CaptureStatus.OK, second.reason
    assert "ImportChatInviteRequest" not in chat.calls[chat.calls.index("iter_messages") + 1 :]
    assert chat.calls.count("CheckChatInviteRequest") == 1
    assert kinds(second).count("new_post") == 1
    assert "edited_post" in kinds(second) and "deleted_post" in kinds(second)
    assert {e.post_id for e in second.events if e.kind == "deleted_post"} == {"1"}

    chat.restore(1)
    third = await capture(app)
    assert [e.post_id for e in third.events if e.kind == "restored_post"] == ["1"]
    # Photos seen before are not downloaded again: 4 photos in all, each fetched once.
    assert chat.calls.count("download_media") == 4
    # Alerts were queued for the team's chat like any target's.
    queued = app.store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert queued >= 4


async def test_messages_older_than_the_window_are_not_deleted(tg, monkeypatch):
    app, chat, _ = tg
    monkeypatch.setattr("watcher.steps.telegram_account.WINDOW", 3)
    for i in range(1, 9):
        chat.post(i, f"listing {i}")
    monkeypatch.setattr("watcher.steps.telegram_account.WINDOW", 8)
    assert (await capture(app)).post_count == 8
    monkeypatch.setattr("watcher.steps.telegram_account.WINDOW", 3)
    chat.post(9, "listing 9")
    chat.delete(7)
    summary = await capture(app)
    # Read: 9 (new) and the window down to 6; 1..5 were not read and are not judged.
    assert [e.post_id for e in summary.events if e.kind == "deleted_post"] == ["7"]
    assert {p.post_id for p in app.store.live_posts("traders")} >= {"1", "2", "3", "4", "5"}


# -- evidence ------------------------------------------------------------------------------
async def test_evidence_of_an_api_capture_exports_and_verifies(tg, tmp_path):
    app, chat, _ = tg
    chat.post(1, "pangolin scales <script>alert(1)</script>", photo=4)
    summary = await capture(app)
    rows = app.store.db.execute(
        "SELECT kind, sha256 FROM artifacts WHERE capture_id = ?", [summary.capture_id]
    ).fetchall()
    by_kind = {kind: sha for kind, sha in rows}
    for kind in ("rendering_screenshot", "rendering_html", "api_messages_tl", "api_messages_json"):
        assert kind in by_kind, by_kind
    assert "screenshot" not in by_kind and "wacz" not in by_kind  # never a page capture
    html = app.blobs.read(by_kind["rendering_html"]).decode()
    assert "Rendering of messages received through the Telegram API" in html
    assert RENDERING_LABEL in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    raw = app.blobs.read(by_kind["api_messages_tl"])
    assert raw[4:] == bytes(chat.messages[1])  # Telegram's own bytes, after their length
    meta = json.loads(app.blobs.read(by_kind["metadata"]))
    assert meta["telegram_api"]["account"] == {
        "session": "acct",
        "user_id": 4242000,
        "username": "team_reader",
    }
    assert "secret-session" not in json.dumps(meta)
    shot = app.blobs.read(by_kind["rendering_screenshot"])
    (tmp_path / "rendering.png").write_bytes(shot)
    assert shot.startswith(b"\x89PNG") and len(shot) > 5_000

    (bundle,) = export_bundle(app, Selection(target="traders"), tmp_path / "out")
    report = verify_bundle(bundle, Trust.of(app.custody.key.fingerprint))
    assert report.ok, [f.message for f in report.findings if not f.ok]
    names = zipfile.ZipFile(bundle).namelist()
    capture_dir = f"captures/{summary.capture_id}/"
    for name in ("telegram-api-rendering.png", "telegram-api-messages.tl"):
        assert capture_dir + name in names, names
    assert not any("secret" in zipfile.ZipFile(bundle).read(n).decode("latin-1") for n in names)
    index = zipfile.ZipFile(bundle).read("index.html").decode()
    assert "rendering of messages received through the Telegram API (PNG)" in index


# -- account safety ----------------------------------------------------------------------------
async def test_short_flood_wait_is_honoured_to_the_second_and_reported(tg):
    app, chat, sleeps = tg
    chat.post(1, "hello")
    chat.fail("iter_messages", errors.FloodWaitError(request=None, capture=17))
    summary = await capture(app)
    assert summary.status == CaptureStatus.OK, summary.reason
    assert 17 in sleeps.seconds
    meta_sha = app.store.db.execute(
        "SELECT sha256 FROM artifacts WHERE capture_id = ? AND kind = 'metadata'",
        [summary.capture_id],
    ).fetchone()[0]
    waits = json.loads(app.blobs.read(meta_sha))["telegram_api"]["flood_waits"]
    assert [(w["seconds"], w["honoured"]) for w in waits] == [(17, True)]


async def test_long_flood_wait_pauses_the_accounts_targets_and_alerts_once(tg, make_app):
    app, chat, sleeps = tg
    chat.post(1, "hello")
    chat.fail("iter_messages", errors.FloodWaitError(request=None, capture=3600))
    first = await capture(app)
    assert first.status != CaptureStatus.OK and first.reason == "account_paused"
    assert 3600 not in sleeps.seconds  # not waited inside the capture
    assert "acct" in str(first.events[0].payload.to_json())
    calls = len(chat.calls)
    again = await capture(app)
    assert again.reason == "account_paused"
    assert len(chat.calls) == calls  # no request while paused: nothing retries in a loop
    alerted = app.store.db.execute(
        "SELECT COUNT(*) FROM events WHERE kind = 'capture_failed'"
    ).fetchone()[0]
    assert alerted == 1


@pytest.mark.parametrize(
    ("error", "reason", "advice"),
    [
        (errors.SessionRevokedError(request=None), "account_logged_out", "session telegram acct"),
        (errors.AuthKeyUnregisteredError(request=None), "account_logged_out", "log in again"),
        (errors.UserDeactivatedBanError(request=None), "account_banned", "different account"),
    ],
)
async def test_an_account_that_is_out_stops_its_targets_with_one_alert(tg, error, reason, advice):
    app, chat, _ = tg
    chat.post(1, "hello")
    chat.fail("get_me", error)
    first = await capture(app)
    assert first.reason == reason
    message = first.events[0].payload.to_json()
    assert "acct" in json.dumps(message) and advice in json.dumps(message)
    calls = len(chat.calls)
    second = await capture(app)
    assert second.reason == reason and len(chat.calls) == calls  # stopped: not asked again
    # Logging the account in again (a new session file) lets its targets go on.
    accounts = app.telegram
    session = accounts.sessions.load("acct")
    accounts.sessions.save(session)
    future = time.time() + 5
    os.utime(accounts.sessions.path_for("acct"), (future, future))
    assert (await capture(app)).status == CaptureStatus.OK


async def test_join_request_waiting_for_approval_is_reported_not_retried(tg):
    app, chat, sleeps = tg
    chat.fail("ImportChatInviteRequest", errors.InviteRequestSentError(request=None))
    summary = await capture(app)
    assert summary.reason == "join_pending"
    assert "approve" in str(summary.events[0].payload.to_json())
    assert chat.calls.count("ImportChatInviteRequest") == 1 and not sleeps.seconds


async def test_private_channel_error_says_what_to_do(tg):
    app, chat, _ = tg
    chat.fail("CheckChatInviteRequest", errors.InviteHashExpiredError(request=None))
    summary = await capture(app)
    assert summary.reason == "chat_unavailable"
    assert "new invite link" in str(summary.events[0].payload.to_json())


def test_chat_links():
    assert parse_chat_link("https://t.me/+AbCdEfGhIjKl").invite == "AbCdEfGhIjKl"
    assert parse_chat_link("https://t.me/joinchat/AbCdEfGhIjKl").invite == "AbCdEfGhIjKl"
    assert parse_chat_link("https://t.me/c/1777000111/5").chat_id == 1777000111
    assert parse_chat_link("https://t.me/ivory_market").name == "ivory_market"
    with pytest.raises(Exception, match="invite link"):
        parse_chat_link("https://example.org/+AbCdEfGhIjKl")


def test_session_file_is_private(tmp_path: Path):
    accounts = TelegramAccounts(tmp_path)
    path = accounts.sessions.save(TelegramSession("acct", "1BVtsOK-a-secret-session-string", 1))
    assert path.stat().st_mode & 0o777 == 0o600
    assert accounts.sessions.load("acct").session_string.endswith("secret-session-string")
    assert "secret" not in repr(accounts.sessions.load("acct"))


# -- sessions ------------------------------------------------------------------------------
async def test_session_check_says_whether_the_account_is_still_authorised(tmp_path, capsys):
    chat = ScriptedTelegram()
    accounts = TelegramAccounts(tmp_path, factory=lambda session, creds: chat)
    accounts.sessions.save(TelegramSession("acct", "1BVtsOK-a-secret-session-string", 4242000))
    env = {"WATCHER_TELEGRAM_API_ID": "1", "WATCHER_TELEGRAM_API_HASH": "abcdef0123"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert await check_telegram(accounts, "acct") == 0
        assert "authorised (Telegram user id 4242000)" in capsys.readouterr().out
        chat.authorised = False
        assert await check_telegram(accounts, "acct") == 1
    out = capsys.readouterr().out
    assert "NOT authorised" in out and "watcher session telegram acct" in out
    assert "secret-session" not in out


def test_credentials_missing_says_where_to_put_them(tmp_path):
    with pytest.raises(WatcherError) as caught:
        load_credentials(tmp_path, environ={})
    message = str(caught.value)
    assert "WATCHER_TELEGRAM_API_ID" in message and "telegram-api.json" in message
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "telegram-api.json").write_text('{"api_id": 99, "api_hash": "feedface00"}')
    (keys / "telegram-api.json").chmod(0o644)
    with pytest.raises(WatcherError, match="chmod 600"):
        load_credentials(tmp_path, environ={})
    (keys / "telegram-api.json").chmod(0o600)
    assert load_credentials(tmp_path, environ={}).api_id == 99


def test_login_without_a_terminal_is_a_plain_message(tmp_path):
    (tmp_path / "watchlist.yaml").write_text("targets: []\n")
    result = watcher("session", "telegram", "acct", cwd=tmp_path)
    assert result.returncode != 0 and "no terminal" in result.stderr
    assert "Traceback" not in result.stderr
    TelegramAccounts(tmp_path / "data").sessions.save(
        TelegramSession("acct", "1BVtsOK-a-secret-session-string", 4242000)
    )
    listed = watcher("session", "list", cwd=tmp_path)
    assert "acct" in listed.stdout and "Telegram account, user id 4242000" in listed.stdout
    assert "secret" not in listed.stdout


def test_a_private_chat_without_a_session_is_warned(write_watchlist):
    path = write_watchlist(
        "targets:\n  - name: a\n    platform: telegram\n    url: https://t.me/+AbCdEfGhIjKl\n"
    )
    assert any("Telegram account" in str(w) for w in check_watchlist(path).warnings)


async def test_two_targets_of_one_account_are_serialised_and_alerted_once(make_app, monkeypatch):
    monkeypatch.setenv("WATCHER_TELEGRAM_API_ID", "123456")
    monkeypatch.setenv("WATCHER_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
    chat = ScriptedTelegram()
    chat.post(1, "hello")
    app = make_app(
        telegram_target("traders"),
        telegram_target("traders-2", "https://t.me/c/1777000111"),
        header="alerts:\n  telegram:\n    chat_ids: [-100777]\n",
    )
    accounts = TelegramAccounts(
        app.data_dir, factory=lambda session, creds: chat, sleep=Sleeps(), per_minute=6000
    )
    accounts.sessions.save(TelegramSession("acct", "1BVtsOK-a-secret-session-string", 4242000))
    app._telegram = accounts
    both = [app.watchlist.target("traders"), app.watchlist.target("traders-2")]
    ok = await asyncio.gather(*(run_capture(app, t) for t in both))
    assert [s.status for s in ok] == [CaptureStatus.OK, CaptureStatus.OK]
    assert chat.most_connected == 1  # one account, one capture at a time
    chat.fail("iter_messages", errors.FloodWaitError(request=None, capture=7200))
    paused = [await run_capture(app, t) for t in both]
    assert [s.reason for s in paused] == ["account_paused", "account_paused"]
    failed = app.store.db.execute(
        "SELECT target FROM events WHERE kind = 'capture_failed'"
    ).fetchall()
    assert [row[0] for row in failed] == ["traders"]  # the account's pause, alerted once


async def test_the_request_budget_paces_by_sleeping():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RequestBudget(per_minute=20, burst=3, sleep=sleep, clock=lambda: now[0])
    for _ in range(5):
        await budget.spend()
    # Three at once, then one every 3 s (20 a minute), waited, never spun.
    assert slept == [pytest.approx(3.0), pytest.approx(3.0)]
    assert budget.spent == 5


def test_a_session_string_never_reaches_a_log_line(tmp_path, caplog):
    accounts = TelegramAccounts(tmp_path)
    secret = "1BVtsOK" + "q" * 40 + "-never-logged"
    accounts.sessions.save(TelegramSession("acct", secret, 1))
    loaded = accounts.sessions.load("acct").session_string
    with caplog.at_level(logging.WARNING):
        logging.getLogger("telethon.test").warning("session %s failed", loaded)
    assert secret not in caplog.text and "[REDACTED]" in caplog.text


async def test_a_cut_connection_and_a_damaged_session_are_plain_failures(tg):
    app, chat, sleeps = tg
    chat.fail("connect", asyncio.IncompleteReadError(b"x" * 95, 1347703872))
    summary = await capture(app)
    assert summary.reason == "network" and "could not reach Telegram" in str(
        summary.events[0].payload.to_json()
    )
    assert not sleeps.seconds  # no retry loop: the target's next run is the retry
    with pytest.raises(WatcherError, match="damaged"):
        telethon_client("not-a-session", 1, "abcdef")


def restarted(app, chat, sleeps, **clock) -> TelegramAccounts:
    """The accounts of a watcher started again on the same data folder."""
    app._telegram = TelegramAccounts(
        app.data_dir, factory=lambda session, creds: chat, sleep=sleeps, per_minute=6000, **clock
    )
    return app._telegram


async def test_a_pause_outlives_a_restart(tg):
    # Telegram said wait an hour; watcher is restarted ten minutes later (an update, a
    # reboot). The account must not be sent one more request before the hour is up.
    app, chat, sleeps = tg
    chat.post(1, "hello")
    chat.fail("iter_messages", errors.FloodWaitError(request=None, capture=3600))
    assert (await capture(app)).reason == "account_paused"
    holds = app.data_dir / "telegram-holds.json"
    assert holds.stat().st_mode & 0o777 == 0o600
    calls = len(chat.calls)
    restarted(app, chat, sleeps)
    again = await capture(app)
    assert again.reason == "account_paused" and len(chat.calls) == calls
    # An hour later the account reads again.
    restarted(app, chat, sleeps, wall_clock=lambda: time.time() + 3601)
    assert (await capture(app)).status == CaptureStatus.OK
    assert len(chat.calls) > calls


async def test_a_stopped_account_stays_stopped_after_a_restart_until_logged_in_again(tg):
    app, chat, sleeps = tg
    chat.post(1, "hello")
    chat.fail("get_me", errors.UserDeactivatedBanError(request=None))
    assert (await capture(app)).reason == "account_banned"
    calls = len(chat.calls)
    accounts = restarted(app, chat, sleeps)
    assert (await capture(app)).reason == "account_banned" and len(chat.calls) == calls
    session = accounts.sessions.load("acct")
    accounts.sessions.save(session)
    future = time.time() + 5
    os.utime(accounts.sessions.path_for("acct"), (future, future))
    assert (await capture(app)).status == CaptureStatus.OK
    # Cleared for good: a restart after the new login does not stop it again.
    restarted(app, chat, sleeps)
    assert (await capture(app)).status == CaptureStatus.OK


@pytest.mark.parametrize("damage", [b"{not json", b'{"acct": 7}', b'{"acct": {"stopped": 1}}'])
async def test_a_damaged_holds_file_is_reported_and_does_not_stop_captures(tg, caplog, damage):
    app, chat, sleeps = tg
    chat.post(1, "hello")
    holds = app.data_dir / "telegram-holds.json"
    holds.write_bytes(damage)
    holds.chmod(0o600)
    restarted(app, chat, sleeps)
    assert "Telegram account holds file" in caplog.text and "not read" in caplog.text
    assert (await capture(app)).status == CaptureStatus.OK


# -- logging an account in ------------------------------------------------------------------
class LoginClient:
    """Telethon's side of an interactive login, scripted: what ``log_in`` calls, in order."""

    def __init__(self, code_error: Exception | None = None, password: str | None = None):
        self.code_error, self.password, self.calls = code_error, password, []
        self.session = self  # client.session.save()

    async def connect(self):
        self.calls.append("connect")

    async def send_code_request(self, phone):
        self.calls.append(("code_request", phone))

    async def sign_in(self, phone=None, code=None, password=None):
        self.calls.append(("sign_in", phone, code, password is not None))
        if code is not None and self.code_error is not None:
            raise self.code_error
        if code is not None and self.password is not None:
            raise errors.SessionPasswordNeededError(request=None)
        if password is not None and password != self.password:
            raise errors.PasswordHashInvalidError(request=None)

    async def get_me(self):
        return types.User(id=4242000, username="team_reader")

    def save(self):
        return "1BVtsOK-new-session-string"


def answers(*replies: str):
    """An ``ask`` that gives these replies in turn and records (prompt, secret)."""
    asked: list[tuple[str, bool]] = []
    queue = list(replies)

    def ask(prompt: str, secret: bool) -> str:
        asked.append((prompt, secret))
        return queue.pop(0)

    return ask, asked


async def test_login_with_a_two_step_password_asks_it_hidden_and_keeps_the_session():
    client = LoginClient(password="hunter2 but longer")
    ask, asked = answers(" +85512345678 ", "12345 ", "hunter2 but longer")
    saved, account = await log_in(client, "acct", ask)
    assert saved == "1BVtsOK-new-session-string"
    assert (account.user_id, account.username) == (4242000, "team_reader")
    assert client.calls[:2] == ["connect", ("code_request", "+85512345678")]
    assert client.calls[2] == ("sign_in", "+85512345678", "12345", False)
    # Phone and code are typed in the open; only the password is asked without echo.
    assert [secret for _prompt, secret in asked] == [False, False, True]
    assert "two-step verification password" in asked[2][0]


@pytest.mark.parametrize(
    ("code_error", "replies", "said"),
    [
        (errors.PhoneCodeInvalidError(request=None), ("+85512345678", "1"), "refused the code"),
        (errors.PhoneCodeExpiredError(request=None), ("+85512345678", "1"), "code expired"),
        (None, ("+85512345678", "1", "not the password"), "password was wrong"),
    ],
)
async def test_a_refused_login_says_what_and_how_to_try_again(code_error, replies, said):
    client = LoginClient(code_error=code_error, password="the password")
    ask, _asked = answers(*replies)
    with pytest.raises(WatcherError) as caught:
        await log_in(client, "acct", ask)
    message = str(caught.value)
    assert said in message and "watcher session telegram acct" in message
    assert "not the password" not in message  # a typed password is never echoed back


def test_login_without_a_terminal_says_where_to_run_it(tmp_path):
    result = watcher("session", "telegram", "acct", "--data", str(tmp_path / "data"))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "no terminal to ask at" in out and "ssh -t" in out, out
    assert not (tmp_path / "data" / "sessions" / "acct.tgsession").exists()
