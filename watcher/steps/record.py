"""Record: one SQLite transaction per capture.

The capture row and its artifacts, images, the diff against the target's live posts, new
posts, versions, sightings and deletions, the findings (keywords, contacts, known photos),
the events with their alerts queued, and a signed ``captured`` custody entry. A failure is
recorded as a failed capture with its reason, alerted once per streak.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from watcher import __version__
from watcher.alert.routing import routes_for
from watcher.app import App
from watcher.capture.blocks import REASONS as BLOCK_REASONS
from watcher.capture.dedup import record_payloads
from watcher.detect import events as ev
from watcher.detect.diff import PostDiff, diff_posts, posts_fingerprint
from watcher.errors import CaptureError, StoreError, WatcherError
from watcher.models import (
    Artifact,
    CapturedPost,
    CaptureMode,
    CaptureStatus,
    CaptureSummary,
    Event,
    ImageRecord,
    Post,
)
from watcher.steps.contacts import find_contacts
from watcher.steps.dealers import find_returning_dealers
from watcher.steps.keep import Kept, put_artifact
from watcher.steps.keywords import keyword_hits
from watcher.steps.known import find_known_photos
from watcher.steps.take import Taken
from watcher.store.db import CaptureRow
from watcher.store.dealers import record_return
from watcher.timeutil import utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)


def record_success(
    app: App, target: Target, started: str, taken: Taken, kept: Kept
) -> CaptureSummary:
    """Store the capture, its posts and their diff against the last capture, in one transaction."""
    store, now = app.store, utc_now()
    captured = [_with_shas(post, kept.images) for post in taken.posts]
    with app.custody.transaction():
        baseline = not store.has_ok_capture(target.name)
        failures = store.failure_streak(target.name)
        # Through a Telegram account a post is judged deleted only within the messages read.
        covers = taken.account_capture.covers if taken.account_capture else None
        live, hidden = store.live_posts(target.name), store.hidden_posts(target.name)
        diff = diff_posts(live, captured, hidden, covers)
        capture_id = store.insert_capture(_capture_row(target, started, now, taken, baseline))
        for artifact in kept.artifacts:
            store.insert_artifact(capture_id, artifact, now)
        record_payloads(store, capture_id, kept.archive, now)
        fresh = [i for i in kept.images.values() if i.sha256 and store.insert_image(i, now)]
        errors = {url: i.error for url, i in kept.images.items() if i.error}
        rows = _store_posts(app, target.name, diff, capture_id, captured, now, errors)
        hits = keyword_hits(app.keywords, diff)
        store.insert_keyword_matches(target.name, rows, capture_id, hits, now)
        events = ev.post_events(target.name, diff, baseline, hits)
        events += ev.keyword_events(target.name, diff, hits, baseline)
        events += find_contacts(app, target.name, diff, rows, capture_id, now)
        added = ev.new_images(diff, kept.images)
        candidates = [(n, rows[n.post.post.post_id][0]) for n in added]
        events += ev.repost_events(target.name, candidates, app.images, store.first_sighting)
        events += find_known_photos(app, target.name, added)
        if failures:
            events.append(ev.capture_recovered(target.name, failures))
        _log_custody(app, capture_id, target, CaptureStatus.OK, kept.artifacts, taken.mode)
        stored = record_events(app, [stamped(e, capture_id, now) for e in events])
        # Ties are read from the contacts and photo events just stored: this comes last.
        stored += _record_returns(app, target.name, baseline, diff, capture_id, now)
    for image in fresh:
        if image.phash is not None and image.sha256:
            app.images.add(image.sha256, image.phash, image.dhash)
    return CaptureSummary(
        target.name,
        capture_id,
        CaptureStatus.OK,
        None,
        started,
        now,
        len(captured),
        baseline,
        tuple(stored),
        new_images=len(added),
        mode=taken.mode,
    )


def _record_returns(
    app: App, target: str, baseline: bool, diff: PostDiff, capture_id: int, now: str
) -> list[Event]:
    returns = find_returning_dealers(app, target, baseline, diff, capture_id, now)
    stored = record_events(app, [stamped(e, capture_id, now) for e in returns])
    for event in stored:
        record_return(app.store, event.payload.account, event.payload.dealer, event.id, now)
    return stored


def record_failure(app: App, target: Target, started: str, exc: Exception) -> CaptureSummary:
    """Record a failed capture with its reason; alert only on the first failure of a streak."""
    now = utc_now()
    reason = exc.reason if isinstance(exc, CaptureError) else type(exc).__name__
    message = str(exc) or reason
    if isinstance(exc, StoreError) and exc.bug:
        # Not the site's doing: this target is blind until it is fixed, so say it loudly.
        log.error("storing a capture of %s failed (a bug)", target.name, exc_info=exc)
        reason, message = STORE_BUG, store_bug_message(target.name, message)
    # Blocked: the platform hid the content from us (login wall, ban...): the session needs care.
    status = CaptureStatus.BLOCKED if reason in BLOCK_REASONS else CaptureStatus.FAILED
    try:
        with app.custody.transaction():
            streak = app.store.failure_streak(target.name) + 1
            row = CaptureRow(
                target.name,
                status,
                started,
                now,
                target.url,
                reason=reason,
                message=message,
                watcher_version=__version__,
            )
            capture_id = app.store.insert_capture(row)
            shot = exc.screenshot if isinstance(exc, CaptureError) else None
            kept = [put_artifact(app.blobs, "error_screenshot", shot, "image/png")] if shot else []
            for artifact in kept:
                app.store.insert_artifact(capture_id, artifact, now)
            _log_custody(app, capture_id, target, status, kept)
            event = stamped(
                ev.capture_failed(target.name, reason, message, streak), capture_id, now
            )
            if streak == 1 and not (isinstance(exc, CaptureError) and exc.quiet):
                (event,) = record_events(app, [event])
    except WatcherError as store_exc:
        # The store itself failed (disk full?): nothing to record into; say so loudly.
        log.error("could not record the failed capture of %s: %s", target.name, store_exc)
        capture_id, event = (
            None,
            ev.capture_failed(target.name, reason, f"{message}; {store_exc}", 0),
        )
    return CaptureSummary(target.name, capture_id, status, reason, started, now, 0, False, (event,))


STORE_BUG = "store_bug"


def store_bug_message(target: str, detail: str) -> str:
    """What a store refusal means for the team, and what to do about it."""
    return (
        f"watcher could not store the capture of {target} ({detail}). This is a bug in "
        "watcher, not a problem with the site, and this target's new posts are not recorded "
        "until it is fixed: please report it with the log (run 'watcher check "
        f"{target} --debug' and attach its output)"
    )


def record_events(app: App, events: list[Event]) -> list[Event]:
    """Store events and queue their alerts; call inside a transaction so both land together."""
    stored = []
    for event in events:
        saved = app.store.insert_event(event)
        for destination in routes_for(saved, app.watchlist):
            queued_at = saved.created_at or utc_now()
            app.store.enqueue(saved.id, destination.sink, destination.chat_id, queued_at)
        stored.append(saved)
    return stored


def _log_custody(
    app: App,
    capture_id: int,
    target: Target,
    status: CaptureStatus,
    artifacts: list[Artifact],
    mode: CaptureMode = CaptureMode.FULL,
) -> None:
    # The hashes taken at collection: `watcher verify` checks exported files against these.
    app.custody.append(
        "captured",
        f"capture:{capture_id}",
        {
            "target": target.name,
            "url": target.url,
            "status": str(status),
            "mode": str(mode),
            "artifacts": [{"kind": a.kind, "sha256": a.sha256, "size": a.size} for a in artifacts],
        },
    )


def _store_posts(
    app: App,
    target: str,
    diff: PostDiff,
    capture_id: int,
    captured: list[CapturedPost],
    now: str,
    image_errors: dict[str, str],
) -> dict[str, tuple[int, int]]:
    """Write new posts, new versions of edited ones, sightings and deletions.

    Returns (post row, version row) by post id.
    """
    store = app.store
    position: dict[str, int] = {}
    for i, c in enumerate(captured):
        position.setdefault(c.post.post_id, i)  # a post shown twice is where it first appears
    rows: dict[str, tuple[int, int]] = {}
    for c in diff.new:
        rows[c.post.post_id] = store.insert_post(
            target, c, capture_id, position[c.post.post_id], now, image_errors
        )
    for edit in diff.edited:
        post_id = edit.after.post.post_id
        version_id = store.insert_version(
            edit.before.row_id,
            edit.before.version + 1,
            edit.after,
            capture_id,
            position[post_id],
            now,
            image_errors,
        )
        rows[post_id] = (edit.before.row_id, version_id)
    for before, c in diff.unchanged:
        store.mark_seen(before.row_id, before.version_id, capture_id, position[c.post.post_id], now)
        rows[c.post.post_id] = (before.row_id, before.version_id)
    for back in diff.restored:
        # A post that changed while hidden got its new version with the edits above.
        if not back.edited:
            post_id = back.after.post.post_id
            before = back.before
            store.mark_seen(before.row_id, before.version_id, capture_id, position[post_id], now)
            rows[post_id] = (before.row_id, before.version_id)
        store.mark_restored(back.before.row_id, capture_id, now)
    for gone in diff.deleted:
        store.mark_deleted(gone.row_id, capture_id, now)
    return rows


def _with_shas(post: Post, images: dict[str, ImageRecord]) -> CapturedPost:
    return CapturedPost(
        post, tuple(images[u].sha256 if u in images else None for u in post.image_urls)
    )


def _capture_row(
    target: Target, started: str, now: str, taken: Taken, baseline: bool
) -> CaptureRow:
    snap = taken.snapshot
    return CaptureRow(
        target=target.name,
        status=CaptureStatus.OK,
        started_at=started,
        ended_at=now,
        requested_url=snap.requested_url,
        final_url=snap.final_url,
        http_status=snap.http_status,
        user_agent=snap.user_agent,
        browser_version=snap.browser_version,
        watcher_version=__version__,
        post_count=len(taken.posts),
        baseline=baseline,
        mode=taken.mode,
        fingerprint=posts_fingerprint(taken.posts),
    )


def stamped(event: Event, capture_id: int, now: str) -> Event:
    return replace(event, capture_id=capture_id, created_at=now)
