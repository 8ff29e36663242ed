"""The web archive of a capture: real Chromium, the loopback site, warcio and py-wacz as judges."""

from __future__ import annotations

import asyncio
import base64
import email
import gzip
import hashlib
import io
import json
import subprocess
import sys
import urllib.request
import zipfile
import zlib
from pathlib import Path

import pytest
import surt as surt_package
from cdxj_indexer.main import CDXJIndexer
from playwright.async_api import Error as PlaywrightError
from warcio.archiveiterator import ArchiveIterator

from watcher.capture import archive
from watcher.capture.archive import (
    RecordedResponse,
    ResponseRecorder,
    Warc,
    WarcResource,
    as_connected,
    build_wacz,
    build_warc,
    mhtml_snapshot,
    mostly_base64,
    surt,
)
from watcher.capture.page import take_screenshot

BIN = Path(sys.executable).parent
CREATED = "2026-11-23T01:02:03Z"


def served(site, path: str) -> bytes:
    """The bytes the site serves at ``path``, fetched without the browser."""
    with urllib.request.urlopen(site.base_url + path, timeout=5) as reply:
        return reply.read()


def channel(site) -> str:
    """A channel page with one post of two photos; returns its URL."""
    site.channel("c")
    photos = [site.add_photo("a", seed=1), site.add_photo("b", seed=2)]
    site.add_post("c", "tiger claw pendant, inbox", images=photos)
    return f"{site.base_url}/s/c"


async def record(browser, url: str, recorder: ResponseRecorder | None = None, setup=None):
    """Load ``url`` with a recorder attached; returns (responses, resources)."""
    recorder = recorder or ResponseRecorder()
    guard = browser.guard()
    async with browser.context(guard=guard) as ctx:
        if setup is not None:
            await setup(ctx)
        page = await ctx.new_page()
        recorder.attach(page)
        await page.goto(url, wait_until="load")
        html = await page.content()
        shot = await take_screenshot(page)
        mhtml = await mhtml_snapshot(page)
        # With the address the guard proxy connected to, as take() keeps them.
        responses = list(as_connected(await recorder.finish(), guard))
    resources = [
        WarcResource("urn:watcher:screenshot:7", "image/png", shot or b""),
        WarcResource("urn:watcher:html", "text/html", html.encode("utf-8")),
        WarcResource("urn:watcher:mhtml", "multipart/related", mhtml or b""),
    ]
    return responses, resources


def by_url(responses: list[RecordedResponse]) -> dict[str, RecordedResponse]:
    return {r.url: r for r in responses}


def read_warc(data: bytes) -> list:
    """Every record as (type, headers, http headers, payload)."""
    out = []
    for rec in ArchiveIterator(io.BytesIO(data)):
        out.append((rec.rec_type, rec.rec_headers, rec.http_headers, rec.content_stream().read()))
    return out


INFO = {"operator": "ranger-1", "hostname": "box", "target": "c", "capture": "7"}


async def test_recorder_keeps_every_response_with_address(site, browser):
    url = channel(site)
    responses, _ = await record(browser, url)

    found = by_url(responses)
    assert next(iter(found)) == url  # arrival order: the document first
    page = found[url]
    assert (page.status, page.method, page.remote_ip, page.remote_port) == (
        200,
        "GET",
        "127.0.0.1",
        site.port,
    )
    assert page.body == served(site, "/s/c")
    assert ("Content-Type", "text/html; charset=utf-8") in page.response_headers
    assert page.tls is None and not page.truncated and page.started_at.endswith("Z")
    for key in ("a", "b"):
        assert found[f"{site.base_url}/img/{key}"].body == served(site, f"/img/{key}")


