"""How a target's light checks read its page (``http`` or ``browser``), as functions over a
:class:`Store` (table ``check_modes``, migration ``m015_check_mode``).

A target starts with HTTP checks. When the server's HTML does not hold the posts the browser
saw, it is marked ``browser`` with the reason; after :data:`RETRY_HTTP_AFTER_S` an HTTP
check is tried again (a site may move to server rendering), and it marks itself again if
it still must.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.store.db import Store, translated
from watcher.timeutil import parse_iso, utc_now

HTTP = "http"
BROWSER = "browser"
RETRY_HTTP_AFTER_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CheckMode:
    """How ``target`` is checked, why, and since when."""

    target: str
    mode: str
    reason: str
    decided_at: str
    capture_id: int | None = None


@translated
def check_mode(store: Store, target: str) -> CheckMode | None:
    """The stored decision for ``target`` (None: never marked, HTTP checks)."""
    row = store.db.execute(
        "SELECT target, mode, reason, decided_at, capture_id FROM check_modes WHERE target = ?",
        [target],
    ).fetchone()
    return CheckMode(*row) if row else None


def checks_over_http(store: Store, target: str, now: datetime | None = None) -> bool:
    """True unless ``target`` was marked as needing the browser in the last week."""
    mode = check_mode(store, target)
    if mode is None or mode.mode != BROWSER:
        return True
    decided = parse_iso(mode.decided_at)
    age = ((now or datetime.now(UTC)) - decided).total_seconds() if decided else 0.0
    return not 0 <= age < RETRY_HTTP_AFTER_S


@translated
def set_check_mode(
    store: Store, target: str, mode: str, reason: str, capture_id: int | None = None
) -> None:
    """Record how ``target`` is to be checked from now on, and why."""
    store.db.execute(
        "INSERT INTO check_modes (target, mode, reason, decided_at, capture_id) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET mode = excluded.mode, "
        "reason = excluded.reason, decided_at = excluded.decided_at, "
        "capture_id = excluded.capture_id",
        [target, mode, reason, utc_now(), capture_id],
    )
