"""A watched page sends the browser into the team's own network (issue 19, item 3).

Playwright's routes see only a request's first URL; Chromium follows a navigation's 302 (and
a subresource's) by itself. Everything here runs on 127.0.0.1, so "internal" is played by a
second loopback server: the browser is told (``host_rules``) to reach the name
``nas.internal.test`` there, while the network guard judges that name as 10.20.30.40, a
private address. The production rules are untouched: loopback, private, link-local, CGNAT and
metadata ranges are refused as ever; only the test's names map elsewhere. The internal server
counts every TCP connection, so any byte sent its way (a GET, a TLS hello, a CONNECT tunnel)
fails the test.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.app import App
from watcher.capture.browser import Browser
from watcher.capture.guardproxy import GuardProxy
from watcher.capture.netguard import NetworkGuard
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist

SHOP = "shop.example.test"  # stands for a public shop (the fixture site)
INTERNAL = "nas.internal.test"  # stands for a NAS on the team's network


@dataclass
class InternalHost:
    """A loopback server playing an internal host: counts connections, answers a secret."""

    connections: int = 0
    first_bytes: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            self.first_bytes.append(await asyncio.wait_for(reader.read(200), 5))
            body = b"NAS admin: backup password hunter2"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def internal() -> AsyncIterator[InternalHost]:
    host = InternalHost()
    server = await asyncio.start_server(host.serve, "127.0.0.1", 0)
    host.port = server.sockets[0].getsockname()[1]
    yield host
    server.close()


@pytest.fixture
async def guarded_browser() -> AsyncIterator[Browser]:
    # 198.51.100.7 (documentation range) is "public" to the guard; 10.20.30.40 private.
    browser = Browser(
        max_concurrent=1,
        host_rules={SHOP: "127.0.0.1", INTERNAL: "127.0.0.1"},
        guard_hosts={SHOP: "198.51.100.7", INTERNAL: "10.20.30.40"},
    )
    await browser.start()
    yield browser
    await browser.close()


def open_app(tmp_path: Path, browser: Browser, *targets: str) -> App:
    path = tmp_path / "watchlist.yaml"
    path.write_text("targets:\n" + "".join(targets), encoding="utf-8")
    return App.open(load_watchlist(path), tmp_path / "data", browser=browser)


def message_of(app: App, capture_id: int) -> str:
    return app.store.db.execute(
        "SELECT message FROM captures WHERE id = ?", [capture_id]
    ).fetchone()[0]


async def test_no_request_at_all_reaches_an_internal_host(
    site, internal, guarded_browser, tmp_path
):
    port = site.base_url.rsplit(":", 1)[1]
    inside = f"http://{INTERNAL}:{internal.port}"
    site.route("/hop", "", status=302, headers={"Location": f"{inside}/admin"})
    site.route(
        "/hop-https",
        "",
        status=302,
        headers={"Location": f"https://{INTERNAL}:{internal.port}/admin"},
    )
    refresh = f'<meta http-equiv="refresh" content="0;url={inside}/refresh">'
    site.route("/refresh", shop_page(listing("r", "moved"), head=refresh))
    script = f"<script>setTimeout(() => {{ location.href = '{inside}/js'; }}, 50)</script>"
    site.route("/js", shop_page(listing("j", "moving"), tail=script))
    site.route("/photo-elsewhere.jpg", "", status=302, headers={"Location": f"{inside}/img.jpg"})
    embeds = (
        f'<iframe src="{inside}/frame"></iframe>'
        f'<img src="{inside}/direct.jpg">'
        f'<img src="https://{INTERNAL}:{internal.port}/tls.jpg">'
        '<img src="/photo-elsewhere.jpg">'
        f"<script>fetch('{inside}/api', {{mode: 'no-cors'}}).catch(() => {{}});"
        f"new Image().src = '{inside}/beacon';</script>"
    )
    site.route("/embeds", shop_page(listing("e", "ivory bangle"), tail=embeds))
    shop = f"http://{SHOP}:{port}"
    names = ("hop", "hop-https", "refresh", "js", "embeds")
    targets = [hostile_target(n, f"{shop}/{n}", private_ok=False) for n in names]
    app = open_app(tmp_path, guarded_browser, *targets)
    try:
        results = {n: await run_capture(app, app.watchlist.target(n)) for n in names}

        assert internal.connections == 0, internal.first_bytes
        for name in ("hop", "hop-https", "refresh"):
            summary = results[name]
            assert summary.status == CaptureStatus.FAILED, (name, summary)
            assert summary.reason == "refused", (name, summary)
            message = message_of(app, summary.capture_id)
            assert INTERNAL in message and "private network" in message, message
            assert "allow_private_network" in message
        # The script's move may come before or after the page is read: never reached.
        assert results["js"].status in (CaptureStatus.OK, CaptureStatus.FAILED)
        # The embeds' page is the shop's own: captured, its internal parts refused.
        embeds_summary = results["embeds"]
        assert embeds_summary.status == CaptureStatus.OK, embeds_summary
        (sha,) = app.store.db.execute(
            "SELECT sha256 FROM artifacts WHERE kind = 'wacz' AND capture_id = ?",
            [embeds_summary.capture_id],
        ).fetchone()
        with zipfile.ZipFile(io.BytesIO(app.blobs.read(sha))) as wacz:
            warc = gzip.decompress(wacz.read("archive/capture.warc.gz"))
        assert b"hunter2" not in warc
        # The proxy's own refusals are not archived as if the site had said them.
        assert b"network guard refused" not in warc
        # The archive names the address the page came from, not the proxy's.
        assert f'"remote_port": {port}'.encode() in warc
        assert b"WARC-IP-Address: 127.0.0.1" in warc
    finally:
        await app.close()


async def test_a_target_allowed_private_addresses_reaches_them(
    site, internal, guarded_browser, tmp_path
):
    # The control: the same redirect, allowed, does reach the internal server, so the
    # count above would have seen a request that got through.
    port = site.base_url.rsplit(":", 1)[1]
    site.route("/hop", "", status=302, headers={"Location": f"http://{INTERNAL}:{internal.port}/"})
    app = open_app(tmp_path, guarded_browser, hostile_target("hop", f"http://{SHOP}:{port}/hop"))
    try:
        await run_capture(app, app.watchlist.target("hop"))
    finally:
        await app.close()
    assert internal.connections >= 1
    assert internal.first_bytes[0].startswith(b"GET / HTTP/1.1")


# -- the proxy alone: CONNECT, kept-alive connections, refusals ------------------------------
async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_connect_tunnels_bytes_to_an_allowed_host(site):
    proxy = await GuardProxy(NetworkGuard(allow_private=True)).start()
    site.route("/tunnelled", "through the tunnel", content_type="text/plain")
    site_port = int(site.base_url.rsplit(":", 1)[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            f"CONNECT 127.0.0.1:{site_port} HTTP/1.1\r\nHost: 127.0.0.1:{site_port}\r\n\r\n"
            f"GET /tunnelled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        answer = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            answer += chunk
        writer.close()
    finally:
        await proxy.close()
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.")
    assert answer.endswith(b"through the tunnel")
    assert proxy.guard.connected[("127.0.0.1", site_port)] == "127.0.0.1"


async def test_connect_to_an_internal_address_is_refused_before_any_byte(internal):
    guard = NetworkGuard(hosts={INTERNAL: "10.20.30.40"})
    proxy = await GuardProxy(guard, {INTERNAL: "127.0.0.1"}).start()
    try:
        answer = await _exchange(
            proxy.port,
            f"CONNECT {INTERNAL}:{internal.port} HTTP/1.1\r\nHost: {INTERNAL}\r\n\r\n".encode(),
        )
        metadata = await _exchange(
            proxy.port,
            b"CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
        )
    finally:
        await proxy.close()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"private network (10.20.30.40)" in answer and b"allow_private_network" in answer
    assert b"cloud metadata service" in metadata
    assert internal.connections == 0
    assert [r.address for r in guard.refused] == ["10.20.30.40", "169.254.169.254"]


async def test_a_kept_alive_connection_cannot_carry_a_second_host(site, internal):
    # One connection to the proxy, two requests: the shop's (allowed), then the NAS's. Each
    # is judged on its own, so the second is refused though the first opened the way.
    guard = NetworkGuard(hosts={SHOP: "198.51.100.7", INTERNAL: "10.20.30.40"})
    proxy = await GuardProxy(guard, {SHOP: "127.0.0.1", INTERNAL: "127.0.0.1"}).start()
    site.route("/first", "first answer", content_type="text/plain")
    port = site.base_url.rsplit(":", 1)[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            f"GET http://{SHOP}:{port}/first HTTP/1.1\r\nHost: {SHOP}:{port}\r\n\r\n".encode()
        )
        await writer.drain()
        first = b""
        while b"first answer" not in first:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, first
            first += chunk
        writer.write(
            f"GET http://{INTERNAL}:{internal.port}/ HTTP/1.1\r\nHost: {INTERNAL}\r\n\r\n".encode()
        )
        await writer.drain()
        second = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            second += chunk
        writer.close()
    finally:
        await proxy.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 403 "), second
    assert internal.connections == 0
    assert site.requests.count("/first") == 1