async def test_warc_reads_back_and_passes_warcio_check(site, browser, tmp_path):
    url = channel(site)
    responses, resources = await record(browser, url)
    warc = build_warc(responses, resources, INFO)

    records = read_warc(warc.data)
    kinds = [r[0] for r in records]
    assert kinds[0] == "warcinfo"
    assert b"operator: ranger-1" in records[0][3] and b"software: watcher" in records[0][3]
    payloads = {h.get_header("WARC-Target-URI"): p for t, h, _, p in records if t == "response"}
    assert payloads[url] == served(site, "/s/c")
    assert payloads[f"{site.base_url}/img/a"] == served(site, "/img/a")
    for i, (kind, headers, _, _) in enumerate(records):
        if kind == "response":
            assert headers.get_header("WARC-IP-Address") == "127.0.0.1"
            assert headers.get_header("WARC-Payload-Digest").startswith("sha256:")
            request = records[i + 1]
            assert request[0] == "request"
            assert request[1].get_header("WARC-Concurrent-To") == headers.get_header(
                "WARC-Record-ID"
            )
            assert request[2].protocol == "GET"
    resource_types = {
        h.get_header("WARC-Target-URI"): h.get_header("Content-Type")
        for t, h, _, _ in records
        if t == "resource"
    }
    assert resource_types == {
        "urn:watcher:screenshot:7": "image/png",
        "urn:watcher:html": "text/html",
        "urn:watcher:mhtml": "multipart/related",
    }

    path = tmp_path / "c.warc.gz"
    path.write_bytes(warc.data)
    check = subprocess.run(
        [BIN / "warcio", "check", "-v", path], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout and "failed" not in check.stdout


async def test_cookies_and_credentials_never_reach_the_evidence(site, browser):
    site.route("/login-wall", "<p>hello</p>", headers={"Set-Cookie": "session=SECRET123; Path=/"})

    async def setup(ctx):
        cookie = {"name": "sid", "value": "SECRET123", "domain": "127.0.0.1", "path": "/"}
        await ctx.add_cookies([cookie])
        await ctx.set_extra_http_headers({"Authorization": "Bearer SECRET123"})

    url = f"{site.base_url}/login-wall"
    responses, resources = await record(browser, url, setup=setup)

    seen = by_url(responses)[url]
    assert "SECRET123" in seen.request_headers["cookie"]  # the browser did send it...
    warc = build_warc(responses, resources, INFO)
    wacz = build_wacz(warc, "c.warc.gz", url, "wall", CREATED)
    for blob in (warc.data, gzip.decompress(warc.data), wacz):
        assert b"SECRET123" not in blob  # ...and it went nowhere
    plain = gzip.decompress(warc.data)
    assert b"Set-Cookie: [redacted]" in plain
    assert b"\r\nCookie:" not in plain and b"Authorization" not in plain


async def test_wacz_validates_and_indexes_like_cdxj_indexer(site, browser, tmp_path):
    url = channel(site)
    responses, resources = await record(browser, url)
    warc = build_warc(responses, resources, INFO)
    wacz = build_wacz(warc, "capture-7.warc.gz", url, "c – Telegram", CREATED)

    path = tmp_path / "capture-7.wacz"
    path.write_bytes(wacz)
    result = subprocess.run(
        [BIN / "wacz", "validate", "-f", path], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout

    with zipfile.ZipFile(path) as archive:
        assert archive.read("archive/capture-7.warc.gz") == warc.data
        assert archive.getinfo("archive/capture-7.warc.gz").compress_type == zipfile.ZIP_STORED
        header, page = (json.loads(x) for x in archive.read("pages/pages.jsonl").splitlines())
        package = json.loads(archive.read("datapackage.json"))
        index = archive.read("indexes/index.cdx").decode().splitlines()
    assert header == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    assert page["url"] == url and page["title"] == "c – Telegram"
    assert page["ts"] == by_url(responses)[url].started_at
    assert package["mainPageUrl"] == url and package["wacz_version"] == "1.1.1"
    assert index == sorted(index)

    # The reference indexer (py-wacz's own) must agree on every key, offset and digest.
    reference = io.StringIO()
    warcs = [io.BytesIO(warc.data)]
    indexer = CDXJIndexer(
        reference, warcs, records="response,resource", filename="capture-7.warc.gz"
    )
    indexer.process_all()
    ours = {_without(line, "recordDigest") for line in index}
    assert ours == {_without(line, "") for line in reference.getvalue().splitlines()}
    # recordDigest (which the reference does not write) is the digest of the record's bytes.
    for line in index:
        fields = json.loads(line.split(" ", 2)[2])
        start, length = int(fields["offset"]), int(fields["length"])
        member = warc.data[start : start + length]
        assert fields["recordDigest"] == "sha256:" + hashlib.sha256(member).hexdigest()


async def test_warc_stores_photos_and_compresses_text(site, browser):
    url = channel(site)
    responses, resources = await record(browser, url)
    warc = build_warc(responses, resources, INFO)

    entries = {e.url: e for e in warc.index}
    photo, page = entries[f"{site.base_url}/img/a"], entries[url]
    body = served(site, "/img/a")
    # A JPEG is stored as it is (deflating it again only costs CPU): the member is its bytes
    # plus headers; the HTML page is compressed.
    assert photo.mime == "image/jpeg" and photo.length > len(body)
    assert body in zlib.decompress(warc.data[photo.offset : photo.offset + photo.length], 31)
    assert body[:1024] in warc.data[photo.offset : photo.offset + photo.length]
    assert page.length < len(served(site, "/s/c"))


async def test_warc_stores_the_screenshot_and_keeps_the_mhtml_whole(site, browser):
    url = channel(site)
    responses, resources = await record(browser, url)
    shot, _, mhtml = (r.data for r in resources)
    warc = build_warc(responses, resources, INFO)

    entries = {e.url: e for e in warc.index}
    member = warc.data[entries["urn:watcher:screenshot:7"].offset :][
        : entries["urn:watcher:screenshot:7"].length
    ]
    # The PNG is already deflated: it is stored as it is, not compressed again.
    assert shot[:4096] in member and len(member) > len(shot)
    snapshot = entries["urn:watcher:mhtml"]
    stored = zlib.decompress(warc.data[snapshot.offset : snapshot.offset + snapshot.length], 31)
    assert stored.endswith(b"\r\n\r\n" + mhtml + b"\r\n\r\n")
    records = {h.get_header("WARC-Target-URI"): (h, body) for _, h, _, body in read_warc(warc.data)}
    headers, body = records["urn:watcher:mhtml"]
    assert headers.get_header("Content-Type") == "multipart/related" and body == mhtml
    assert records["urn:watcher:screenshot:7"][1] == shot


def _mhtml(parts: list[tuple[str, str, bytes]]) -> bytes:
    boundary = b"----MultipartBoundary--x1y2----"
    head = b'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="'
    out = [head + boundary + b'"\r\n\r\n']
    for media_type, encoding, body in parts:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f"Content-Type: {media_type}\r\n".encode())
        out.append(f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode() + body + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def test_mostly_base64_weighs_the_parts():
    photo = base64.encodebytes(bytes(range(256)) * 40)
    text = b"<p>tiger claw pendant</p>\r\n" * 400
    assert mostly_base64(
        _mhtml([("text/html", "quoted-printable", text)] + [("image/jpeg", "base64", photo)] * 3)
    )
    assert not mostly_base64(
        _mhtml([("text/html", "quoted-printable", text * 4), ("image/jpeg", "base64", photo)])
    )
    assert not mostly_base64(_mhtml([("text/html", "quoted-printable", text)]))
    # Not MHTML at all, or no boundary in its head: never the photo strategy.
    assert not mostly_base64(photo)
    assert not mostly_base64(b"")


def _without(line: str, field: str) -> tuple[str, str, str]:
    key, ts, fields = line.split(" ", 2)
    data = json.loads(fields)
    data.pop(field, None)
    return key, ts, json.dumps(data, sort_keys=True)


async def test_wacz_is_byte_identical_for_identical_inputs(site, browser):
    url = channel(site)
    responses, resources = await record(browser, url)
    warc = build_warc(responses, resources, INFO)

    first = build_wacz(warc, "c.warc.gz", url, "c", CREATED)
    assert build_wacz(warc, "c.warc.gz", url, "c", CREATED) == first
    assert build_wacz(warc, "c.warc.gz", url, "c", "2026-11-24T00:00:00Z") != first


async def test_mhtml_snapshot_holds_the_post(site, browser):
    url = channel(site)
    _, resources = await record(browser, url)
    message = email.message_from_bytes(resources[2].data)
    assert message.get_content_type() == "multipart/related"
    assert message["Snapshot-Content-Location"] == url
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert b"tiger claw pendant" in html.get_payload(decode=True)


async def test_bodies_over_the_limits_are_left_out_and_flagged(site, browser):
    url = channel(site)
    page_size = len(served(site, "/s/c"))

    # Per-body limit: the photos (~20 kB) declare a Content-Length over it.
    small = ResponseRecorder(max_body_bytes=page_size + 100)
    responses, resources = await record(browser, url, small)
    found = by_url(responses)
    assert found[url].body == served(site, "/s/c") and not found[url].truncated
    photo = found[f"{site.base_url}/img/a"]
    assert photo.truncated and photo.body == b"" and photo.truncated_reason == "length"
    warc = build_warc(responses, resources, INFO)
    truncated = [
        h.get_header("WARC-Target-URI")
        for t, h, _, _ in read_warc(warc.data)
        if t == "response" and h.get_header("WARC-Truncated") == "length"
    ]
    assert sorted(truncated) == [f"{site.base_url}/img/a", f"{site.base_url}/img/b"]

    # Total limit: the page fits, then nothing more does.
    capped = ResponseRecorder(max_total_bytes=page_size + 100)
    found = by_url((await record(browser, url, capped))[0])
    assert not found[url].truncated
    assert all(found[f"{site.base_url}/img/{k}"].truncated for k in ("a", "b"))


async def test_redirects_recorded_and_data_urls_ignored(site, browser):
    site.channel("c")
    site.route("/old", status=302, headers={"Location": "/s/c"})
    site.route("/inline", '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">')
    responses, resources = await record(browser, f"{site.base_url}/old")

    found = by_url(responses)
    hop = found[f"{site.base_url}/old"]
    assert hop.status == 302 and hop.body == b"" and not hop.truncated
    assert ("Location", "/s/c") in hop.response_headers
    assert found[f"{site.base_url}/s/c"].status == 200
    warc = build_warc(responses, resources, INFO)
    assert any(h and h.get_statuscode() == "302" for _, _, h, _ in read_warc(warc.data))

    inline, _ = await record(browser, f"{site.base_url}/inline")
    assert [r.url for r in inline] == [f"{site.base_url}/inline"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/s/c?b=2&a=1",
        "https://www.Example.com/A/b?Z=1&a=2#frag",
        "https://example.com:443/x",
        "http://www2.example.org:8443/p?a&b=",
        "urn:watcher:screenshot:abc",
    ],
)
def test_surt_matches_the_surt_package(url):
    assert surt(url) == surt_package.surt(url)


def test_build_wacz_rejects_unsafe_names():
    with pytest.raises(ValueError, match=r"\.warc\.gz"):
        build_wacz(Warc(b"", ()), "../evil.warc.gz", "http://x/", "t", CREATED)


class FakeRequest:
    def __init__(self) -> None:
        self.method, self.post_data_buffer = "POST", b"q=ivory"
        self.timing = {"startTime": 1_795_000_000_000.0}

    async def all_headers(self):
        return {":authority": "shop.example", "content-type": "application/x-www-form-urlencoded"}


class FakeResponse:
    """Just enough of Playwright's Response; ``body`` never ends or ``headers_array`` fails."""

    def __init__(self, url: str, fail: bool = False) -> None:
        self.url, self.fail = url, fail
        self.request, self.status, self.status_text = FakeRequest(), 200, ""
        self.headers = {"content-type": "text/plain"}

    async def headers_array(self):
        if self.fail:
            raise PlaywrightError("Target page, context or browser has been closed")
        return [{"name": "Content-Type", "value": "text/plain"}]

    async def server_addr(self):
        return {"ipAddress": "203.0.113.9", "port": 443}

    async def security_details(self):
        return {"protocol": "TLS 1.3", "issuer": "Test CA", "subjectName": "shop.example"}

    async def body(self):
        await asyncio.sleep(3600)


async def test_finish_is_bounded_and_one_failure_costs_one_response(monkeypatch):
    monkeypatch.setattr(archive, "FINISH_TIMEOUT_S", 0.2)
    recorder = ResponseRecorder()
    recorder._on_response(FakeResponse("https://shop.example/stream"))
    recorder._on_response(FakeResponse("https://shop.example/broken", fail=True))
    recorder._on_response(FakeResponse("data:text/plain,hi"))

    (kept,) = await asyncio.wait_for(recorder.finish(), timeout=5)

    assert kept.url == "https://shop.example/stream"
    assert kept.truncated and kept.truncated_reason == "time" and kept.body == b""
    assert (kept.method, kept.status_text, kept.request_body) == ("POST", "OK", b"q=ivory")
    assert kept.started_at == "2026-11-18T11:06:40.000Z"  # from the request timing


def test_tls_details_go_into_a_metadata_record():
    tls = {"protocol": "TLS 1.3", "issuer": "Test CA", "subjectName": "shop.example"}
    response = RecordedResponse(
        url="https://shop.example/item?id=1",
        method="POST",
        status=200,
        status_text="OK",
        request_headers={":authority": "shop.example", "authorization": "Basic SECRET123"},
        response_headers=[("Content-Encoding", "gzip"), ("Set-Cookie", "a=SECRET123")],
        body=b"decoded body",
        remote_ip="203.0.113.9",
        remote_port=443,
        tls=tls,
        http_version="HTTP/1.1",
        truncated=False,
        started_at="2026-11-23T00:00:00.000Z",
        request_body=b"q=ivory",
    )
    warc = build_warc([response], [], {"capture": "9", "ended": "2026-11-23T00:00:05Z"})

    kinds, rest = zip(*[(t, (h, http, p)) for t, h, http, p in read_warc(warc.data)], strict=True)
    assert kinds == ("warcinfo", "response", "request", "metadata")
    (_, http, body), (_, req, req_body), (meta, _, data) = rest[1:]
    assert body == b"decoded body"
    # The body is stored decoded, so it must not claim to be gzip any more.
    assert http.get_header("Content-Encoding") is None
    assert http.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
    assert (req.protocol, req.statusline, req.get_header("Host")) == (
        "POST",
        "/item?id=1 HTTP/1.1",
        "shop.example",
    )
    assert req_body == b"q=ivory"
    assert meta.get_header("Content-Type") == "application/json"
    assert json.loads(data) == {"remote_ip": "203.0.113.9", "remote_port": 443, "tls": tls}
    assert b"SECRET123" not in gzip.decompress(warc.data)
