"""Keep: a capture's files into the blob store by SHA-256, and its new images hashed.

Collection metadata, screenshot, HTML, posts JSON, detail pages, images and (when the page
changed since the last capture) the WACZ web archive, payloads the archive already holds
as revisit records. Runs in a worker thread: hashing, gzip
and image decoding are CPU work.

Screenshots are re-encoded losslessly as strips (:mod:`watcher.store.strips`): the same pixels
in a PNG built of pieces that later captures share, so a page with one new post does not
store its whole screenshot again. The capture's metadata names Chromium's PNG and the pixels'
digest beside ours, so a reader can check that nothing but the encoding changed.
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
from watcher.models import Artifact, CaptureMode, ImageRecord, PageSnapshot, ShotLayout
from watcher.steps.take import Taken
from watcher.store.blobs import BlobStore, sha256_hex
from watcher.store.screenshots import ScreenshotEncoding, known_encodings, remember_encodings
from watcher.store.strips import FORMAT, StripsError, encode
from watcher.timeutil import utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Kept:
    """The capture's files, now in the blob store."""

    artifacts: list[Artifact]
    images: dict[str, ImageRecord]  # by source URL
    archive: WebArchive | None = None  # the WACZ, when this capture made one
    new_encodings: tuple[ScreenshotEncoding, ...] = ()  # screenshots re-encoded this time


async def keep(app: App, target: Target, taken: Taken, started: str) -> Kept:
    """Put the capture's files in the blob store (off the event loop: hashing and gzip are
    CPU work), reusing what the archive already knows about the page and its images."""
    meta = _metadata(app, target, taken, started)
    known = app.store.stored_images({d.sha256 for d in taken.downloads.values() if d.sha256})
    payloads = await known_payloads(app.store, taken.snapshot, taken.mode == CaptureMode.FULL)
    originals = await asyncio.to_thread(lambda: [sha256_hex(s) for s in _screenshots(taken)])
    encodings = known_encodings(app.store, originals)
    kept = await asyncio.to_thread(
        keep_files,
        app.blobs,
        taken,
        meta,
        taken.previous_html,
        known,
        payloads,
        app.wacz_key,
        encodings,
    )
    if kept.new_encodings:
        remember_encodings(app.store, kept.new_encodings, utc_now())
    return kept


