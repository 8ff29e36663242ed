"""Security review, by test: the bot token and a session's cookie never reach a log record,
a file in the data folder (evidence included, unpacked), or an error text; session files
are 0600."""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import stat
import zipfile
from pathlib import Path

from tests.conftest import alerts_yaml
from tests.fakes.telegram_api import FakeTelegram
from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.alert.outbox import OutboxSender, build_sinks
from watcher.alert.telegram import TelegramConnection
from watcher.pipeline import run_capture

TOKEN = "424242:SCAN-ME-token-7f3a9c"
WRONG_TOKEN = "515151:SCAN-ME-wrong-token-e1d2"
COOKIE = "SCAN-ME-session-cookie-b00c"
SECRETS = (TOKEN, WRONG_TOKEN, COOKIE, TOKEN.split(":")[1], COOKIE[8:])
CHAT = -100321


def unpacked(data: bytes) -> list[bytes]:
    """The bytes, plus what is inside when they are a zip (WACZ) or gzip (WARC) file."""
    parts = [data]
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for name in archive.namelist():
                    parts += unpacked(archive.read(name))
        except zipfile.BadZipFile:
            pass
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            parts += unpacked(gzip.decompress(data))
    return parts


def leaks_in_folder(root: Path, skip: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_relative_to(skip):
            continue
        for part in unpacked(path.read_bytes()):
            found += [f"{path}: {s}" for s in SECRETS if s.encode() in part]
    return found


async def test_secrets_stay_out_of_logs_evidence_and_errors(site, make_app, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t{COOKIE}\n"
    )
    site.route("/shop", shop_page(listing("a", "first")))
    with FakeTelegram(token=TOKEN) as fake:
        header = alerts_yaml(CHAT)
        app = make_app(
            hostile_target("shop", f"{site.base_url}/shop", extra="session: puppet\n"),
            header=header,
        )
        app.sessions.import_cookies("puppet", cookies)
        target = app.watchlist.target("shop")
        assert (await run_capture(app, target)).status == "ok"
        site.route("/shop", shop_page(listing("a", "first"), listing("b", "second")))
        assert (await run_capture(app, target)).status == "ok"
        reports: list[str] = []
        sender = OutboxSender(
            app, build_sinks(app, telegram=TelegramConnection(TOKEN, fake.base_url)), reports.append
        )
        assert await sender.deliver_due() == 1
        await sender.close()
        # A rejected token: the error text and the outbox must not carry it.
        site.route("/shop", shop_page(*(listing(x, x) for x in "abc")))
        await run_capture(app, target)
        wrong = OutboxSender(
            app,
            build_sinks(app, telegram=TelegramConnection(WRONG_TOKEN, fake.base_url)),
            reports.append,
        )
        await wrong.deliver_due()
        await wrong.close()
    errors = [row[0] or "" for row in app.store.db.execute("SELECT last_error FROM outbox")]
    texts = (
        [r.getMessage() for r in caplog.records]
        + [r.exc_text or "" for r in caplog.records]
        + reports
        + errors
    )
    assert not [t for t in texts for s in SECRETS if s in t]
    data = tmp_path / "data"
    assert not leaks_in_folder(data, skip=app.sessions.folder)
    assert stat.S_IMODE(app.sessions.path_for("puppet").stat().st_mode) == 0o600
    assert stat.S_IMODE(app.sessions.folder.stat().st_mode) == 0o700
