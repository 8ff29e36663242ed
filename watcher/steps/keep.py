"""Keep: a capture's files into the blob store by SHA-256, and its new images hashed.

Collection metadata, screenshot, HTML, posts JSON, detail pages, images and (when the page
changed since the last capture) the WACZ web archive, payloads the archive already holds
as revisit records. Runs in a worker thread: hashing, gzip
and image decoding are CPU work.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace

from watcher.app import App
from watcher.capture.archive import WaczSigner
from watcher.capture.dedup import KnownPayloads, WebArchive, known_payloads, web_archive
from watcher.capture.environment import collection_metadata
from watcher.capture.media import Download
from watcher.detect.images import ImageDecodeError, perceptual_hashes
from watcher.models import Artifact, CaptureMode, ImageRecord
from watcher.steps.take import Taken
from watcher.store.blobs import BlobStore, sha256_hex
from watcher.timeutil import utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Kept:
    """The capture's files, now in the blob store."""

    artifacts: list[Artifact]
    images: dict[str, ImageRecord]  # by source URL
    archive: WebArchive | None = None  # the WACZ, when this capture made one


async def keep(app: App, target: Target, taken: Taken, started: str) -> Kept:
    """Put the capture's files in the blob store (off the event loop: hashing and gzip are
    CPU work), reusing what the archive already knows about the page and its images."""
    meta = _metadata(app, target, taken, started)
    known = app.store.stored_images({d.sha256 for d in taken.downloads.values() if d.sha256})
    payloads = await known_payloads(app.store, taken.snapshot, taken.mode == CaptureMode.FULL)
    return await asyncio.to_thread(
        keep_files,
        app.blobs,
        taken,
        meta,
        taken.previous_html,
        known,
        payloads,
        app.wacz_key,
    )


def keep_files(
    blobs: BlobStore,
    taken: Taken,
    meta: dict[str, object],
    previous_html: str | None = None,
    known_images: dict[str, ImageRecord] | None = None,
    payloads: KnownPayloads | None = None,
    signer: WaczSigner | None = None,
) -> Kept:
    """Write metadata, screenshot, HTML, posts JSON, web archive and images to the blob
    store; hash the images.

    The web archive (WACZ) is made when the page differs from the last capture's: an
    unchanged page is proven by the same HTML hash, without a second copy of everything.
    Images in ``known_images`` (by SHA-256) keep their stored hashes: the same bytes always
    give the same hashes, and decoding 200 photos again is most of an unchanged capture.
    Payloads the archive already holds go into the WACZ as revisit records (``dedup``).
    """
    snap = taken.snapshot
    files = _capture_files(taken, meta)
    html_sha = sha256_hex(snap.html_pages[0].encode("utf-8")) if snap.html_pages else None
    archive = None
    # A rendering of API messages is not a page: no web archive of it.
    if taken.mode == CaptureMode.FULL and html_sha != previous_html and not taken.account_capture:
        known = payloads or KnownPayloads()
        archive = web_archive(snap, meta, taken.cookie_values, known, taken.downloads, signer)
        files.append(_File("wacz", archive.wacz, "application/wacz", snap.final_url))
    shas = blobs.put_many([f.data for f in files])
    artifacts = [
        Artifact(f.kind, sha, len(f.data), f.media_type, f.source)
        for f, sha in zip(files, shas, strict=True)
    ]
    # Images were streamed into the store as they downloaded (see media.download_images).
    artifacts += [
        Artifact("image", d.sha256, d.size, d.media_type or "", url)
        for url, d in taken.downloads.items()
        if d.sha256 is not None
    ]
    known_images = known_images or {}
    images = {
        url: _image_record(blobs, download, known_images.get(download.sha256 or ""))
        for url, download in taken.downloads.items()
    }
    return Kept(artifacts, images, archive)


@dataclass(frozen=True, slots=True)
class _File:
    """One evidence file of a capture, before it goes into the blob store."""

    kind: str
    data: bytes
    media_type: str
    source: str | None = None


def _capture_files(taken: Taken, meta: dict[str, object]) -> list[_File]:
    """Metadata, screenshot, HTML pages, posts JSON and detail pages of a capture."""
    snap = taken.snapshot
    meta_json = json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True)
    files = [_File("metadata", meta_json.encode("utf-8"), "application/json")]
    # Through a Telegram account the HTML and screenshot are watcher's rendering of the
    # messages, never a page: their kinds say so, and the raw messages come with them.
    api = taken.account_capture
    shot_kind, html_kind = (
        ("rendering_screenshot", "rendering_html") if api else ("screenshot", "html")
    )
    if snap.screenshot:
        files.append(_File(shot_kind, snap.screenshot, "image/png"))
    for html in snap.html_pages:
        files.append(_File(html_kind, html.encode("utf-8"), "text/html", snap.final_url))
    for extra in api.files if api else ():
        files.append(_File(extra.kind, extra.data, extra.media_type, extra.source))
    posts_json = json.dumps([p.to_json() for p in taken.posts], ensure_ascii=False, indent=1)
    files.append(_File("posts", posts_json.encode("utf-8"), "application/json"))
    for post in taken.posts:
        if post.post_id in taken.details:
            html, shot = taken.details[post.post_id]
            files.append(_File("detail_html", html.encode(), "text/html", post.permalink))
            if shot:
                files.append(_File("detail_screenshot", shot, "image/png", post.permalink))
    return files


def _metadata(app: App, target: Target, taken: Taken, started: str) -> dict[str, object]:
    snap = taken.snapshot
    return (
        collection_metadata(
            target=target.name,
            platform_name=target.platform,
            requested_url=snap.requested_url,
            final_url=snap.final_url,
            http_status=snap.http_status,
            started_at=started,
            ended_at=utc_now(),
            user_agent=snap.user_agent,
            browser_version=snap.browser_version,
            operator=app.watchlist.operator,
            session=target.session,
            page_text="\n".join(post.text for post in taken.posts),
            browser_host=taken.browser.to_json() if taken.browser else None,
            lost_attempts=[a.to_json() for a in taken.lost],
        )
        | ({"network_refused": [r.to_json() for r in taken.refused]} if taken.refused else {})
        | ({"telegram_api": taken.account_capture.to_json()} if taken.account_capture else {})
        | (
            # A check read without a renderer says so: no browser saw this page.
            {"read_by": taken.read_by} if taken.read_by != "browser" else {}
        )
    )


def _image_record(blobs: BlobStore, download: Download, known: ImageRecord | None) -> ImageRecord:
    """The image's record: its stored hashes when the archive has these bytes, else new ones
    (read back from the store one image at a time)."""
    if download.sha256 is None:
        return ImageRecord(download.url, None, 0, None, error=download.error)
    if known is not None:
        return replace(known, url=download.url, media_type=download.media_type)
    size, sha = download.size, download.sha256
    try:
        hashes = perceptual_hashes(blobs.read(sha))
    except ImageDecodeError as exc:
        return ImageRecord(download.url, sha, size, download.media_type, error=str(exc))
    return ImageRecord(
        download.url,
        sha,
        size,
        download.media_type,
        phash=hashes.phash,
        dhash=hashes.dhash,
        width=hashes.width,
        height=hashes.height,
    )


def put_artifact(
    blobs: BlobStore, kind: str, data: bytes, media_type: str, source: str | None = None
) -> Artifact:
    return Artifact(kind, blobs.put(data), len(data), media_type, source)
