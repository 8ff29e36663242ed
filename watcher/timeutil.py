"""UTC time helpers: every stored time is an ISO-8601 string in UTC ending in ``Z``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def utc_now() -> str:
    """The current time as UTC ISO-8601 with millisecond precision."""
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO-8601 (``2026-11-23T00:30:40.123Z``)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: watcher stores UTC times only")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    """Parse an ISO-8601 time from a page into an aware UTC datetime; None if unreadable.

    Times without a zone are taken as UTC rather than guessed from the machine's zone.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Times at the calendar's edges overflow when shifted to UTC: a hostile page's problem.
        return moment.astimezone(UTC)
    except (ValueError, AttributeError, OverflowError):
        return None


def normalise_page_time(text: str | None) -> str | None:
    """A time string from a page as our UTC ISO form, or None."""
    if not text:
        return None
    moment = parse_iso(text)
    return to_iso(moment) if moment else None


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``15m``, ``1h30m``, ``45s``, ``2d`` (a bare number is seconds).

    Raises ValueError with a message naming the accepted form.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(str(text))
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    """Short human form of a duration: ``90`` -> ``1m30s``."""
    seconds = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def human_time(moment: str | datetime | None, now: datetime | None = None) -> str:
    """A stored time as a person reads it: ``22 Nov 2026, 03:01 UTC``, with ``(3 h ago)``
    when ``now`` is given and the time is in the last 30 days. Pure: the caller passes
    ``now`` (the moment the alert is rendered), so the same event renders the same way.

    Unreadable text is returned as it came (a page's own time string is still evidence);
    None or empty is ``?``.
    """
    if moment is None or moment == "":
        return "?"
    when = moment.astimezone(UTC) if isinstance(moment, datetime) else parse_iso(moment)
    if when is None:
        return str(moment)
    # Month names from a table, not strftime's %b: the machine's locale must not change alerts.
    text = f"{when.day} {_MONTHS[when.month - 1]} {when.year}, {when:%H:%M} UTC"
    ago = _ago(when, now) if now is not None else None
    return f"{text} ({ago})" if ago else text


def _ago(when: datetime, now: datetime) -> str | None:
    seconds = (now - when).total_seconds()
    if seconds < -60:
        return None  # in the future: a clock or a page is off; the date says enough
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)} days ago"
    return None  # older than a month: the date alone reads better
