"""The bot's slow work, kept apart from the chat: evidence exports, photo lookups, durations.

Nothing here talks to Telegram; :mod:`watcher.bot.commands` does, around these.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watcher.app import App
from watcher.detect.images import ImageDecodeError, perceptual_hashes
from watcher.detect.known import KnownImage
from watcher.errors import WatcherError
from watcher.evidence.bundle import Selection, export_bundle
from watcher.models import ImageSighting
from watcher.store.db import Store
from watcher.store.links import where_seen
from watcher.timeutil import parse_duration, to_iso

MAX_MATCHES = 15
MAX_PAUSE_S = 365 * 86400
BUNDLE_HEADROOM = 0.9  # parts are split on stored sizes; leave room for the log and index


# -- evidence ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EvidenceRequest:
    """What ``/evidence ID`` (or an alert's Evidence button) asks for."""

    selection: Selection
    label: str


def evidence_request(app: App, raw: str) -> EvidenceRequest:
    """A capture number (``12`` or ``#12``) when such a capture exists, else a post id."""
    text = raw.strip().lstrip("#")
    if not text:
        raise WatcherError("say which: /evidence 12 (a capture number) or /evidence dealer/4")
    if text.isdigit() and app.store.capture(int(text)) is not None:
        return EvidenceRequest(Selection(capture_id=int(text)), f"capture #{text}")
    return EvidenceRequest(Selection(post_id=raw.strip()), f"post {raw.strip()}")


async def build_bundles(
    app: App, request: EvidenceRequest, out_dir: Path, limit: int
) -> list[Path]:
    """Export the bundle(s) in a worker thread, split to fit ``limit`` where captures allow."""
    max_bytes = max(int(limit * BUNDLE_HEADROOM), 1)
    return await asyncio.to_thread(_export, app, request.selection, out_dir, max_bytes)


def _export(app: App, selection: Selection, out_dir: Path, max_bytes: int) -> list[Path]:
    # An SQLite connection belongs to the thread that opened it: the export opens its own, as
    # a separate `watcher export` process would (the custody log is safe across the two).
    store = Store(app.store.path)
    try:
        twin = App(app.watchlist, app.data_dir, store, app.blobs, app.browser, owns_browser=False)
        return export_bundle(twin, selection, out_dir, max_bytes, progress=_quiet)
    finally:
        store.close()


def _quiet(done: int, total: int) -> None:
    """No progress bar: the chat gets 'working…' instead."""


# -- photos --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PhotoAnswer:
    """Where a photo sent to the bot was seen, as ``watcher similar`` finds it."""

    matches: list[tuple[ImageSighting, int]]  # (post, pHash distance), closest first
    references: list[tuple[KnownImage, int]]  # the team's reference photos near it
    compared: int  # stored photos compared


async def photo_seen(app: App, data: bytes) -> PhotoAnswer:
    """Stored posts showing this photo or a near copy (at most ``MAX_MATCHES``), and the
    reference photos (``images.known``) it matches."""
    try:
        hashes = await asyncio.to_thread(perceptual_hashes, data)
    except ImageDecodeError as exc:
        raise WatcherError(f"that file is not a photo I can read ({exc})") from exc
    found = where_seen(app.store, app.images, app.known, hashes.phash, limit=None)
    matches = [(post, image.distance) for image in found.archived for post in image.posts]
    matches.sort(key=lambda pair: (pair[1], pair[0].seen_at))
    return PhotoAnswer(matches[:MAX_MATCHES], found.references, len(app.images))


# -- durations -----------------------------------------------------------------------------
def until_after(duration: str | None) -> str | None:
    """ISO UTC time ``duration`` (``30m``, ``2h``, ``1d12h``) from now; None: no end."""
    if duration is None:
        return None
    try:
        seconds = parse_duration(duration)
    except ValueError:
        raise WatcherError(f"{duration!r} is not a duration; use e.g. 30m, 2h or 3d") from None
    if not 0 < seconds <= MAX_PAUSE_S:
        raise WatcherError("give a duration between 1s and 365d")
    return in_seconds(seconds)


def in_seconds(seconds: float) -> str:
    """ISO UTC time ``seconds`` from now."""
    return to_iso(datetime.now(UTC) + timedelta(seconds=seconds))
