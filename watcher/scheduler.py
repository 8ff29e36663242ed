"""Scheduling: one APScheduler job per target on the shared asyncio loop.

Each job runs at the target's ``every`` plus random ``jitter``, never twice at once for one
target, and missed runs are coalesced into one. The scheduler is passed in so that the bot's
JobQueue scheduler (which is an AsyncIOScheduler) can be used instead of a second one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.watchlist import Target

JOB_PREFIX = "capture:"


def job_id(target: Target | str) -> str:
    """Scheduler job id of a target."""
    name = target if isinstance(target, str) else target.name
    return f"{JOB_PREFIX}{name}"


def schedule_target(
    scheduler: AsyncIOScheduler,
    target: Target,
    run: Callable[[Target], Awaitable[object]],
    first_run_in: float = 0.0,
) -> None:
    """Add or replace the job that captures ``target``."""
    scheduler.add_job(
        run,
        IntervalTrigger(seconds=target.every, jitter=target.jitter or None, timezone=UTC),
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
