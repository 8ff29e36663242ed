"""A captured page attacks the team: its network, memory, bot token and cookies (issue 19).

All traffic stays on 127.0.0.1. Internal hosts are names that Chromium sends to the loopback
fixture site (``--host-resolver-rules``) while the network guard judges them by the internal
address they stand for (10.x, 169.254.169.254, fd00::): if the guard let one through, the
request would show up on the fixture site under ``/internal``.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import zipfile
from pathlib import Path

import pytest

from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.app import App
from watcher.capture.browser import Browser
from watcher.capture.netguard import refusal
from watcher.demo.images import variant
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.secrets import register_secret
from watcher.watchlist import load_watchlist

SHOP = "shop.example.test"  # stands for a public shop
INTERNAL = {  # name -> the internal address it stands for
    "router.internal.test": "10.0.0.1",
    "metadata.internal.test": "169.254.169.254",
    "nas.internal.test": "fd00::5",
    "cgnat.internal.test": "100.64.0.7",
    "mapped.internal.test": "::ffff:192.168.1.1",
}


@pytest.fixture
async def guarded_browser():
    rules = {SHOP: "127.0.0.1", **dict.fromkeys(INTERNAL, "127.0.0.1")}
    # 198.51.100.7 (documentation range) is "public" to the guard and never connected to:
    # the shop's page holds no image of its own for the downloader to fetch.
    browser = Browser(
        max_concurrent=1, host_rules=rules, guard_hosts={SHOP: "198.51.100.7", **INTERNAL}
    )
    await browser.start()
    yield browser
    await browser.close()


def open_app(tmp_path: Path, browser: Browser, *targets: str) -> App:
    path = tmp_path / "watchlist.yaml"
    path.write_text("targets:\n" + "".join(targets), encoding="utf-8")
    return App.open(load_watchlist(path), tmp_path / "data", browser=browser)


def internal_requests(site) -> list[str]:
    return [r for r in site.requests if r.startswith("/internal")]


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("10.1.2.3", True),
        ("172.31.0.1", True),
        ("192.168.0.1", True),
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("100.100.100.200", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fd00:ec2::254", True),
        ("fe80::1", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::a00:1", True),
        ("2002:c0a8:101::1", True),
        ("93.184.215.14", False),
        ("2606:4700::1111", False),
        ("::ffff:93.184.215.14", False),
    ],
)
def test_internal_address_ranges(address, refused):
    assert (refusal(address) is not None) is refused, refusal(address)


async def test_images_and_redirects_into_the_team_network_are_refused(
    site, guarded_browser, tmp_path
):
    port = site.base_url.rsplit(":", 1)[1]
    # What an internal host would give away, were it reached.
    site.route("/internal/secret.jpg", variant(1), content_type="image/jpeg")
    site.route("/internal/latest/meta-data", "iam-role-credentials", content_type="text/plain")
    srcs = tuple(f"http://{name}:{port}/internal/secret.jpg" for name in INTERNAL)
    srcs += (f"http://metadata.internal.test:{port}/internal/latest/meta-data",)
    refresh = f'<meta http-equiv="refresh" content="0;url=http://router.internal.test:{port}/internal/meta">'
    site.route("/guarded", shop_page(listing("a", "ivory", srcs)))
    site.route("/refresh", shop_page(listing("r", "moved"), head=refresh))
    site.route(
        "/hop",
        "",
        status=302,
        headers={"Location": f"http://nas.internal.test:{port}/internal/admin"},
    )
    targets = [
        hostile_target("shop", f"http://{SHOP}:{port}/guarded", private_ok=False),
        hostile_target("redirected", f"http://{SHOP}:{port}/hop", private_ok=False),
        hostile_target("refreshed", f"http://{SHOP}:{port}/refresh", private_ok=False),
        hostile_target("loopback", f"{site.base_url}/guarded", private_ok=False),
    ]
    app = open_app(tmp_path, guarded_browser, *targets)
    try:
        shop = await run_capture(app, app.watchlist.target("shop"))
        redirected = await run_capture(app, app.watchlist.target("redirected"))
        refreshed = await run_capture(app, app.watchlist.target("refreshed"))
        loopback = await run_capture(app, app.watchlist.target("loopback"))

        # Nothing internal was asked for, the navigation's 302 inside included: the route
        # never sees a redirect, the context's guard proxy does (test_guard_proxy.py).
        assert internal_requests(site) == []
        assert shop.status == CaptureStatus.OK
        rows = app.store.db.execute("SELECT url, sha256, error FROM post_images").fetchall()
        assert len(rows) == len(srcs)
        for url, sha, error in rows:
            assert sha is None and error.startswith("refused"), (url, error)
        errors = " ".join(error for _, _, error in rows)
        for why in ("a private network", "a cloud metadata service", "carrier-grade NAT"):
            assert why in errors
        stored = {k for (k,) in app.store.db.execute("SELECT kind FROM artifacts")}
        assert "image" not in stored
        meta_sha = app.store.db.execute(
            "SELECT sha256 FROM artifacts WHERE kind = 'metadata' AND capture_id = ?",
            [shop.capture_id],
        ).fetchone()[0]
        refused = json.loads(app.blobs.read(meta_sha))["network_refused"]
        refused_urls = {r["url"] for r in refused}
        assert f"http://router.internal.test:{port}/internal/secret.jpg" in refused_urls

        assert redirected.status == CaptureStatus.FAILED and redirected.reason == "refused"
        message = app.store.db.execute(
            "SELECT message FROM captures WHERE id = ?", [redirected.capture_id]
        ).fetchone()[0]
        assert "nas.internal.test" in message and "private network" in message
        assert "allow_private_network" in message  # and how to allow it, if it is meant
        kept = app.store.db.execute(
            "SELECT COUNT(*) FROM artifacts WHERE capture_id = ?", [redirected.capture_id]
        ).fetchone()[0]
        assert kept == 0  # not even a screenshot of the internal page

        # A meta refresh inside: the browser is stopped, and the record says by what.
        assert refreshed.status == CaptureStatus.FAILED and refreshed.reason == "refused"
        message = app.store.db.execute(
            "SELECT message FROM captures WHERE id = ?", [refreshed.capture_id]
        ).fetchone()[0]
        assert f"http://router.internal.test:{port}/internal/meta" in message

        assert loopback.status == CaptureStatus.FAILED and loopback.reason == "refused"
        assert (
            "loopback"
            in app.store.db.execute(
                "SELECT message FROM captures WHERE id = ?", [loopback.capture_id]
            ).fetchone()[0]
        )
    finally:
        await app.close()


# -- the bot token in the browser's and driver's environment, and in debug logs -------------
TOKEN = "555777:AAHsecretTOKENvalue-_xyz0123456789"


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found += children.get(pid, [])
        frontier += children.get(pid, [])
    return found


def _comm(pid: int) -> str:
    """The process's name; "" for a short-lived helper already gone (a clean-clone run once
    failed on one vanishing between listing and reading)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


