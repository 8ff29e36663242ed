"""A capture's web archive without second copies of what the archive already holds.

A changed page is archived again (its WACZ proves what the browser received this time), but
most of what it received did not change: 200 photos, scripts, styles. Every response (and the
screenshot and HTML resources) whose payload the archive already holds is written as a WARC
1.1 ``revisit`` record (identical-payload-digest: its own status, headers and time, the
payload's digest, and the record or file that holds the payload) instead of a second copy.
"Already held" means the blob store has the bytes (an image or screenshot of this or an
earlier capture) or an earlier capture's WARC holds them in a full record, noted in
``archived_payloads`` (see :mod:`watcher.store.payloads`). An export puts the payloads back
(:mod:`watcher.evidence.replay`), so each WACZ in a bundle replays on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from watcher.capture.archive import (
    PayloadOrigin,
    WaczSigner,
    WarcResource,
    build_wacz,
    build_warc,
)
from watcher.capture.media import Download
from watcher.models import PageSnapshot
from watcher.store.db import Store
from watcher.store.payloads import NewPayload, StoredPayload, insert_payloads, stored_payloads
from watcher.timeutil import parse_iso, to_iso

# A revisit record's headers cost ~600 bytes and a row in archived_payloads: smaller bodies
# (a redirect page, a pixel, a short JSON answer) are simply kept again.
MIN_PAYLOAD_BYTES = 1024
WARC_NAME = "capture.warc.gz"


@dataclass(frozen=True, slots=True)
class KnownPayloads:
    """The capture's payloads worth a revisit (SHA-256 of bodies of at least
    ``MIN_PAYLOAD_BYTES``) and those of them the archive already holds."""

    candidates: frozenset[str] = frozenset()
    stored: Mapping[str, StoredPayload] | None = None


@dataclass(frozen=True, slots=True)
class WebArchive:
    """A capture's WACZ, and the payloads its WARC holds in full for the first time."""

    wacz: bytes
    sha256: str
    new_payloads: tuple[NewPayload, ...]
    revisits: int


def _body_shas(snap: PageSnapshot) -> frozenset[str]:
    return frozenset(
        hashlib.sha256(r.body).hexdigest()
        for r in snap.responses
        if len(r.body) >= MIN_PAYLOAD_BYTES and not r.truncated
    )


async def known_payloads(
    store: Store, snap: PageSnapshot, makes_archive: bool = True
) -> KnownPayloads:
    """Which of ``snap``'s response bodies the archive already holds (hashing off the loop;
    nothing when this capture makes no web archive)."""
    if not makes_archive or not snap.responses:
        return KnownPayloads()
    candidates = await asyncio.to_thread(_body_shas, snap)
    return KnownPayloads(candidates, stored_payloads(store, candidates))


def web_archive(
    snap: PageSnapshot,
    meta: Mapping[str, object],
    cookie_values: frozenset[str],
    known: KnownPayloads,
    downloads: Mapping[str, Download],
    signer: WaczSigner | None = None,
) -> WebArchive:
    """The capture's WACZ: the page load's responses, and the HTML, screenshot and MHTML as
    resources, each payload the archive already holds as a revisit record."""
    html = snap.html_pages[0].encode("utf-8")
    resources = [WarcResource("urn:watcher:html", "text/html", html)]
    if snap.screenshot:
        resources.append(WarcResource("urn:watcher:screenshot", "image/png", snap.screenshot))
    if snap.mhtml:
        resources.append(WarcResource("urn:watcher:mhtml", "multipart/related", snap.mhtml))
    started = _warc_date(str(meta.get("started_at") or ""))
    archived = _origins(known, downloads, resources, started)
    info = {k: str(v) for k, v in meta.items() if v is not None and not isinstance(v, dict)}
    warc = build_warc(list(snap.responses), resources, info, cookie_values, archived)
    wacz = build_wacz(
        warc, WARC_NAME, snap.final_url, str(meta["target"]), str(meta["started_at"]), signer
    )
    new = tuple(
        NewPayload(e.digest.removeprefix("sha256:"), e.record_id, e.url, e.date, e.offset, e.length)
        for e in warc.index
        if e.rec_type == "response" and e.digest.removeprefix("sha256:") in known.candidates
    )
    revisits = sum(1 for e in warc.index if e.rec_type == "revisit")
    return WebArchive(wacz, hashlib.sha256(wacz).hexdigest(), new, revisits)


def _origins(
    known: KnownPayloads,
    downloads: Mapping[str, Download],
    resources: list[WarcResource],
    started: str | None,
) -> dict[str, PayloadOrigin]:
    """Payload digest (``sha256:<hex>``) → where it is already kept.

    This capture's own files count: its images were streamed into the blob store as they
    downloaded, and its screenshot and HTML go there with the WACZ, each with its own hash
    in the custody entry.
    """
    origins: dict[str, PayloadOrigin] = {}
    for sha, stored in (known.stored or {}).items():
        date = _warc_date(stored.warc_date) or started
        if date:
            origins["sha256:" + sha] = PayloadOrigin(stored.target_uri, date, stored.record_id)
    if not started:
        return origins
    for url, download in downloads.items():
        if download.sha256 and download.sha256 in known.candidates:
            origins.setdefault("sha256:" + download.sha256, PayloadOrigin(url, started))
    for resource in resources:
        if resource.content_type != "multipart/related":  # the MHTML is kept nowhere else
            sha = hashlib.sha256(resource.data).hexdigest()
            origins.setdefault("sha256:" + sha, PayloadOrigin(resource.uri, started))
    return origins


def record_payloads(store: Store, capture_id: int, archive: WebArchive | None, now: str) -> None:
    """Note the payloads ``archive`` holds in full, for later captures to revisit."""
    if archive is not None and archive.new_payloads:
        insert_payloads(store, capture_id, archive.sha256, archive.new_payloads, now)


def _warc_date(value: str) -> str | None:
    moment = parse_iso(value) if value else None
    return to_iso(moment) if moment else None