def keep_files(
    blobs: BlobStore,
    taken: Taken,
    meta: dict[str, object],
    previous_html: str | None = None,
    known_images: dict[str, ImageRecord] | None = None,
    payloads: KnownPayloads | None = None,
    signer: WaczSigner | None = None,
    encodings: dict[str, ScreenshotEncoding] | None = None,
) -> Kept:
    """Write metadata, screenshot, HTML, posts JSON, web archive and images to the blob
    store; hash the images.

    The web archive (WACZ) is made when the page differs from the last capture's: an
    unchanged page is proven by the same HTML hash, without a second copy of everything.
    Images in ``known_images`` (by SHA-256) keep their stored hashes: the same bytes always
    give the same hashes, and decoding 200 photos again is most of an unchanged capture.
    Payloads the archive already holds go into the WACZ as revisit records (``dedup``).
    Screenshots are stored re-encoded as strips; one in ``encodings`` (by the SHA-256 of
    Chromium's PNG) is already stored so.
    """
    snap = taken.snapshot
    shots = _stored_screenshots(blobs, taken, encodings or {})
    if shots:
        # Our PNG is what the store keeps and the custody entry hashes: say what it replaced.
        meta = meta | {"screenshot_encodings": [s.encoding.to_json() for s in shots.values()]}
    files = _capture_files(taken, meta, shots)
    html_sha = sha256_hex(snap.html_pages[0].encode("utf-8")) if snap.html_pages else None
    archive = None
    # A rendering of API messages is not a page: no web archive of it.
    if taken.mode == CaptureMode.FULL and html_sha != previous_html and not taken.account_capture:
        known = payloads or KnownPayloads()
        archived = _with_stored_screenshot(blobs, snap, shots)
        archive = web_archive(archived, meta, taken.cookie_values, known, taken.downloads, signer)
        files.append(_File("wacz", archive.wacz, "application/wacz", snap.final_url))
    stored = iter(blobs.put_many([f.data for f in files if f.stored is None]))
    shas = [f.stored.sha256 if f.stored else next(stored) for f in files]
    artifacts = [
        Artifact(f.kind, sha, f.size, f.media_type, f.source)
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
    new = tuple(s.encoding for s in shots.values() if s.png is not None)
    return Kept(artifacts, images, archive, new)


@dataclass(frozen=True, slots=True)
class _File:
    """One evidence file of a capture, before it goes into the blob store."""

    kind: str
    data: bytes
    media_type: str
    source: str | None = None
    stored: ScreenshotEncoding | None = None  # a screenshot already stored as strips

    @property
    def size(self) -> int:
        return self.stored.size if self.stored else len(self.data)


@dataclass(frozen=True, slots=True)
class _Shot:
    """A screenshot stored as strips; ``png`` is None when an earlier capture stored it."""

    encoding: ScreenshotEncoding
    png: bytes | None


def _screenshots(taken: Taken) -> list[bytes]:
    """The capture's screenshots as Chromium wrote them (page, then the detail pages kept)."""
    shots = [taken.snapshot.screenshot] if taken.snapshot.screenshot else []
    details = (taken.details.get(post.post_id) for post in taken.posts)
    return shots + [detail[1] for detail in details if detail and detail[1]]


def _stored_screenshots(
    blobs: BlobStore, taken: Taken, known: dict[str, ScreenshotEncoding]
) -> dict[str, _Shot]:
    """Each screenshot re-encoded as strips and stored, by the SHA-256 of Chromium's PNG.

    One the store already holds re-encoded (an unchanged page) is not decoded again. One
    that cannot be decoded exactly (corrupt, over 100 MP, an unusual pixel format) is left
    out: it is kept whole, as Chromium wrote it, as before.
    """
    shots: dict[str, _Shot] = {}
    for data in _screenshots(taken):
        original = sha256_hex(data)
        if original in shots:
            continue
        reuse = known.get(original)
        if reuse is not None and blobs.has(reuse.sha256):
            shots[original] = _Shot(reuse, None)
            continue
        try:
            encoded = encode(data)
        except StripsError as exc:
            log.warning("screenshot %s kept whole as Chromium wrote it: %s", original, exc)
            continue
        blobs.put_composite(encoded)
        encoding = ScreenshotEncoding(
            original, encoded.sha256, len(encoded.png), encoded.pixels_sha256, FORMAT
        )
        shots[original] = _Shot(encoding, encoded.png)
    return shots


def _with_stored_screenshot(
    blobs: BlobStore, snap: PageSnapshot, shots: dict[str, _Shot]
) -> PageSnapshot:
    """``snap`` with its screenshot as the store keeps it: the WACZ's screenshot record is
    then a revisit of a blob the store holds, which an export makes whole again."""
    if not snap.screenshot:
        return snap
    shot = shots.get(sha256_hex(snap.screenshot))
    if shot is None:
        return snap
    png = shot.png if shot.png is not None else blobs.read(shot.encoding.sha256)
    return replace(snap, screenshot=png)


def _shot_file(kind: str, data: bytes, source: str | None, shots: dict[str, _Shot]) -> _File:
    shot = shots.get(sha256_hex(data)) if shots else None
    if shot is None:
        return _File(kind, data, "image/png", source)
    return _File(kind, shot.png or b"", "image/png", source, stored=shot.encoding)


def _capture_files(
    taken: Taken, meta: dict[str, object], shots: dict[str, _Shot] | None = None
) -> list[_File]:
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
        files.append(_shot_file(shot_kind, snap.screenshot, None, shots or {}))
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
                files.append(_shot_file("detail_screenshot", shot, post.permalink, shots or {}))
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
        | (
            # Less than a pixel of space per post and above the page (capture.page).
            {"screenshot_layout": snap.screenshot_layout.to_json()}
            if snap.screenshot and snap.screenshot_layout != ShotLayout()
            else {}
        )
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
