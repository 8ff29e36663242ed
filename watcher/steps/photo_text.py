"""Text in photos, off the capture path: a reader that takes unread photos one at a time
(newest first, so a new post's photos come before the backlog), has the OCR engine read
each in its own bounded process, and records what was read with its findings.

A photo's findings (lexicon keywords, contacts, prices) go to every post that carries it:
contacts into the same ``contacts`` records as contacts in post text (``source = 'photo'``),
so a phone number written only on a photo ties two accounts through ``contact_seen_before``
and ``watcher links``; keywords and contacts make one short ``photo_text`` alert per post,
pointing to the post's own alert (which went out at capture, without waiting for this).
Each photo is read once (its ``photo_text`` row), so its alerts fire once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from watcher.app import App
from watcher.detect.contacts import extract_contacts
from watcher.detect.ocr import OcrEngine, OcrStatus, PhotoText, engine_name
from watcher.detect.prices import extract_prices
from watcher.errors import WatcherError
from watcher.kinds import KeywordHit, PhotoTextFound
from watcher.models import Event, EventKind
from watcher.steps.keywords import DETECT_CHARS, DETECT_MATCHES
from watcher.steps.record import record_events
from watcher.store.links import contact_seen_before, record_contacts
from watcher.store.photo_text import (
    first_alert,
    insert_photo_text,
    photo_posts,
    unread_photos,
)
from watcher.timeutil import utc_now
from watcher.watchlist import Watchlist

log = logging.getLogger(__name__)

IDLE_WAIT_S = 60.0  # with nothing to read, look again this often (or when a capture wakes it)


@dataclass(frozen=True, slots=True)
class Reading:
    """One photo read: what the engine said and the events it made."""

    sha256: str
    result: PhotoText
    events: list[Event]


def record_reading(app: App, sha256: str, result: PhotoText) -> list[Event]:
    """Keep what was read in one photo, with a custody entry, and record its findings on
    every post that carries it; returns the stored events (alerts queued)."""
    now = utc_now()
    with app.custody.transaction():
        insert_photo_text(app.store, sha256, result, now)
        boxes = json.dumps([b.to_json() for b in result.boxes], ensure_ascii=False, sort_keys=True)
        app.custody.append(
            "photo_read",
            f"image:{sha256}",
            {
                "status": str(result.status),
                "engine": result.engine,
                "lines": len(result.boxes),
                # The reading itself (text, boxes, confidences) as stored, by its hash.
                "boxes_sha256": hashlib.sha256(boxes.encode()).hexdigest(),
                "reason": result.reason,
            },
        )
        events = _findings(app, sha256, result, now) if result.status == OcrStatus.OK else []
        return record_events(app, events)


def _findings(app: App, sha256: str, result: PhotoText, now: str) -> list[Event]:
    text = result.text[:DETECT_CHARS]
    if not text.strip():
        return []
    contacts = extract_contacts(text)[:DETECT_MATCHES]
    keywords = [
        KeywordHit(group=k.group, term=k.term, start=k.start, end=k.end, text=k.text)
        for k in app.keywords.find(text)[:DETECT_MATCHES]
    ]
    prices = tuple(str(p) for p in extract_prices(text)[:DETECT_MATCHES])
    events = []
    for post in photo_posts(app.store, sha256):
        seen = contact_seen_before(app.store, post.target, contacts) if contacts else []
        if contacts:
            record_contacts(
                app.store,
                post.target,
                post.post_id,
                post.version_id,
                post.capture_id,
                contacts,
                now,
                image_sha256=sha256,
            )
        if not (keywords or contacts):
            continue  # a price alone says little without the words or a contact
        first = first_alert(app.store, post.target, post.post_id)
        if first is None and not seen:
            # A post of a baseline capture was never alerted, and its text's keywords are
            # not either: only a contact tying it to another account is news (as for text).
            continue
        payload = PhotoTextFound(
            image_sha256=sha256,
            text=text,
            keywords=tuple(keywords),
            contacts=tuple(dict.fromkeys(f"{c.kind} {c.value}" for c in contacts)),
            seen_elsewhere=tuple(
                f"{s.kind} {s.value} first seen on {s.first_seen.target} post "
                f"{s.first_seen.post_id}"
                for s in seen
            ),
            prices=prices,
            permalink=post.permalink,
            first_event_id=first[0] if first else None,
            first_alert_at=first[1] if first else None,
        )
        events.append(
            Event(
                EventKind.PHOTO_TEXT,
                post.target,
                post.post_id,
                payload,
                capture_id=post.capture_id,
                created_at=now,
            )
        )
    return events


class PhotoReader:
    """Reads unread photos one at a time in one worker thread (the OCR itself in a child
    process): ``run`` in ``watcher run``'s loop, ``read_some`` for ``watcher ocr``."""

    def __init__(self, app: App, engine: OcrEngine | None = None) -> None:
        self.app = app
        self.engine = engine or OcrEngine()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr")
        self.wakeup = asyncio.Event()
        self.skipped: set[str] = set()  # photos whose reading could not be stored

    def wake(self) -> None:
        """New photos were stored: look at once."""
        self.wakeup.set()

    async def run(self, stop: asyncio.Event, on_reading: Callable[[Reading], None]) -> None:
        """Read until ``stop`` is set; ``on_reading`` is told of each photo read."""
        while not stop.is_set():
            reading = await self.read_next()
            if reading is not None:
                on_reading(reading)
                continue
            self.wakeup.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (stop, self.wakeup)]
            await asyncio.wait(waits, timeout=IDLE_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    async def read_next(self) -> Reading | None:
        """Read the newest unread photo; None when there is none."""
        store = self.app.store
        candidates = [
            s for s in unread_photos(store, len(self.skipped) + 1) if s not in self.skipped
        ]
        if not candidates:
            return None
        sha256 = candidates[0]
        loop = asyncio.get_running_loop()
        try:
            data = self.app.blobs.read(sha256)
            result = await loop.run_in_executor(self.executor, self.engine.read, data)
            result = _with_engine(result)
            events = record_reading(self.app, sha256, result)
        except WatcherError as exc:  # boundary: one photo's store or blob failure, said once
            log.error("reading the text of photo %s: %s", sha256[:12], exc)
            self.skipped.add(sha256)
            return None
        if result.status != OcrStatus.OK:
            log.warning("photo %s not read: %s", sha256[:12], result.reason)
        return Reading(sha256, result, events)

    def close(self) -> None:
        """End the OCR process (a photo being read is given up) and the worker thread."""
        self.engine.stop()
        self.executor.shutdown(wait=True)
        self.engine.close()


def ocr_enabled(watchlist: Watchlist) -> bool:
    """Whether ``watcher run`` reads photos: ``images.ocr`` in the watchlist, unless the
    environment says ``WATCHER_OCR=off`` (the test suite's daemons, which do not need it)."""
    return watchlist.images.ocr and os.environ.get("WATCHER_OCR", "").lower() != "off"


def _with_engine(result: PhotoText) -> PhotoText:
    from dataclasses import replace

    return result if result.engine else replace(result, engine=engine_name())
