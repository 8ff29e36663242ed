"""The bot's own records, as functions over a :class:`Store`: the request log (who asked
what, when, and how it ended), pause and mute per target, which alerts were reviewed, and
which alert a button press may act on.

The tables come from migration ``m005_search``: ``bot_log`` and ``target_state``. SQLite
errors are translated into :class:`~watcher.errors.StoreError` by the same ``translated``
wrapper the Store uses (it needs the store as the first argument).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.models import CaptureStatus, Event
from watcher.store.db import Store, translated
from watcher.timeutil import to_iso, utc_now

FOREVER = "9999-12-31T23:59:59.999Z"  # a pause without an end
REFUSALS_LOGGED = 20  # refusals of one user in one chat logged one by one, per window
REFUSAL_WINDOW_S = 3600.0
COUNTED = "(counted)"  # the command of the one row that counts a user's further refusals


# -- the bot's request log -------------------------------------------------------------------
@translated
def log_request(
    store: Store,
    user_id: int | None,
    chat_id: int | None,
    command: str,
    args: str,
    result: str,
    detail: str = "",
) -> None:
    """Record one request to the bot: who asked what, where, when, and how it ended."""
    store.db["bot_log"].insert(
        {
            "at": utc_now(),
            "user_id": user_id,
            "chat_id": chat_id,
            "command": command[:64],
            "args": args[:300],
            "result": result,
            "detail": detail[:500],
        }
    )


@translated
def log_refusal(
    store: Store, user_id: int | None, chat_id: int | None, command: str, reason: str
) -> bool:
    """Record a refused request; True when it got a row of its own.

    A stranger (or a script) writing 200 messages must not write 200 rows: past
    ``REFUSALS_LOGGED`` refusals of the same user in the same chat within
    ``REFUSAL_WINDOW_S``, each further one only adds to the count on a single ``(counted)``
    row (``args`` holds the count, ``detail`` the last command and reason). At most
    ``REFUSALS_LOGGED`` + 1 rows per user, chat and window, whatever they send.
    """
    moment = datetime.now(UTC)
    now, since = to_iso(moment), to_iso(moment - timedelta(seconds=REFUSAL_WINDOW_S))
    rows = store.db.execute(
        "SELECT id, command, args FROM bot_log WHERE result = 'refused' AND user_id IS ? "
        "AND chat_id IS ? AND at >= ? ORDER BY id LIMIT ?",
        [user_id, chat_id, since, REFUSALS_LOGGED + 1],
    ).fetchall()
    counted = next((r for r in rows if r[1] == COUNTED), None)
    if counted is None and len(rows) < REFUSALS_LOGGED:
        log_request(store, user_id, chat_id, command, "", "refused", reason)
        return True
    total = (int(counted[2]) if counted and str(counted[2]).isdigit() else 0) + 1
    detail = (
        f"{total} more refused requests in this chat, counted rather than logged one by one; "
        f"last at {now}: {command[:64]} ({reason})"
    )[:500]
    if counted is None:
        values = {"at": now, "user_id": user_id, "chat_id": chat_id, "command": COUNTED}
        store.db["bot_log"].insert({**values, "args": "1", "result": "refused", "detail": detail})
    else:
        store.db["bot_log"].update(counted[0], {"args": str(total), "detail": detail})
    return False


@translated
def recent_requests(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The latest bot requests, newest first."""
    return list(store.db["bot_log"].rows_where(order_by="id desc", limit=limit))


# -- pause, mute, reviewed -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TargetState:
    """Pause and mute of one target (None: not set)."""

    target: str
    paused_until: str | None = None
    muted_until: str | None = None

    def paused(self, now: str) -> bool:
        """True while captures of the target are paused."""
        return bool(self.paused_until and self.paused_until > now)

    def muted(self, now: str) -> bool:
        """True while alerts of the target are muted."""
        return bool(self.muted_until and self.muted_until > now)


@translated
def target_state(store: Store, target: str) -> TargetState:
    """The pause and mute of ``target``."""
    row = store.db.execute(
        "SELECT paused_until, muted_until FROM target_state WHERE target = ?", [target]
    ).fetchone()
    return TargetState(target, *row) if row else TargetState(target)


@translated
def target_states(store: Store) -> dict[str, TargetState]:
    """Every target's pause and mute, by name."""
    rows = store.db.execute("SELECT target, paused_until, muted_until FROM target_state")
    return {r[0]: TargetState(*r) for r in rows.fetchall()}


def is_paused(store: Store, target: str, now: str | None = None) -> bool:
    """True when scheduled captures of ``target`` should be skipped now."""
    return target_state(store, target).paused(now or utc_now())


def is_muted(store: Store, target: str, now: str | None = None) -> bool:
    """True when alerts about ``target`` should be held now."""
    return target_state(store, target).muted(now or utc_now())


@translated
def set_paused(store: Store, target: str, until: str | None, by: int | None) -> None:
    """Pause captures of ``target`` until ``until`` (ISO UTC); None resumes them."""
    _upsert_state(store, target, {"paused_until": until, "paused_by": by})


@translated
def set_muted(store: Store, target: str, until: str | None, by: int | None) -> None:
    """Hold alerts of ``target`` until ``until`` (ISO UTC); None unmutes."""
    _upsert_state(store, target, {"muted_until": until, "muted_by": by})


@translated
def mark_reviewed(store: Store, event: Event, by: int) -> bool:
    """Record that ``by`` reviewed the alert for ``event``; False when it already was."""
    assert event.id is not None
    row = store.db.execute(
        "SELECT reviewed FROM target_state WHERE target = ?", [event.target]
    ).fetchone()
    reviewed = json.loads(row[0] or "{}") if row else {}
    if str(event.id) in reviewed:
        return False
    reviewed[str(event.id)] = {"by": by, "at": utc_now()}
    _upsert_state(store, event.target, {"reviewed": json.dumps(reviewed, sort_keys=True)})
    return True


@translated
def reviewed_by(store: Store, event: Event) -> int | None:
    """Who reviewed the alert for ``event`` (None: nobody yet)."""
    row = store.db.execute(
        "SELECT reviewed FROM target_state WHERE target = ?", [event.target]
    ).fetchone()
    entry = json.loads(row[0] or "{}").get(str(event.id)) if row else None
    return entry["by"] if entry else None


def _upsert_state(store: Store, target: str, values: dict[str, Any]) -> None:
    columns = [*values, "updated_at"]
    params = [*values.values(), utc_now()]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    store.db.execute(
        f"INSERT INTO target_state (target, {', '.join(columns)})"
        f" VALUES (?, {', '.join('?' * len(columns))})"
        f" ON CONFLICT(target) DO UPDATE SET {updates}",
        [target, *params],
    )


# -- alerts the bot may act on ---------------------------------------------------------------
@translated
def sent_alert(store: Store, event_id: int, chat_id: int, message_id: int) -> Event | None:
    """The event whose alert went to ``chat_id`` as message ``message_id``; None otherwise.

    This is how a button press is checked: its data names an event, and the press counts
    only when that very event was delivered as that very message in that chat.
    """
    for row in store.outbox_for_event(event_id):
        if row.status == "sent" and row.chat_id == str(chat_id) and message_id in row.message_ids:
            return row.event
    return None


@translated
def recent_blocked(store: Store, targets: list[str]) -> list[str]:
    """Targets whose latest capture was blocked (a login wall or a captcha)."""
    blocked = []
    for name in targets:
        last = store.last_capture(name)
        if last is not None and last.status == CaptureStatus.BLOCKED:
            blocked.append(name)
    return blocked
