"""Browsers on other machines: two real endpoints on loopback (a Chromium DevTools endpoint
and a Playwright server started with deploy/browser-server.js), captures spread over them, an
endpoint killed with SIGKILL mid-capture and the capture taken again on the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import playwright
import pytest

from tests.conftest import shop_target, watcher
from watcher.app import App
from watcher.capture import pool as pool_module
from watcher.capture.browser import find_chromium, launch_args
from watcher.capture.pool import (
    BrowserPool,
    configured_endpoints,
    parse_endpoints,
    playwright_version,
)
from watcher.errors import WatcherError, WatchlistError
from watcher.models import CaptureMode, CaptureStatus
from watcher.pipeline import run_capture
from watcher.secrets import redact
from watcher.store.check_modes import set_check_mode
from watcher.watchlist import load_watchlist, parse_watchlist

REPO = Path(__file__).resolve().parent.parent
DRIVER = Path(playwright.__file__).parent / "driver"
START_TIMEOUT_S = 90.0


class Endpoint:
    """A browser endpoint process on loopback: its URL and its process (group)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process, self.url = process, url

    def kill(self) -> None:
        """SIGKILL, as a crashed or powered-off host: no chance to say goodbye."""
        with contextlib.suppress(ProcessLookupError):  # killed already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def _wait_for_line(path: Path, pattern: str, process: subprocess.Popen[bytes]) -> str:
    """The first match of ``pattern`` in the file a process writes; fails if it exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            pytest.fail(f"the endpoint exited: {path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"the endpoint did not start within {START_TIMEOUT_S:g} s")


def start_cdp(folder: Path) -> Endpoint:
    """Chromium with ``--remote-debugging-port=0``; its port from "DevTools listening on"."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no system Chromium for a DevTools endpoint")
    folder.mkdir(parents=True)
    log = folder / "stderr"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={folder / 'profile'}",
                *launch_args(),
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    return Endpoint(process, _wait_for_line(log, r"DevTools listening on (ws://\S+)", process))


