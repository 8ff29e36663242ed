"""The console sink: events as short readable lines on the terminal."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from watcher.alert.textdiff import changed, word_diff
from watcher.models import CaptureMode, CaptureStatus, CaptureSummary, Event, EventKind
from watcher.timeutil import human_time

_LABELS = {
    EventKind.NEW_POST: "NEW POST",
    EventKind.EDITED_POST: "EDITED",
    EventKind.DELETED_POST: "DELETED",
    EventKind.RESTORED_POST: "BACK AFTER DELETION",
    EventKind.IMAGE_SEEN_BEFORE: "PHOTO SEEN BEFORE",
    EventKind.CAPTURE_FAILED: "CAPTURE FAILED",
    EventKind.CAPTURE_RECOVERED: "RECOVERED",
    EventKind.KEYWORD: "KEYWORD",
    EventKind.CONTACT_SEEN_BEFORE: "CONTACT SEEN BEFORE",
    EventKind.KNOWN_IMAGE: "KNOWN PHOTO",
    EventKind.WATCHLIST_INVALID: "WATCHLIST INVALID",
}


def format_event(event: Event, now: datetime | None = None) -> str:
    """One or two lines describing ``event`` for a person (times relative to ``now``)."""
    label = _LABELS.get(event.kind, str(event.kind).upper())
    if event.details.get("reason") == "layout_changed":  # fixed in the watchlist, not the site
        label = "LAYOUT CHANGED"
    head = f"[{label}] {event.target}"
    if event.post_id:
        head += f" post {event.post_id}"
    d = event.details
    if event.kind == EventKind.IMAGE_SEEN_BEFORE:
        first = d.get("first_seen", {})
        body = (
            f"photo first seen on {first.get('target')} post {first.get('post_id')} "
            f"({human_time(first.get('seen_at'), now)}), distance {d.get('distance')}"
        )
    elif event.kind == EventKind.CONTACT_SEEN_BEFORE:
        first = d.get("first_seen", {})
        body = f"{d.get('kind')} {d.get('value')} first seen on {first.get('target')}"
    elif event.kind == EventKind.KNOWN_IMAGE:
        body = f"matches reference photo {d.get('reference')} (distance {d.get('distance')})"
    elif event.kind == EventKind.DELETED_POST:
        last = human_time(d.get("last_seen_at"), now)
        body = f"last seen {last}: {_excerpt(d.get('text', ''))}"
    elif event.kind == EventKind.RESTORED_POST:
        body = (
            f"hidden from {human_time(d.get('last_seen_at'), now)} (last seen) to "
            f"{human_time(event.created_at, now)}, found deleted "
            f"{human_time(d.get('deleted_at'), now)}: {_excerpt(d.get('text', ''))}"
        )
    elif event.kind == EventKind.EDITED_POST:
        body = _edit(d)
    elif event.kind in (EventKind.CAPTURE_FAILED, EventKind.WATCHLIST_INVALID):
        body = d.get("message", "")
    elif event.kind == EventKind.CAPTURE_RECOVERED:
        body = f"capturing again after {d.get('failures')} failure(s)"
    else:
        body = _excerpt(d.get("text", ""))
    if d.get("keywords"):
        words = ", ".join(dict.fromkeys(k["text"] for k in d["keywords"]))
        body += f"\n    why: {', '.join(d.get('groups', []))} ({words})"
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


# What a capture found, as `watcher run`'s progress line counts it: (one, many).
_FOUND = (
    (EventKind.NEW_POST, "new post", "new posts"),
    (EventKind.EDITED_POST, "edited post", "edited posts"),
    (EventKind.DELETED_POST, "deleted post", "deleted posts"),
    (EventKind.IMAGE_SEEN_BEFORE, "photo seen before", "photos seen before"),
    (EventKind.KNOWN_IMAGE, "reference photo match", "reference photo matches"),
    (EventKind.CONTACT_SEEN_BEFORE, "contact seen before", "contacts seen before"),
    (EventKind.KEYWORD, "post with keywords", "posts with keywords"),
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
    found = [
        f"{n} {one if n == 1 else many}" for kind, one, many in _FOUND if (n := summary.count(kind))
    ]
    recovered = [e for e in summary.events if e.kind == EventKind.CAPTURE_RECOVERED]
    if recovered:
        failures = recovered[0].details.get("failures")
        found.insert(0, f"recovered after {failures} failure(s)")
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


def _edit(d: dict) -> str:
    # Word-level, marked the way `git diff --word-diff` does: [-removed-]{+added+}.
    segments = word_diff(d.get("previous_text", ""), d.get("text", ""))
    if not d.get("text_changed") or not changed(segments):
        added, removed = len(d.get("images_added", [])), len(d.get("images_removed", []))
        return f"photos: {added} added, {removed} removed; text: {_excerpt(d.get('text', ''))}"
    marks = {"del": "[-{}-]", "ins": "{{+{}+}}"}
    shown = " ".join(marks[s.op].format(s.text) if s.op in marks else s.text for s in segments)
    return "edited: " + _excerpt(shown, 400)


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_message(summary: CaptureSummary) -> str:
    for event in summary.events:
        if event.details.get("message"):
            return f"- {event.details['message']}"
    return ""
