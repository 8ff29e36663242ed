"""Scheduling: one APScheduler job per target on the shared asyncio loop.

Each job runs at the target's ``every`` plus random ``jitter``, never twice at once for one
target, and missed runs are coalesced into one. A job's first run falls at its target's own
place in the interval (:func:`spread_offset`, from a hash of its name), so a start or a
restart spreads thousands of targets evenly instead of sending them all at once. The daemon
owns the one scheduler and passes it in (the bot's Application is built without a JobQueue,
so PTB runs no second one).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.watchlist import Target

JOB_PREFIX = "capture:"
SCHEDULE_FILE = "schedule.json"
MAX_BACKOFF_S = 6 * 3600.0
# A target never captured is not made to wait a whole interval for its first look.
NEW_TARGET_SPREAD_S = 60.0


def spread_offset(name: str, interval: float) -> float:
    """Seconds into ``interval`` where ``name``'s runs fall: the same after every restart, and
    uniform over the interval across names (SHA-256 of the name as a fraction)."""
    fraction = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64
    return fraction * max(interval, 0.0)


def first_run_in(target: Target, captured_before: bool) -> float:
    """When ``target``'s job first runs after a start: at its place in its interval (for a
    target never captured, in the first :data:`NEW_TARGET_SPREAD_S` seconds)."""
    span = target.every if captured_before else min(target.every, NEW_TARGET_SPREAD_S)
    return spread_offset(target.name, span)


def job_id(target: Target | str) -> str:
    """Scheduler job id of a target."""
    name = target if isinstance(target, str) else target.name
    return f"{JOB_PREFIX}{name}"


def schedule_target(
    scheduler: AsyncIOScheduler,
    target: Target,
    run: Callable[[Target], Awaitable[object]],
    first_run_in: float = 0.0,
    interval: float | None = None,
) -> None:
    """Add or replace the job that captures ``target`` (every ``interval``, default its every)."""
    scheduler.add_job(
        run,
        interval_trigger(target, interval),
        args=[target],
        id=job_id(target),
        name=target.name,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(target.every), 1),
        next_run_time=datetime.now(UTC) + timedelta(seconds=first_run_in),
    )


def scheduled_targets(scheduler: AsyncIOScheduler) -> set[str]:
    """Names of the targets that have a capture job."""
    return {
        job.id[len(JOB_PREFIX) :] for job in scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)
    }


def interval_trigger(target: Target, interval: float | None = None) -> IntervalTrigger:
    """The trigger firing every ``interval`` seconds (default: the target's) plus its jitter."""
    seconds = target.every if interval is None else interval
    return IntervalTrigger(seconds=seconds, jitter=target.jitter or None, timezone=UTC)


def reschedule_target(scheduler: AsyncIOScheduler, target: Target, interval: float) -> None:
    """Change how often an existing job runs; its next run is one new interval from now."""
    scheduler.reschedule_job(job_id(target), trigger=interval_trigger(target, interval))


def backoff_interval(every: float, failure_streak: int) -> float:
    """How long to wait after a capture: doubling per failure after the first, capped.

    A dead page checked every 5 minutes for a week is noise and load on the site; the cap
    (6 hours, or ``every`` when that is longer) still notices when it comes back.
    """
    if failure_streak < 1:
        return every
    return min(every * 2 ** (failure_streak - 1), max(every, MAX_BACKOFF_S))


def next_run_times(scheduler: AsyncIOScheduler) -> dict[str, datetime | None]:
    """Next run time of each target's job (None while paused)."""
    return {
        job.id[len(JOB_PREFIX) :]: job.next_run_time
        for job in scheduler.get_jobs()
        if job.id.startswith(JOB_PREFIX)
    }


def write_schedule_file(data_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Write ``schedule.json`` atomically so ``watcher status`` never reads half a file."""
    path = data_dir / SCHEDULE_FILE
    tmp = path.with_name(f".{SCHEDULE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_schedule_file(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The running daemon's schedule by target name; empty when no daemon wrote one."""
    try:
        data = json.loads((data_dir / SCHEDULE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remove_schedule_file(data_dir: Path) -> None:
    """Forget the schedule (the daemon stopped: there is no next run)."""
    (data_dir / SCHEDULE_FILE).unlink(missing_ok=True)