def start_playwright_server(folder: Path) -> Endpoint:
    """deploy/browser-server.js on the venv's Playwright driver (the client's version)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no system Chromium for a Playwright server")
    folder.mkdir(parents=True)
    out = folder / "stdout"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "PLAYWRIGHT_CORE": str(DRIVER / "package"),
        "CHROMIUM": chromium,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WS_PATH": "/s3cretpath0123456789",
    }
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [str(DRIVER / "node"), str(REPO / "deploy" / "browser-server.js")],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Endpoint(process, _wait_for_line(out, r"(ws://\S+)", process))


def stop(*endpoints: Endpoint) -> None:
    for endpoint in endpoints:
        endpoint.kill()


@pytest.fixture(scope="module")
def two_kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Endpoint]]:
    """A DevTools endpoint and a Playwright server, shared by the tests that kill neither."""
    root = tmp_path_factory.mktemp("endpoints")
    cdp = start_cdp(root / "cdp")
    try:
        server = start_playwright_server(root / "pw")
    except BaseException:
        stop(cdp)
        raise
    yield cdp, server
    stop(cdp, server)


def browsers_yaml(*entries: tuple[str, str, str, int]) -> str:
    lines = ["browsers:"]
    for name, kind, url, slots in entries:
        lines.append(f"  - {{name: {name}, kind: {kind}, url: '{url}', slots: {slots}}}")
    return "\n".join(lines) + "\n"


def open_app(tmp_path: Path, header: str, *targets: str) -> App:
    path = tmp_path / "watchlist.yaml"
    path.write_text(header + "targets:\n" + "".join(targets), encoding="utf-8")
    return App.open(load_watchlist(path), tmp_path / "data")


def metadata(app: App, capture_id: int) -> dict:
    sha = app.store.db.execute(
        "SELECT sha256 FROM artifacts WHERE capture_id = ? AND kind = 'metadata'", [capture_id]
    ).fetchone()[0]
    return json.loads(app.blobs.read(sha))


def shop(site, name: str, *texts: str) -> str:
    site.shop(name)
    for text in texts:
        site.add_post(name, text)
    return f"{site.base_url}/shop/{name}"


async def test_captures_spread_over_both_endpoints(site, tmp_path, two_kinds, monkeypatch):
    monkeypatch.delenv("WATCHER_BROWSERS", raising=False)
    cdp, server = two_kinds
    targets = [shop_target(f"shop{n}", shop(site, f"shop{n}", f"item {n}")) for n in range(4)]
    header = browsers_yaml(
        ("devtools", "cdp", cdp.url, 1), ("pwserver", "playwright", server.url, 1)
    )
    app = open_app(tmp_path, header, *targets)
    try:
        assert isinstance(app.browser, BrowserPool)
        app.browser.publish(app.data_dir)
        summaries = await asyncio.wait_for(
            asyncio.gather(*(run_capture(app, t) for t in app.watchlist.targets)), 240
        )
        assert [s.status for s in summaries] == [CaptureStatus.OK] * 4, summaries
        hosts = [metadata(app, s.capture_id)["browser_host"] for s in summaries]
        # Each capture says which browser loaded it; both endpoints took captures.
        assert {h["endpoint"] for h in hosts} == {"devtools", "pwserver"}
        by_name = {h["endpoint"]: h for h in hosts}
        assert by_name["devtools"]["kind"] == "cdp" and by_name["pwserver"]["kind"] == "playwright"
        assert all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", h["version"]) for h in hosts)
        assert all(h["host"].startswith("127.0.0.1:") for h in hosts)
        # The Playwright server's secret path never reaches the evidence or the state file.
        assert "s3cretpath" not in json.dumps(hosts)
        state = (app.data_dir / "browsers.json").read_text()
        assert "s3cretpath" not in state
        assert {e["name"]: e["captures"] for e in json.loads(state)["endpoints"]}.keys() == {
            "devtools",
            "pwserver",
        }

        # `watcher status` (another process) lists each endpoint with its slots.
        out = watcher("status", "--watchlist", str(tmp_path / "watchlist.yaml"))
        assert out.returncode == 0, out.stderr
        assert re.search(r"devtools\s+cdp\s+127\.0\.0\.1:\d+\s+slots 0/1", out.stdout), out.stdout
        assert re.search(r"pwserver\s+playwright\s+127\.0\.0\.1:\d+\s+slots 0/1", out.stdout)
        assert "s3cretpath" not in out.stdout
    finally:
        await app.close()


async def test_network_guard_applies_on_remote_browsers(site, tmp_path, two_kinds, monkeypatch):
    """A target that may not reach private addresses is refused on a remote browser too:
    the route is on the context, wherever the browser runs."""
    monkeypatch.delenv("WATCHER_BROWSERS", raising=False)
    cdp, server = two_kinds
    url = shop(site, "inside", "router page")
    target = shop_target("inside", url).replace("    allow_private_network: true\n", "")
    header = browsers_yaml(
        ("devtools", "cdp", cdp.url, 1), ("pwserver", "playwright", server.url, 1)
    )
    app = open_app(tmp_path, header, target)
    try:
        for _ in range(2):  # once on each endpoint (they take turns)
            summary = await asyncio.wait_for(run_capture(app, app.watchlist.targets[0]), 120)
            assert summary.status == CaptureStatus.FAILED and summary.reason == "refused"
        assert {s.served["capture"] for s in app.browser.states} == {1}
        assert not [r for r in site.requests if r.startswith("/shop/inside")]
    finally:
        await app.close()


async def test_endpoint_killed_mid_capture_is_taken_again_on_the_other(site, tmp_path, monkeypatch):
    monkeypatch.delenv("WATCHER_BROWSERS", raising=False)
    one, two = start_cdp(tmp_path / "one"), None
    try:
        two = start_cdp(tmp_path / "two")
        url = shop(site, "dealer", "ivory bangle", "carved tusk")
        # The page answers only after a minute: the capture is surely mid-way when the
        # browser that asked for it is killed (no timing race: we wait for the request).
        site.route("/shop/dealer", "", delay=60)
        header = browsers_yaml(("one", "cdp", one.url, 1), ("two", "cdp", two.url, 1))
        app = open_app(tmp_path, header, shop_target("dealer", url))
        try:
            running = asyncio.create_task(run_capture(app, app.watchlist.targets[0]))
            while "/shop/dealer" not in site.requests:
                assert not running.done(), running.result()
                await asyncio.sleep(0.05)
            (busy,) = [s for s in app.browser.states if s.in_use["capture"]]
            site.unroute("/shop/dealer")  # the page answers again, at once
            {"one": one, "two": two}[busy.label].kill()
            summary = await asyncio.wait_for(running, 180)

            assert summary.status == CaptureStatus.OK, summary
            assert summary.post_count == 2
            meta = metadata(app, summary.capture_id)
            survivor = "two" if busy.label == "one" else "one"
            assert meta["browser_host"]["endpoint"] == survivor
            (lost,) = meta["lost_attempts"]
            assert lost["endpoint"] == busy.label and lost["host"].startswith("127.0.0.1:")
            # Nothing lost and nothing doubled: one capture, both posts.
            rows = app.store.db.execute("SELECT status FROM captures").fetchall()
            assert [r[0] for r in rows] == ["ok"]
            assert len(app.store.live_posts("dealer")) == 2
            # The dead endpoint is down with its error; the next capture goes to the other.
            assert busy.failures == 1 and busy.lost == 1 and busy.last_error
            again = await asyncio.wait_for(run_capture(app, app.watchlist.targets[0]), 120)
            assert again.status == CaptureStatus.OK
            assert metadata(app, again.capture_id)["browser_host"]["endpoint"] == survivor
        finally:
            await app.close()
    finally:
        stop(*(e for e in (one, two) if e is not None))


async def test_unreachable_endpoint_fails_the_capture_in_words_without_its_token(
    site, tmp_path, monkeypatch
):
    monkeypatch.setattr(pool_module, "WAIT_FOR_DOWN_S", 0.0)
    token = "tok3n-abcdef0123456789"
    # A port nothing listens on (the socket is closed again before use).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("WATCHER_BROWSERS", f"ws://127.0.0.1:{port}/?token={token} kind=cdp")
    app = open_app(tmp_path, "", shop_target("dealer", shop(site, "dealer", "x")))
    try:
        summary = await asyncio.wait_for(run_capture(app, app.watchlist.targets[0]), 120)
        assert summary.status == CaptureStatus.FAILED
        message = app.store.db.execute("SELECT message FROM captures").fetchone()[0]
        assert "no browser host can take a capture" in message
        assert f"127.0.0.1:{port}" in message
        assert token not in message
        assert redact(f"GET ws://127.0.0.1:{port}/?token={token}").count(token) == 0
    finally:
        await app.close()


def test_watcher_browsers_variable(monkeypatch):
    endpoints = parse_endpoints(
        "ws://10.0.0.5:3000/ slots=4, http://10.0.0.6:9222 slots=2 name=cdp-b\n"
        "ws://10.0.0.7:9222/devtools/browser/abc"
    )
    assert [(e.protocol(), e.slots, e.label()) for e in endpoints] == [
        ("playwright", 4, "10.0.0.5:3000"),
        ("cdp", 2, "cdp-b"),
        ("cdp", 2, "10.0.0.7:9222"),
    ]
    with pytest.raises(WatcherError, match=r"WATCHER_BROWSERS, browser 1: `seats=4`.*slots=N"):
        parse_endpoints("ws://10.0.0.5:3000/ seats=4")
    with pytest.raises(WatcherError, match=r"browser 2 \(\?\).*not a browser endpoint"):
        parse_endpoints("ws://10.0.0.5:3000/, 10.0.0.6")
    # The variable wins over the watchlist's list.
    watchlist = parse_watchlist(
        "browsers:\n  - url: ws://10.9.9.9:3000/\ntargets:\n"
        "  - {name: a, platform: telegram, url: 'https://t.me/s/a'}\n"
    )
    assert [e.url for e in configured_endpoints(watchlist, {})] == ["ws://10.9.9.9:3000/"]
    chosen = configured_endpoints(watchlist, {"WATCHER_BROWSERS": "http://10.0.0.6:9222"})
    assert [e.url for e in chosen] == ["http://10.0.0.6:9222"]


def test_watchlist_browsers_problems_have_lines():
    text = (
        "browsers:\n"
        "  - url: 10.0.0.5:3000\n"
        "  - url: ws://10.0.0.6:3000/\n"
        "    slots: 0\n"
        "targets:\n"
        "  - {name: a, platform: telegram, url: 'https://t.me/s/a'}\n"
    )
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text)
    problems = {p.line: str(p) for p in caught.value.problems}
    assert "not a browser endpoint address" in problems[2]
    assert 4 in problems, problems


async def test_local_browser_is_recorded_as_this_machine(site, make_app, monkeypatch):
    monkeypatch.delenv("WATCHER_BROWSERS", raising=False)
    app = make_app(shop_target("dealer", shop(site, "dealer", "ivory bangle")))
    summary = await asyncio.wait_for(run_capture(app, app.watchlist.targets[0]), 120)
    assert summary.status == CaptureStatus.OK
    meta = metadata(app, summary.capture_id)
    host = meta["browser_host"]
    assert (host["endpoint"], host["kind"], host["host"]) == (
        "local",
        "local",
        socket.gethostname(),
    )
    assert host["version"] == meta["browser_version"] and host["user_agent"] == meta["user_agent"]
    assert "lost_attempts" not in meta


async def test_light_checks_run_on_the_endpoints_too(site, tmp_path, two_kinds, monkeypatch):
    monkeypatch.delenv("WATCHER_BROWSERS", raising=False)
    cdp, server = two_kinds
    url = shop(site, "quiet", "one listing", "another")
    target = shop_target("quiet", url) + "    full_every: 1h\n"
    header = browsers_yaml(
        ("devtools", "cdp", cdp.url, 1), ("pwserver", "playwright", server.url, 1)
    )
    app = open_app(tmp_path, header, target)
    try:
        target = app.watchlist.targets[0]
        first = await asyncio.wait_for(run_capture(app, target), 120)
        # A server-rendered page is checked over HTTP with remote browsers too (this failed
        # when the pool lacked what the HTTP check reads of a browser).
        over_http = await asyncio.wait_for(run_capture(app, target), 120)
        assert (first.mode, over_http.mode) == (CaptureMode.FULL, CaptureMode.CHECK)
        assert metadata(app, over_http.capture_id)["read_by"] == "http"
        # A page whose checks need the browser is checked on the endpoints.
        set_check_mode(app.store, "quiet", "browser", "this test checks the browsers' lane")
        summaries = [await asyncio.wait_for(run_capture(app, target), 120) for _ in range(2)]
        assert [s.mode for s in summaries] == [CaptureMode.CHECK, CaptureMode.CHECK]
        checks = [metadata(app, s.capture_id)["browser_host"]["endpoint"] for s in summaries]
        # The checks' lane takes turns over the endpoints like the captures' lane.
        assert sorted(checks) == ["devtools", "pwserver"]
        assert sum(s.served["check"] for s in app.browser.states) == 2
    finally:
        await app.close()


async def test_a_server_of_another_playwright_version_is_named_with_the_fix(
    site, tmp_path, monkeypatch
):
    """A Playwright server refuses a client of another version (HTTP 428 at the WebSocket
    upgrade, with Playwright's "version mismatch" box): the failure says what to install."""
    monkeypatch.setattr(pool_module, "WAIT_FOR_DOWN_S", 0.0)
    refusal = (
        b"HTTP/1.1 428 Precondition Required\r\n\r\n"
        b"Playwright version mismatch:\n  - server version: v1.40\n  - client version: v1.65\n"
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(refusal)

    threading.Thread(target=answer, daemon=True).start()
    monkeypatch.setenv("WATCHER_BROWSERS", f"ws://127.0.0.1:{port}/ name=old-server")
    app = open_app(tmp_path, "", shop_target("dealer", shop(site, "dealer", "x")))
    try:
        summary = await asyncio.wait_for(run_capture(app, app.watchlist.targets[0]), 120)
        assert summary.status == CaptureStatus.FAILED
        message = app.store.db.execute("SELECT message FROM captures").fetchone()[0]
        assert "old-server" in message
        assert f"runs another Playwright version than watcher ({playwright_version()})" in message
        assert f"install playwright {playwright_version()} on the browser host" in message
    finally:
        await app.close()
        listener.close()
