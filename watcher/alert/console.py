"""The console sink: events as short readable lines on the terminal."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from watcher.alert.markup import flat as _excerpt
from watcher.kinds import PAYLOADS, CaptureFailed, CaptureRecovered, WatchlistInvalid
from watcher.models import CaptureMode, CaptureStatus, CaptureSummary, Event, EventKind


def format_event(event: Event, now: datetime | None = None) -> str:
    """One or two lines describing ``event`` for a person (times relative to ``now``)."""
    head = f"[{event.payload.label}] {event.target}"
    if event.post_id:
        head += f" post {event.post_id}"
    body = event.payload.console(event, now)
    if hits := event.payload.hits():
        words = ", ".join(dict.fromkeys(k.text for k in hits))
        groups = ", ".join(sorted({k.group for k in hits}))
        body += f"\n    why: {groups} ({words})"
    suffix = f"  (capture #{event.capture_id})" if event.capture_id else ""
    return f"{head}{suffix}\n    {body}"


def format_summary(summary: CaptureSummary) -> str:
    """One line per capture for ``watcher check``."""
    if summary.status != CaptureStatus.OK:
        label = "BLOCKED" if summary.status == CaptureStatus.BLOCKED else "FAILED"
        return f"{summary.target}: {label} ({summary.reason}) {_first_message(summary)}"
    counts = ", ".join(
        f"{summary.count(kind)} {name}"
        for kind, name in (
            (EventKind.NEW_POST, "new"),
            (EventKind.EDITED_POST, "edited"),
            (EventKind.DELETED_POST, "deleted"),
            (EventKind.RESTORED_POST, "back"),
            (EventKind.IMAGE_SEEN_BEFORE, "photos seen before"),
        )
    )
    base = " (baseline)" if summary.baseline else ""
    if summary.mode == CaptureMode.CHECK:
        return (
            f"{summary.target}: ok, check #{summary.capture_id}: the same {summary.post_count} "
            "posts as the last capture"
        )
    return (
        f"{summary.target}: ok, capture #{summary.capture_id}{base}, {summary.post_count} posts, "
        f"{summary.new_images} new images; {counts}"
    )


def format_progress(summary: CaptureSummary, seconds: float) -> str:
    """One line per capture for ``watcher run``, so a person sees it working, e.g.
    ``dealer ok, 2 new posts (capture #7, 3.4 s)`` or ``shop failed: HTTP 503 (0.8 s)``."""
    where = f"capture #{summary.capture_id}, " if summary.capture_id is not None else ""
    if summary.mode == CaptureMode.CHECK and summary.status == CaptureStatus.OK:
        where = f"check #{summary.capture_id}, "
    tail = f"({where}{seconds:.1f} s)"
    if summary.status != CaptureStatus.OK:
        message = _first_message(summary).removeprefix("- ") or summary.reason or "unknown"
        return f"{summary.target} {summary.status}: {_excerpt(message, 200)} {tail}"
    if summary.baseline:
        return f"{summary.target} ok, baseline: {_plural(summary.post_count, 'post')} {tail}"
    # What a capture found, counted as each kind says (`found`: one, many).
    found = [
        f"{n} {one if n == 1 else many}"
        for kind, payload in PAYLOADS.items()
        if payload.found and (n := summary.count(kind))
        for one, many in [payload.found]
    ]
    recovered = [e.payload for e in summary.events if isinstance(e.payload, CaptureRecovered)]
    if recovered:
        found.insert(0, f"recovered after {recovered[0].failures} failure(s)")
    return f"{summary.target} ok, {', '.join(found) or 'no change'} {tail}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def events_to_show(events: tuple[Event, ...] | list[Event]) -> list[Event]:
    """The events worth a line: a keyword event is left out where its post's own new or
    edited event is there too, since that line already says why (one alert per post)."""
    posts = {
        (e.target, e.post_id)
        for e in events
        if e.kind in (EventKind.NEW_POST, EventKind.EDITED_POST)
    }
    return [
        e for e in events if not (e.kind == EventKind.KEYWORD and (e.target, e.post_id) in posts)
    ]


class ConsoleSink:
    """Prints events as they happen."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def show(self, event: Event) -> None:
        """Print one event."""
        print(format_event(event, datetime.now(UTC)), file=self.stream, flush=True)


def _first_message(summary: CaptureSummary) -> str:
    for event in summary.events:
        if isinstance(event.payload, CaptureFailed | WatchlistInvalid) and event.payload.message:
            return f"- {event.payload.message}"
    return ""