async def test_browser_and_driver_never_hold_the_bot_token(monkeypatch):
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("SOME_API_KEY", "k-0123456789abcdef")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    browser = Browser(max_concurrent=1)
    await browser.start()
    try:
        pids = _descendants(os.getpid())
        names = {pid: name for pid in pids if (name := _comm(pid))}
        driver = [p for p, n in names.items() if n.startswith(("node", "playwright"))]
        chromium = [p for p, n in names.items() if "chrom" in n]
        assert driver and chromium, names
        read, kept = 0, b""
        for pid in driver + chromium:
            try:
                environ = _environ(pid)
            except OSError:  # a short-lived helper process already gone
                continue
            read += 1
            kept += environ if pid in driver else b""
            assert TOKEN.encode() not in environ, names[pid]
            assert b"k-0123456789abcdef" not in environ, names[pid]
        assert read >= 2
        assert b"HARMLESS_SETTING=kept" in kept  # only secrets are taken out
    finally:
        await browser.close()


def test_percent_encoded_token_is_redacted_from_logs(caplog):
    register_secret(TOKEN)
    encoded = TOKEN.replace(":", "%3A")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info(
            'HTTP Request: GET https://api.telegram.org/file/bot%s/photos/1.jpg "200"', encoded
        )
        logging.getLogger("telegram").debug("url %s", TOKEN.replace(":", "%253a"))
    text = caplog.text
    assert "AAHsecretTOKENvalue" not in text and "[REDACTED]" in text


# -- a cookie set by the page's script, sent back in a header and a body --------------------
async def test_cookie_set_by_script_never_reaches_the_warc(site, make_app, tmp_path):
    secret = "csrf-Zq81mVx0TnYw4LpK"
    # Made by the script, as a server-set token would be: the page's source never holds it.
    script = f"""<script>
      const v = "{secret[::-1]}".split("").reverse().join("");
      document.cookie = "csrftoken=" + v + "; path=/";
      fetch("/api/echo", {{method: "POST", headers: {{"x-csrftoken": v}},
                          body: "csrfmiddlewaretoken=" + v + "&q=ivory"}});
      fetch("/api/json", {{method: "POST", body: JSON.stringify({{token: v}})}});
    </script>"""
    site.route("/api/echo", "ok", content_type="text/plain")
    site.route("/api/json", "ok", content_type="text/plain")
    site.route("/csrf", shop_page(listing("a", "ivory"), tail=script))
    app = make_app(hostile_target("csrf", f"{site.base_url}/csrf"))
    summary = await run_capture(app, app.watchlist.target("csrf"))
    assert summary.status == CaptureStatus.OK
    (sha,) = app.store.db.execute("SELECT sha256 FROM artifacts WHERE kind = 'wacz'").fetchone()
    with zipfile.ZipFile(io.BytesIO(app.blobs.read(sha))) as wacz:
        warc = gzip.decompress(wacz.read("archive/capture.warc.gz"))
    assert b"POST /api/echo" in warc and b"q=ivory" in warc  # the requests are there
    assert secret.encode() not in warc


# -- a capture's image budget ----------------------------------------------------------------
async def test_images_past_the_budget_are_skipped_and_recorded(site, make_app, monkeypatch):
    monkeypatch.setenv("WATCHER_IMAGE_BUDGET_MB", "1")
    big = b"\xff\xd8\xff\xe0" + bytes(400_000)  # 0.4 MB each: two fit in 1 MB, not three
    paths = tuple(site.put_image(f"big{n}.jpg", big + bytes([n])) for n in range(5))
    site.route("/big", shop_page(listing("a", "ivory", paths)))
    app = make_app(hostile_target("big", f"{site.base_url}/big"))
    summary = await run_capture(app, app.watchlist.target("big"))
    assert summary.status == CaptureStatus.OK
    rows = app.store.db.execute("SELECT sha256, error FROM post_images").fetchall()
    stored = [sha for sha, _ in rows if sha]
    skipped = [error for _, error in rows if error and "budget" in error]
    assert len(stored) == 2 and len(skipped) == 3, rows
    assert all("1 MB" in error for error in skipped)
