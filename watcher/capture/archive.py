"""The web-archive part of a capture: every response the browser saw, as a WARC and a WACZ.

:class:`ResponseRecorder` listens to a Playwright page and keeps each response (status,
headers, body, remote address, TLS details). :func:`build_warc` writes them, with the
screenshot, rendered HTML and MHTML snapshot as resource records, into a gzipped WARC/1.1;
:func:`build_wacz` packages that WARC with a CDXJ index and a page list as a WACZ 1.1.1 that
ReplayWeb.page replays. Secrets (cookies, credentials) are removed before anything is written,
because evidence is shared and session cookies would let a reader act as the investigator.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote, quote_plus, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import iso_date_to_timestamp
from warcio.warcwriter import WARCWriter

from watcher import __version__
from watcher.capture.guardproxy import GUARD_HEADER
from watcher.capture.netguard import NetworkGuard
from watcher.timeutil import parse_iso, to_iso, utc_now

log = logging.getLogger(__name__)

FINISH_TIMEOUT_S = 10.0
WACZ_VERSION = "1.1.1"
SOFTWARE = f"watcher {__version__}"
REDACTED = "[redacted]"

# Request headers that carry credentials: dropped. Response cookies: value replaced, so the
# record still shows that the site set one.
_SECRET_REQUEST_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
_SECRET_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
_IGNORED_SCHEMES = ("data:", "blob:")
# Cookie values shorter than this ("1", "en", "true") are not secrets, and replacing them
# everywhere would deface the record.
MIN_SECRET_CHARS = 8
_NO_BODY_STATUSES = frozenset({204, 304})
_WARC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.warc\.gz$")


@dataclass(frozen=True)
class RecordedResponse:
    """One response the page received, as it goes into the WARC."""

    url: str
    method: str
    status: int
    status_text: str
    request_headers: dict[str, str]
    response_headers: list[tuple[str, str]]
    body: bytes
    remote_ip: str | None
    remote_port: int | None
    tls: dict[str, Any] | None
    http_version: str
    truncated: bool
    started_at: str  # UTC ISO
    request_body: bytes = b""
    # WARC-Truncated reason when ``truncated``: "length" (over a limit), "time" (body not read
    # in time) or "unspecified" (the browser could not give the body).
    truncated_reason: str = ""


@dataclass(frozen=True)
class WarcResource:
    """A file made by the capture itself (screenshot, HTML, MHTML), stored as a resource."""

    uri: str
    content_type: str
    data: bytes


@dataclass
class _Slot:
    """A response being recorded; filled in as Playwright answers."""

    url: str
    method: str = "GET"
    status: int = 0
    status_text: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    remote_ip: str | None = None
    remote_port: int | None = None
    tls: dict[str, Any] | None = None
    started_at: str = ""
    request_body: bytes = b""
    truncated_reason: str = ""
    has_metadata: bool = False
    done: bool = False

    def freeze(self) -> RecordedResponse:
        reason = self.truncated_reason or ("" if self.done else "time")
        return RecordedResponse(
            url=self.url,
            method=self.method,
            status=self.status,
            status_text=self.status_text,
            request_headers=dict(self.request_headers),
            response_headers=list(self.response_headers),
            body=self.body if not reason else b"",
            remote_ip=self.remote_ip,
            remote_port=self.remote_port,
            tls=self.tls,
            http_version="HTTP/1.1",
            truncated=bool(reason),
            started_at=self.started_at,
            request_body=self.request_body,
            truncated_reason=reason,
        )


class ResponseRecorder:
    """Attach to a Playwright page before navigation; collects every response."""

    def __init__(
        self, max_body_bytes: int = 50 * 1024 * 1024, max_total_bytes: int = 200 * 1024 * 1024
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_total_bytes = max_total_bytes
        self._slots: list[_Slot] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._kept_bytes = 0
        self._pages: list[Page] = []
        self._closed = False

    def attach(self, page: Page) -> None:
        """Start recording ``page``'s responses (call before ``page.goto``)."""
        page.on("response", self._on_response)
        self._pages.append(page)

    async def finish(self) -> list[RecordedResponse]:
        """Wait (at most 10 s in all) for body reads; return the responses in arrival order.

        A body still unread at the deadline is left out and its response flagged truncated
        ("time"), so a page that streams forever cannot hold the capture.
        """
        self._closed = True
        for page in self._pages:
            with contextlib.suppress(KeyError, ValueError):  # already removed
                page.remove_listener("response", self._on_response)
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=FINISH_TIMEOUT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        return [slot.freeze() for slot in self._slots if slot.has_metadata]

    def _on_response(self, response: Response) -> None:
        if self._closed or response.url.startswith(_IGNORED_SCHEMES):
            return
        slot = _Slot(url=response.url, started_at=utc_now())
        self._slots.append(slot)  # arrival order, whatever order the bodies finish in
        task = asyncio.get_running_loop().create_task(self._record(response, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, response: Response, slot: _Slot) -> None:
        # One response's failure (page closed, body evicted) must never break the capture.
        try:
            await _read_metadata(response, slot)
            slot.has_metadata = True
            await self._read_body(response, slot)
        except PlaywrightError as exc:
            log.debug("could not record %s: %s", slot.url, exc.message)
            slot.truncated_reason = slot.truncated_reason or "unspecified"
        except Exception:  # a bug here must cost one response, not the capture
            log.exception("recording %s failed", slot.url)
            slot.truncated_reason = slot.truncated_reason or "unspecified"
        slot.done = True

    async def _read_body(self, response: Response, slot: _Slot) -> None:
        if 300 <= slot.status < 400 or slot.status in _NO_BODY_STATUSES:
            return  # redirects and 304s have no body for the browser to give
        declared = _declared_length(response.headers)
        if declared is not None and declared > self.max_body_bytes:
            slot.truncated_reason = "length"
            return
        try:
            body = await response.body()
        except PlaywrightError as exc:
            log.debug("no body for %s: %s", slot.url, exc.message)
            slot.truncated_reason = "unspecified"
            return
        if len(body) > self.max_body_bytes or self._kept_bytes + len(body) > self.max_total_bytes:
            slot.truncated_reason = "length"
            return
        self._kept_bytes += len(body)
        slot.body = body


async def _read_metadata(response: Response, slot: _Slot) -> None:
    """Status, headers, address and TLS of ``response`` into ``slot``."""
    request = response.request
    slot.method = request.method
    slot.status = response.status
    slot.status_text = response.status_text or _reason_phrase(response.status)
    slot.started_at = _request_start(request.timing) or slot.started_at
    slot.request_body = request.post_data_buffer or b""
    slot.request_headers = await request.all_headers()
    slot.response_headers = [(h["name"], h["value"]) for h in await response.headers_array()]
    address = await response.server_addr()
    if address:
        slot.remote_ip = address.get("ipAddress") or None
        slot.remote_port = address.get("port") or None
    details = await response.security_details()
    slot.tls = dict(details) if details else None


def _request_start(timing: dict[str, float]) -> str | None:
    """The request's start (epoch ms in Playwright's timing) as UTC ISO, when known."""
    start = timing.get("startTime", -1) if timing else -1
    if start <= 0:
        return None
    return to_iso(datetime.fromtimestamp(start / 1000, UTC))


def _declared_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.strip().isdigit() else None


def _reason_phrase(status: int) -> str:
    # HTTP/2 has no reason phrase; the WARC's HTTP/1.1 status line wants one.
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def mhtml_snapshot(page: Page) -> bytes | None:
    """The page as one MHTML file (CDP ``Page.captureSnapshot``); None if Chromium refuses."""
    try:
        session = await page.context.new_cdp_session(page)
    except PlaywrightError as exc:
        log.debug("no CDP session for the MHTML snapshot: %s", exc.message)
        return None
    try:
        result = await session.send("Page.captureSnapshot", {"format": "mhtml"})
        data = result.get("data") if isinstance(result, dict) else None
        return data.encode("utf-8") if data else None
    except PlaywrightError as exc:
        log.debug("MHTML snapshot failed: %s", exc.message)
        return None
    finally:
        with contextlib.suppress(PlaywrightError):
            await session.detach()


# -- WARC ------------------------------------------------------------------------------------
class _Sha256Digester:
    """warcio's digester interface, as ``sha256:<hex>`` (the WACZ convention; warcio checks it)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, buff: bytes) -> None:
        self._hash.update(buff)

    def __str__(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _GzipMember:
    """One gzip member per record, as warcio writes them, deflated as suits the body.

    A capture's WARC is mostly JPEG and PNG bodies that do not compress: warcio's level 9
    took 1.15 s for 200 photos against 0.18 s at level 1 for the same size (ratio 0.984 vs
    0.983), and level 0 (stored blocks: a CRC and a copy) takes almost nothing for 1.6 % more
    (benchmarks/profile_capture.py). HTML, scripts and headers still compress, at level 1.
    """

    def __init__(self, out: io.BytesIO, deflate: tuple[int, int]) -> None:
        level, strategy = deflate
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16, 8, strategy)
        self.out = out

    def write(self, buff: bytes) -> None:
        self.out.write(self.compressor.compress(buff))

    def flush(self) -> None:
        self.out.write(self.compressor.flush())


# Media types whose bodies are already compressed: deflating them again only costs CPU.
_COMPRESSED_TYPES = re.compile(
    r"^(?:image/(?!svg|bmp|x-icon|vnd\.microsoft\.icon)|video/|audio/|font/woff|"
    r"application/(?:zip|gzip|x-gzip))"
)
_STORED = (0, zlib.Z_DEFAULT_STRATEGY)
_HUFFMAN_ONLY = (1, zlib.Z_HUFFMAN_ONLY)
_LEVEL_1 = (1, zlib.Z_DEFAULT_STRATEGY)


def _deflate_params(record: Any) -> tuple[int, int]:
    """(level, strategy) for a record's gzip member: stored when its body is already
    compressed; Huffman coding alone for an MHTML snapshot that is mostly base64 (its
    photos); else level 1.

    LZ77 finds almost nothing to match in base64 of JPEGs, so Huffman coding alone gives
    about the same size (a 9.3 MB snapshot of 200 photos: 7.01 MB against 6.95 at level 1)
    in a third of the time (117 ms against 379).
    """
    mime = _mime(_content_type(record)).lower()
    if _COMPRESSED_TYPES.match(mime):
        return _STORED
    if mime == "multipart/related" and mostly_base64(record.raw_stream.getvalue()):
        return _HUFFMAN_ONLY
    return _LEVEL_1


def _content_type(record: Any) -> str | None:
    """The body's media type: the HTTP header of a response; else the record's own, which
    warcio keeps aside until it writes the headers."""
    if record.rec_type == "response":
        return record.http_headers.get_header("Content-Type") if record.http_headers else None
    return record.content_type or record.rec_headers.get_header("Content-Type")


_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)', re.IGNORECASE)
_BASE64_PART = re.compile(rb"content-transfer-encoding:[ \t]*base64", re.IGNORECASE)


def mostly_base64(mhtml: bytes) -> bool:
    """Whether more than half of an MHTML (MIME multipart) document is base64 parts."""
    found = _BOUNDARY.search(mhtml, 0, 4096)
    if found is None:
        return False
    marker = b"--" + found.group(1)
    in_base64 = 0
    start = mhtml.find(marker)
    while start != -1:
        end = mhtml.find(marker, start + len(marker))
        stop = len(mhtml) if end == -1 else end
        # A part's headers come first; 1 KiB holds them (Content-Location can be long).
        if _BASE64_PART.search(mhtml, start, min(stop, start + 1024)):
            in_base64 += stop - start
        start = end
    return in_base64 * 2 > len(mhtml)


@dataclass(frozen=True)
class PayloadOrigin:
    """Where a payload is already archived: the record a revisit refers to.

    ``target_uri`` and ``date`` (a WARC-Date) name the original response (or, for a payload
    the blob store holds as a capture's image or screenshot, the file's source and time);
    ``record_id`` is the original WARC record's id when there is one.
    """

    target_uri: str
    date: str
    record_id: str | None = None


# The WARC 1.1 profile of a record that stands for a payload archived before.
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
REVISIT_MIME = "warc/revisit"  # what CDXJ indexes say of a revisit (pywb, ReplayWeb.page)


@dataclass(frozen=True)
class IndexEntry:
    """What the CDXJ index says of one response or resource record of a WARC."""

    rec_type: str
    url: str
    date: str
    mime: str
    status: str | None
    digest: str  # sha256:<hex> of the payload
    offset: int  # of the record's gzip member in the WARC file
    length: int
    record_digest: str  # sha256:<hex> of that gzip member
    record_id: str = ""  # WARC-Record-ID


@dataclass(frozen=True)
class Warc:
    """A gzipped WARC file and the index entries of its records, taken as they were written
    (reading 200 photos back out of the WARC to index them cost a fifth of the archiving)."""

    data: bytes
    index: tuple[IndexEntry, ...]


class _Sha256WARCWriter(WARCWriter):
    """warcio writes SHA-1 digests; evidence elsewhere in watcher is SHA-256. Built with
    ``gzip=False`` so that each record is gzipped here, by :class:`_GzipMember`, and indexed
    as it is written."""

    def __init__(self, out: io.BytesIO) -> None:
        super().__init__(out, gzip=False, warc_version="WARC/1.1")
        self.index: list[IndexEntry] = []

    @staticmethod
    def _create_digester() -> _Sha256Digester:  # type: ignore[override]
        return _Sha256Digester()

    def write_record(self, record: Any, params: Any = None) -> None:
        start = self.out.tell()
        self._write_warc_record(_GzipMember(self.out, _deflate_params(record)), record)
        if record.rec_type in ("response", "resource", "revisit"):
            member = self.out.getbuffer()[start:]
            self.index.append(_index_entry(record, start, member))
            member.release()


def _index_entry(record: Any, offset: int, member: memoryview) -> IndexEntry:
    headers = record.rec_headers
    http = record.http_headers if record.rec_type in ("response", "revisit") else None
    mime = _mime((http or headers).get_header("Content-Type") if http or headers else None)
    return IndexEntry(
        rec_type=record.rec_type,
        url=headers.get_header("WARC-Target-URI"),
        date=headers.get_header("WARC-Date"),
        mime=REVISIT_MIME if record.rec_type == "revisit" else mime,
        status=http.get_statuscode() if http else None,
        digest=headers.get_header("WARC-Payload-Digest"),
        offset=offset,
        length=len(member),
        record_digest="sha256:" + hashlib.sha256(member).hexdigest(),
        record_id=headers.get_header("WARC-Record-ID") or "",
    )


class _Scrubber:
    """Replaces secret values (cookie values) in request lines, headers and bodies, also
    percent-encoded, as a page's script sends them (``x-csrftoken``, a form field)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_SECRET_CHARS:
                forms |= {value, quote(value, safe=""), quote_plus(value), quote(value)}
        # Longest first: a value that contains another is replaced whole.
        self.texts = sorted(forms, key=len, reverse=True)
        self.raw = [form.encode("utf-8") for form in self.texts]

    def text(self, text: str) -> str:
        for form in self.texts:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def body(self, data: bytes) -> bytes:
        for form in self.raw:
            if form in data:
                data = data.replace(form, REDACTED.encode())
        return data

    def response(self, response: RecordedResponse) -> RecordedResponse:
        """``response`` with secrets out of its URL and everything it sent."""
        if not self.texts:
            return response
        return replace(
            response,
            url=self.text(response.url),
            request_headers={k: self.text(v) for k, v in response.request_headers.items()},
            request_body=self.body(response.request_body),
        )


def build_warc(
    responses: list[RecordedResponse],
    resources: list[WarcResource],
    info: dict[str, str],
    secret_values: Iterable[str] = (),
    archived: Mapping[str, PayloadOrigin] | None = None,
) -> Warc:
    """A gzipped WARC/1.1 of the capture: warcinfo, then response/request(/metadata) per
    response, then one resource record per :class:`WarcResource`.

    ``info`` (operator, hostname, target, capture id, started, ended, ...) goes into the
    warcinfo record. Cookies and credentials never reach the output: cookie and login
    headers are dropped, and ``secret_values`` (the capture's cookie values) are replaced
    wherever a request carried them (URL, any header, body).

    A response or resource whose payload digest is in ``archived`` (``sha256:<hex>`` → where
    it is already kept) is written as a ``revisit`` record (WARC 1.1 identical-payload-digest:
    its own status and headers, no second copy of the body); an export puts the payload back.
    """
    scrub = _Scrubber(secret_values)
    archived = archived or {}
    out = io.BytesIO()
    writer = _Sha256WARCWriter(out)
    writer.write_record(_warcinfo_record(writer, info))
    for response in responses:
        for record in _exchange_records(writer, scrub.response(response), archived):
            writer.write_record(record)
    resource_date = _warc_date(info.get("ended")) or writer.curr_warc_date()
    for resource in resources:
        writer.write_record(_resource_record(writer, resource, resource_date, archived))
    return Warc(out.getvalue(), tuple(writer.index))


def payload_digest(body: bytes) -> str:
    """A payload's WARC-Payload-Digest as watcher writes it (``sha256:<hex>``)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _revisit_record(
    writer: WARCWriter,
    uri: str,
    digest: str,
    origin: PayloadOrigin,
    warc_headers: dict[str, str],
    http_headers: StatusAndHeaders | None,
) -> Any:
    """A revisit record for ``uri`` whose payload ``origin`` already holds."""
    record = writer.create_revisit_record(
        uri, digest, origin.target_uri, origin.date, http_headers, warc_headers
    )
    if origin.record_id:
        record.rec_headers.add_header("WARC-Refers-To", origin.record_id)
    if http_headers is None:  # a resource's revisit has an empty block: no type to state
        record.rec_headers.remove_header("Content-Type")
        record.content_type = None  # else warcio writes it back
    return record


def _warcinfo_record(writer: WARCWriter, info: dict[str, str]) -> Any:
    fields = {
        "software": SOFTWARE,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
    }
    fields.update({_one_line(k): _one_line(str(v)) for k, v in info.items() if v is not None})
    record = writer.create_warcinfo_record(None, fields)
    started = _warc_date(info.get("started"))
    if started:
        record.rec_headers.replace_header("WARC-Date", started)
    return record


def _exchange_records(
    writer: WARCWriter, response: RecordedResponse, archived: Mapping[str, PayloadOrigin]
) -> Iterator[Any]:
    """The response (or revisit) record, its request record and (when known) its connection
    metadata."""
    date = _warc_date(response.started_at) or writer.curr_warc_date()
    warc_headers = {"WARC-Date": date}
    if response.remote_ip:
        warc_headers["WARC-IP-Address"] = response.remote_ip
    if response.truncated:
        warc_headers["WARC-Truncated"] = response.truncated_reason or "length"
    http_headers = StatusAndHeaders(
        f"{response.status} {_one_line(response.status_text)}",
        _response_headers(response),
        protocol="HTTP/1.1",
    )
    digest = payload_digest(response.body) if response.body and not response.truncated else ""
    origin = archived.get(digest) if digest else None
    if origin is not None:
        resp = _revisit_record(writer, response.url, digest, origin, warc_headers, http_headers)
    else:
        resp = writer.create_warc_record(
            response.url,
            "response",
            payload=io.BytesIO(response.body),
            length=len(response.body),
            warc_headers_dict=warc_headers,
            http_headers=http_headers,
        )
    yield resp
    resp_id = resp.rec_headers.get_header("WARC-Record-ID")
    yield writer.create_warc_record(
        response.url,
        "request",
        payload=io.BytesIO(response.request_body),
        length=len(response.request_body),
        warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": resp_id},
        http_headers=StatusAndHeaders(
            f"{response.method} {_request_target(response.url)} HTTP/1.1",
            _request_headers(response),
            is_http_request=True,
        ),
    )
    if response.tls or response.remote_port is not None:
        connection = {
            "remote_ip": response.remote_ip,
            "remote_port": response.remote_port,
            "tls": response.tls,
        }
        data = json.dumps(connection, sort_keys=True, ensure_ascii=False).encode("utf-8")
        yield writer.create_warc_record(
            response.url,
            "metadata",
            payload=io.BytesIO(data),
            length=len(data),
            warc_content_type="application/json",
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": resp_id},
        )


def _resource_record(
    writer: WARCWriter, resource: WarcResource, date: str, archived: Mapping[str, PayloadOrigin]
) -> Any:
    digest = payload_digest(resource.data) if resource.data else ""
    origin = archived.get(digest) if digest else None
    if origin is not None:
        return _revisit_record(writer, resource.uri, digest, origin, {"WARC-Date": date}, None)
    return writer.create_warc_record(
        resource.uri,
        "resource",
        payload=io.BytesIO(resource.data),
        length=len(resource.data),
        warc_content_type=resource.content_type,
        warc_headers_dict={"WARC-Date": date},
    )


def _response_headers(response: RecordedResponse) -> list[tuple[str, str]]:
    """Response headers fit for the stored body, with cookies redacted.

    Playwright hands over the body already de-chunked and decompressed (and empty when it
    was not kept), so headers saying otherwise would make replay tools decode or wait for
    bytes that are not there; the originals stay under ``X-Archive-Orig-`` names (the pywb
    convention).
    """
    length = str(len(response.body))
    headers: list[tuple[str, str]] = []
    for name, value in response.response_headers:
        lower = name.lower()
        if lower.startswith(":"):  # HTTP/2 pseudo-headers are not headers
            continue
        if lower in _SECRET_RESPONSE_HEADERS:
            value = REDACTED
        elif lower in ("transfer-encoding", "content-encoding") or (
            lower == "content-length" and value.strip() != length
        ):
            name = f"X-Archive-Orig-{name}"
        headers.append((_one_line(name), _one_line(value)))
    if not any(name.lower() == "content-length" for name, _ in headers):
        headers.append(("Content-Length", length))
    return headers


def _request_headers(response: RecordedResponse) -> list[tuple[str, str]]:
    """Request headers without credentials; HTTP/2 ``:authority`` becomes ``Host``."""
    headers: list[tuple[str, str]] = []
    host = None
    for name, value in response.request_headers.items():
        lower = name.lower()
        if lower == ":authority":
            host = value
        if lower.startswith(":") or lower in _SECRET_REQUEST_HEADERS:
            continue
        headers.append((_one_line(name), _one_line(value)))
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", host or urlsplit(response.url).netloc))
    return headers


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _one_line(text: str) -> str:
    # A hostile server must not be able to inject WARC or HTTP header lines.
    return text.replace("\r", " ").replace("\n", " ")


def _warc_date(value: str | None) -> str | None:
    """A WARC-Date (UTC ISO with ``Z``) from our ISO times; None when unreadable."""
    moment = parse_iso(value) if value else None
    return to_iso(moment) if moment else None


# -- WACZ ------------------------------------------------------------------------------------
class WaczSigner(Protocol):
    """What signs a WACZ (``watcher.store.keys.WaczSigningKey``)."""

    def signed_data(self, digest: str, created: str, software: str) -> dict[str, str]:
        """The ``signedData`` object of ``datapackage-digest.json`` for that digest."""
        ...


def build_wacz(
    warc: Warc,
    warc_name: str,
    main_url: str,
    title: str,
    created: str,
    signer: WaczSigner | None = None,
) -> bytes:
    """A WACZ 1.1.1 of one WARC: archive, CDXJ index, page list, datapackage and its digest.

    With ``signer``, the digest carries a ``signedData`` (WACZ Signing and Verification
    0.1.0, anonymous form) whose ``created`` is the datapackage's, as py-wacz checks. The
    same inputs give the same bytes (zip times come from ``created``; the signature is
    deterministic), so identical captures share one blob.
    """
    if not _WARC_NAME.match(warc_name):
        raise ValueError(f"WARC name {warc_name!r} must be a plain file name ending in .warc.gz")
    created_at = parse_iso(created)
    if created_at is None:
        raise ValueError(f"created time {created!r} is not an ISO-8601 time")
    page_date = _page_date(warc.index, main_url) or to_iso(created_at)
    pages = _pages_jsonl(main_url, title, page_date)
    index = cdxj_lines(warc.index, warc_name)
    return package_wacz(
        [(warc_name, warc.data)], index, pages, main_url, title, created, page_date, signer
    )


def package_wacz(
    warcs: list[tuple[str, bytes]],
    index_lines: list[str],
    pages: bytes,
    main_url: str,
    title: str,
    created: str,
    page_date: str,
    signer: WaczSigner | None = None,
) -> bytes:
    """A WACZ 1.1.1 of WARC files (name, gzipped bytes) with their CDXJ lines and page list;
    signed (WACZ Signing and Verification, anonymous form) when given a ``signer``."""
    created_at = parse_iso(created)
    if created_at is None:
        raise ValueError(f"created time {created!r} is not an ISO-8601 time")
    for name, _ in warcs:
        if not _WARC_NAME.match(name):
            raise ValueError(f"WARC name {name!r} must be a plain file name ending in .warc.gz")
    files = [(f"archive/{name}", data, zipfile.ZIP_STORED) for name, data in warcs]
    files += [
        ("indexes/index.cdx", "".join(sorted(index_lines)).encode("utf-8"), zipfile.ZIP_DEFLATED),
        ("pages/pages.jsonl", pages, zipfile.ZIP_DEFLATED),
    ]
    package = _datapackage(files, main_url, title, created_at, page_date)
    digest: dict[str, object] = {"path": "datapackage.json", "hash": _sha256(package)}
    if signer is not None:
        digest["signedData"] = signer.signed_data(_sha256(package), to_iso(created_at), SOFTWARE)
    files.append(("datapackage.json", package, zipfile.ZIP_DEFLATED))
    files.append(("datapackage-digest.json", _json_bytes(digest), zipfile.ZIP_DEFLATED))
    return _zip(files, created_at)


def write_warc(records: Callable[[WARCWriter], Iterable[Any]]) -> Warc:
    """A gzipped WARC/1.1 (SHA-256 digests, indexed as written) of the records that
    ``records`` makes with the writer it is given."""
    out = io.BytesIO()
    writer = _Sha256WARCWriter(out)
    for record in records(writer):
        writer.write_record(record)
    return Warc(out.getvalue(), tuple(writer.index))


def cdxj_lines(entries: Iterable[IndexEntry], warc_name: str) -> list[str]:
    """Sorted CDXJ lines (``<surt> <14-digit time> <json>``), as ReplayWeb.page reads them."""
    lines = []
    for entry in entries:
        fields = {
            "url": entry.url,
            "mime": entry.mime,
            "status": entry.status,
            "digest": entry.digest,
            "length": str(entry.length),
            "offset": str(entry.offset),
            "filename": warc_name,
            "recordDigest": entry.record_digest,
        }
        fields = {k: v for k, v in fields.items() if v}
        lines.append(
            f"{surt(entry.url)} {iso_date_to_timestamp(entry.date)} {json.dumps(fields)}\n"
        )
    return sorted(lines)


def surt(url: str) -> str:
    """Sort-friendly URI Reordering Transform, close to the ``surt`` package for web URLs.

    ``https://www.Example.com:443/A?b=2&a=1#x`` → ``com,example)/a?a=1&b=2``; non-HTTP URIs
    (``urn:...``) are left as they are. Replay looks records up by their ``url`` field, so
    this key only has to sort consistently.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url
    host = re.sub(r"^www\d*\.", "", parts.hostname.lower().rstrip("."))
    key = ",".join(reversed(host.split(".")))
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the URL as its own key
        return url
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        key += f":{port}"
    path = (parts.path or "/").lower()
    query = parts.query.lower()
    if query:
        pairs = sorted(tuple(arg.split("=", 1)) for arg in query.split("&"))
        path += "?" + "&".join("=".join(pair) for pair in pairs)
    return f"{key}){path}"


def _mime(content_type: str | None) -> str:
    return re.split(r"[;\s]", content_type or "", maxsplit=1)[0].strip()


def _page_date(entries: Iterable[IndexEntry], main_url: str) -> str | None:
    """When the main page was fetched: the first response record for it."""
    for entry in entries:
        if entry.rec_type in ("response", "revisit") and entry.url == main_url:
            return entry.date
    return None


def _pages_jsonl(main_url: str, title: str, ts: str) -> bytes:
    header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    page_id = hashlib.sha256(f"{ts} {main_url}".encode()).hexdigest()[:32]
    page = {"id": page_id, "url": main_url, "ts": ts, "title": title}
    return b"".join(_json_bytes(line, indent=None) + b"\n" for line in (header, page))


def _datapackage(
    files: list[tuple[str, bytes, int]],
    main_url: str,
    title: str,
    created_at: datetime,
    page_date: str,
) -> bytes:
    resources = [
        {"name": _resource_name(path), "path": path, "hash": _sha256(data), "bytes": len(data)}
        for path, data, _ in files
    ]
    package = {
        "profile": "data-package",
        "resources": resources,
        "title": title,
        "created": to_iso(created_at),
        "wacz_version": WACZ_VERSION,
        "software": SOFTWARE,
        "mainPageUrl": main_url,
        "mainPageDate": page_date,
    }
    return _json_bytes(package)


def _resource_name(path: str) -> str:
    # Frictionless wants lower-case names of [-a-z0-9._/].
    return re.sub(r"[^-a-z0-9._/]", "-", path.rsplit("/", 1)[-1].lower())


def _zip(files: list[tuple[str, bytes, int]], created_at: datetime) -> bytes:
    """A zip whose bytes depend only on ``files`` and ``created_at``."""
    stamp = created_at.timetuple()[:6]
    if stamp[0] < 1980:  # the zip format cannot say earlier
        stamp = (1980, 1, 1, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, data, compression in files:
            entry = zipfile.ZipInfo(path, date_time=stamp)
            entry.compress_type = compression
            entry.create_system = 3  # Unix, whatever machine builds it
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return out.getvalue()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(value: object, indent: int | None = 2) -> bytes:
    return json.dumps(value, indent=indent, ensure_ascii=False).encode("utf-8")


def as_connected(
    responses: Iterable[RecordedResponse], guard: NetworkGuard
) -> tuple[RecordedResponse, ...]:
    """The responses as the archive keeps them: each with the address the guard proxy
    connected to (Chromium saw only the proxy's), the proxy's own refusals left out (they
    are in the capture's ``network_refused``, not the site's words)."""
    kept = []
    for r in responses:
        if any(
            k.lower() == GUARD_HEADER and v == guard.refusal_mark for k, v in r.response_headers
        ):
            continue
        parts = urlsplit(r.url)
        try:
            port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        except ValueError:
            port = None
        host = (parts.hostname or "").rstrip(".").lower()
        address = guard.connected.get((host, port)) if port else None
        kept.append(replace(r, remote_ip=address, remote_port=port if address else None))
    return tuple(kept)
