"""The orchestrator: one capture of one target, through every step, readable on one screen.

    take or check (browser)            watcher.steps.take
    -> keep files (blob store, hashes) watcher.steps.keep
    -> record (one transaction: capture, posts, diff, findings, events)
                                       watcher.steps.record, with the findings in
                                       watcher.steps.keywords / contacts / known

A target with ``full_every`` is looked at lightly between full captures: a check loads its
first page without images and compares its posts with the last capture's; the moment they
differ (or ``full_every`` has passed, or the last capture failed) a full capture is taken.

A failure of any step is recorded as a failed capture and reported; it never stops other
targets. This is the per-target boundary: the only place with a broad ``except``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from watcher.app import App
from watcher.errors import CaptureError, WatcherError
from watcher.models import CaptureSummary
from watcher.steps.keep import keep
from watcher.steps.record import record_failure, record_success
from watcher.steps.take import Taken, take_or_check
from watcher.timeutil import utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)


async def run_capture(app: App, target: Target, full: bool = False) -> CaptureSummary:
    """Capture ``target`` once, store it, diff it and record its events (``full``: no light
    check, whatever ``full_every`` says)."""
    started = utc_now()
    try:
        app.store.upsert_target(target.name, target.platform, target.url, started)
        taken = await _bounded(take_or_check(app, target, full), target)
        kept = await keep(app, target, taken, started)
        return record_success(app, target, started, taken, kept)
    except WatcherError as exc:
        return record_failure(app, target, started, exc)
    except Exception as exc:  # per-target boundary: record it, let the other targets go on
        log.exception("capture of %s failed unexpectedly", target.name)
        return record_failure(app, target, started, exc)


async def _bounded(work: Awaitable[Taken], target: Target) -> Taken:
    # Each browser call has its own limit, but a page can chain many slow ones: bound the whole.
    limit = target.timeout * 3 + 60
    try:
        return await asyncio.wait_for(work, limit)
    except TimeoutError as exc:
        raise CaptureError(
            "timeout", f"the capture took longer than {limit:.0f}s and was stopped"
        ) from exc
