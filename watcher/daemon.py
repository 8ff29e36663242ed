"""``watcher run``: the always-on daemon, one asyncio process.

    lock the data folder -> load the watchlist -> open the app -> try Telegram once -> one
    scheduler (the daemon's own) -> a capture job per target, a watchlist reload job, the
    alert sender, the bot -> wait for SIGTERM -> drain, flush alerts, close.

Telegram being down does not stop the watching: when it cannot be reached at start, captures
run anyway, alerts wait in the outbox, and the bot is attached once Telegram answers (the
connection's life is :mod:`watcher.bot.connection`'s). Only a refused token stops the start.

A target that keeps failing is captured less and less often (see
:func:`watcher.scheduler.backoff_interval`); each target's next run is written to
``DATA/schedule.json`` for ``watcher status``, which runs in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from watcher.alert.console import ConsoleSink, events_to_show, format_progress
from watcher.alert.outbox import OutboxSender, build_sinks
from watcher.alert.sinks import Sink
from watcher.alert.telegram import TelegramConnection, TelegramSink, load_token
from watcher.app import App
from watcher.bot.connection import attached_bot, configured_api_url, telegram_application
from watcher.bot.context import BotContext
from watcher.capture.pool import BrowserPool
from watcher.errors import WatcherError, WatchlistError
from watcher.kinds import WatchlistInvalid
from watcher.lock import DataFolderLock
from watcher.models import CaptureSummary, Event, EventKind
from watcher.pipeline import run_capture
from watcher.scheduler import (
    backoff_interval,
    first_run_in,
    job_id,
    next_run_times,
    remove_schedule_file,
    reschedule_target,
    schedule_target,
    write_schedule_file,
)
from watcher.steps.photo_text import PhotoReader, Reading, ocr_enabled
from watcher.steps.record import record_events
from watcher.store.bot_state import is_paused
from watcher.timeutil import to_iso, utc_now
from watcher.watchlist import Target, Watchlist, load_watchlist

log = logging.getLogger(__name__)

RELOAD_EVERY_S = 2.0
DRAIN_TIMEOUT_S = 30.0  # running captures get this long to finish at shutdown
SENDER_STOP_S = 5.0
FLUSH_TIMEOUT_S = 10.0
RELOAD_JOB = "watchlist-reload"


async def run_daemon(
    watchlist_path: Path,
    data_dir: Path,
    *,
    console: bool = True,
    quiet: bool = False,
    stop: asyncio.Event | None = None,
    telegram_base_url: str | None = None,
) -> int:
    """Watch every target until ``stop`` is set (or SIGTERM/SIGINT when no ``stop`` is given).

    With ``console`` it prints a line per capture (not when ``quiet``), every alert, and
    what happens to watcher itself (start, reloads, Telegram, stop).

    Returns 0 after a clean shutdown. Raises WatcherError when the data folder is in use by
    another watcher, the watchlist is invalid at start, or Telegram refuses the token (but
    not when Telegram cannot be reached: the bot then joins when it can).
    """
    owns_signals = stop is None
    stop = stop or asyncio.Event()
    with DataFolderLock(data_dir):
        watchlist = load_watchlist(watchlist_path)
        token = load_token(watchlist.alerts.telegram)
        api_url = telegram_base_url or configured_api_url(watchlist)
        app = App.open(watchlist, data_dir)
        if isinstance(app.browser, BrowserPool):  # `watcher status` shows the browser hosts
            app.browser.publish(data_dir)
        try:
            async with telegram_application(watchlist, token, api_url) as application:
                daemon = Daemon(app, Path(watchlist_path), console, quiet)
                print(describe_start(watchlist, data_dir, token), flush=True)
                ctx = BotContext(
                    app=app,
                    watchlist_path=daemon.watchlist_file.path,
                    capture=daemon.capture_now,
                    self_hosted=configured_api_url(watchlist) is not None,
                )
                async with attached_bot(application, ctx, daemon.telegram_is_back):
                    with _signals_set(stop, enabled=owns_signals):
                        sinks = build_sinks(app, telegram=TelegramConnection(token, api_url))
                        await daemon.serve(stop, sinks)
        finally:
            remove_schedule_file(data_dir)
            await app.close()
    if console:
        print(f"watcher stopped; data in {data_dir}", flush=True)
    return 0


def describe_start(watchlist: Watchlist, data_dir: Path, token: str | None) -> str:
    """The one line ``watcher run`` prints at start: what it watches and where alerts go."""
    telegram = watchlist.alerts.telegram
    # Other sinks (a file) need nothing at start: named as configured, before Telegram.
    others = ", ".join(name for name in watchlist.alerts.configured() if name != "telegram")
    if telegram is not None and token:
        alerts = f"{others} and " * bool(others) + f"telegram chats {telegram.chat_ids}"
    elif others:
        alerts = others + " (telegram: no token)" * (telegram is not None)
    else:
        why = "no token" if telegram is not None else "no telegram in the watchlist"
        alerts = f"console only ({why})"
    count = len(watchlist.targets)
    return f"watching {count} target{'s' * (count != 1)}; data in {data_dir}; alerts to: {alerts}"


class Daemon:
    """The running schedule: capture jobs, backoff, live reload, shutdown."""

    def __init__(self, app: App, watchlist_path: Path, console: bool, quiet: bool = False) -> None:
        self.app = app
        # The only scheduler in the process (the bot's Application has no JobQueue), so
        # capture jobs run on time whether or not Telegram answers.
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.console = ConsoleSink() if console else None
        self.progress = console and not quiet  # a line per capture, not only the alerts
        self.watchlist_file = WatchlistFile(watchlist_path)
        self.intervals: dict[str, float] = {}
        self.streaks: dict[str, int] = {}
        self.running: set[asyncio.Task] = set()
        self.sender: OutboxSender | None = None
        # Photos are read off the capture path, one at a time (images.ocr).
        self.reader = PhotoReader(app) if ocr_enabled(app.watchlist) else None

    async def serve(self, stop: asyncio.Event, sinks: dict[str, Sink]) -> None:
        """Schedule everything, run until ``stop`` is set, then shut down in order."""
        self.sender = OutboxSender(self.app, sinks)
        sender_stop = asyncio.Event()
        sender_task = asyncio.create_task(self.sender.run(sender_stop), name="alert-sender")
        sender_task.add_done_callback(_warn_if_died_early)
        reader_stop = asyncio.Event()
        reader_task = None
        if self.reader is not None:
            reader_task = asyncio.create_task(
                self.reader.run(reader_stop, self.read_photo), name="photo-reader"
            )
            reader_task.add_done_callback(_warn_if_died_early)
        try:
            for target in self.app.watchlist.targets:
                self.schedule(target)
            self.scheduler.add_job(
                self.reload_watchlist,
                IntervalTrigger(seconds=RELOAD_EVERY_S, timezone=UTC),
                id=RELOAD_JOB,
                max_instances=1,
                coalesce=True,
            )
            self.scheduler.start()
            self.write_schedule()
            await stop.wait()
            if self.console is not None and self.running:
                print(
                    f"stopping: letting {len(self.running)} running capture(s) finish "
                    f"(at most {DRAIN_TIMEOUT_S:g} s)",
                    flush=True,
                )
        finally:
            reader_stop.set()
            if reader_task is not None:
                # A photo half read is read again at the next start: nothing was recorded.
                reader_task.cancel()
                await asyncio.gather(reader_task, return_exceptions=True)
            await self.shutdown(sender_stop, sender_task)
            if self.reader is not None:
                await asyncio.to_thread(self.reader.close)

    async def shutdown(self, sender_stop: asyncio.Event, sender_task: asyncio.Task) -> None:
        """No new jobs; let captures finish (then cancel them); send what is queued."""
        if self.scheduler.running:
            self.scheduler.pause()
        await self.drain_captures(DRAIN_TIMEOUT_S)
        sender_stop.set()
        await _stop_task(sender_task, SENDER_STOP_S)
        assert self.sender is not None
        await self.sender.flush(FLUSH_TIMEOUT_S)
        await self.sender.close()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def drain_captures(self, timeout: float) -> None:
        """Wait up to ``timeout`` for running captures, then cancel the rest."""
        if not self.running:
            return
        _done, pending = await asyncio.wait(set(self.running), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # -- capture jobs ------------------------------------------------------------------------
    def schedule(self, target: Target) -> None:
        """Add (or replace) ``target``'s job at its normal interval, its first run at its own
        place in the interval (no burst of every target at a restart)."""
        captured = self.app.store.has_ok_capture(target.name)
        schedule_target(self.scheduler, target, self.capture, first_run_in(target, captured))
        self.intervals[target.name] = target.every
        self.streaks.setdefault(target.name, self.app.store.failure_streak(target.name))

    async def capture(self, target: Target) -> None:
        """The job: capture once, show the events, wake the sender, adjust the interval.

        A target paused from the chat (/pause) is skipped until its pause ends.
        """
        if is_paused(self.app.store, target.name):
            return
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        try:
            await self.capture_and_report(target)
        except asyncio.CancelledError:
            # Only our shutdown cancels a capture. The job is the task's root, so ending here
            # is safe, and APScheduler would otherwise log the cancellation as a crash.
            log.warning("capture of %s cancelled at shutdown", target.name)
        except WatcherError as exc:  # bookkeeping after the capture (the store) failed
            log.error("after capturing %s: %s", target.name, exc)
        finally:
            self.running.discard(task)

    async def capture_now(self, target: Target) -> CaptureSummary:
        """A capture asked for in the chat (/check): shown, alerted and drained like a
        scheduled one, and returned so the bot can report it."""
        if self.scheduler.state != STATE_RUNNING:
            raise WatcherError("watcher is shutting down; ask again once it is back")
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        try:
            return await self.capture_and_report(target)
        finally:
            self.running.discard(task)

    async def capture_and_report(self, target: Target) -> CaptureSummary:
        """Capture, show the events, wake the sender, adjust the interval and schedule file."""
        started = time.monotonic()
        summary = await run_capture(self.app, target)
        self.show(summary, time.monotonic() - started)
        if self.sender is not None:
            self.sender.wake()
        if self.reader is not None and summary.new_images:
            self.reader.wake()
        self.adjust_interval(target)
        self.write_schedule()
        return summary

    def read_photo(self, reading: Reading) -> None:
        """A photo was read: show its findings and send their alerts."""
        if self.console is not None:
            for event in reading.events:
                self.console.show(event)
        if reading.events and self.sender is not None:
            self.sender.wake()

    def telegram_is_back(self) -> None:
        """Telegram answers again: alerts waiting out a backoff of up to 5 min go now."""
        waiting = self.app.store.retry_now(TelegramSink.name, utc_now())
        if waiting and self.sender is not None:
            log.info("%d alert(s) waiting for Telegram are due now", waiting)
            self.sender.wake()

    def show(self, summary: CaptureSummary, seconds: float) -> None:
        """Print the capture's line (unless quiet) and its alerts on the console."""
        if self.console is None:
            return
        if self.progress:
            print(format_progress(summary, seconds), flush=True)
        for event in events_to_show(summary.events):
            # Unstored: a failure after the first of a streak, which is not alerted again
            # (the capture's line already says it failed).
            if event.id is not None:
                self.console.show(event)

    def adjust_interval(self, target: Target) -> None:
        """Back off a failing target; back to its normal interval after a success."""
        if self.current_target(target.name) != target:
            return  # removed or changed by a reload meanwhile: its new job stands
        streak = self.app.store.failure_streak(target.name)
        self.streaks[target.name] = streak
        wanted = backoff_interval(target.every, streak)
        if wanted == self.intervals.get(target.name):
            return
        with contextlib.suppress(JobLookupError):  # removed while we were capturing
            reschedule_target(self.scheduler, target, wanted)
            self.intervals[target.name] = wanted

    def current_target(self, name: str) -> Target | None:
        """The target called ``name`` in the running watchlist, if it is still there."""
        return self.app.watchlist.find(name)

    def write_schedule(self) -> None:
        """Persist each target's next run, interval and failure streak for ``watcher status``."""
        entries = {}
        for name, moment in next_run_times(self.scheduler).items():
            entries[name] = {
                "next_run_at": to_iso(moment) if moment else None,
                "interval": self.intervals.get(name),
                "failure_streak": self.streaks.get(name, 0),
            }
        try:
            write_schedule_file(self.app.data_dir, entries)
        except OSError as exc:  # only status display depends on it: warn, keep capturing
            log.warning("cannot write the schedule file in %s: %s", self.app.data_dir, exc)

    # -- live watchlist reload ---------------------------------------------------------------
    async def reload_watchlist(self) -> None:
        """The job: pick up edits to the watchlist; keep running the old one if it is broken."""
        try:
            change = self.watchlist_file.poll()
            if change is None:
                return
            if isinstance(change, WatchlistError):
                self.report_invalid(change)
            else:
                self.apply(change)
        except WatcherError as exc:  # the store failed while recording: say so, keep going
            log.error("watchlist reload: %s", exc)

    def apply(self, new: Watchlist) -> None:
        """Switch to ``new``: add, remove and reschedule jobs for the targets that changed."""
        old_alerts = self.app.watchlist.alerts
        old_browsers = self.app.watchlist.browsers
        old = {t.name: t for t in self.app.watchlist.targets}
        fresh = {t.name: t for t in new.targets}
        removed = [name for name in old if name not in fresh]
        added = [t for name, t in fresh.items() if name not in old]
        changed = [t for name, t in fresh.items() if name in old and old[name] != t]
        for name in removed:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id(name))
            self.intervals.pop(name, None)
            self.streaks.pop(name, None)
        self.app.watchlist = new
        for target in added + changed:
            self.schedule(target)
        self.write_schedule()
        if self.console is not None:
            print(_describe_reload(added, removed, changed), flush=True)
        if new.browsers != old_browsers:
            log.warning("the browsers settings changed: restart watcher to apply them")
        if new.alerts != old_alerts:
            # The sinks (bot token, API address) are built once at start.
            log.warning("the alerts settings changed: restart watcher to apply them")

    def report_invalid(self, exc: WatchlistError) -> None:
        """Keep the running watchlist; store one watchlist_invalid event for this content."""
        print(f"watchlist changed but cannot be used; still running the previous one.\n{exc}")
        event = Event(
            kind=EventKind.WATCHLIST_INVALID,
            target="watchlist",
            payload=WatchlistInvalid(message=str(exc)),
            created_at=utc_now(),
        )
        with self.app.store.transaction():
            (stored,) = record_events(self.app, [event])
        if self.console is not None:
            self.console.show(stored)
        if self.sender is not None:
            self.sender.wake()


def _warn_if_died_early(task: asyncio.Task) -> None:
    # Alerts queue up in the outbox while the sender is down; make that visible at once.
    if not task.cancelled() and task.exception() is not None:
        log.error("the alert sender stopped: %r; alerts stay queued", task.exception())


async def _stop_task(task: asyncio.Task, timeout: float) -> None:
    """Wait for a task told to stop; cancel it if it does not, and log how it ended."""
    await asyncio.wait({task}, timeout=timeout)
    if not task.done():
        log.warning("%s did not stop within %ss; cancelled", task.get_name(), timeout)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class WatchlistFile:
    """Notices edits of the watchlist file: cheap stat first, then a hash of the bytes.

    A broken file is only reported when it is still the same on the next check, so an editor
    caught halfway through writing does not raise a false alarm.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat = _stat_key(path)
        self._digest = _digest(path)  # of the content last acted upon
        self._suspect: str | None = None  # digest of broken content waiting for confirmation

    def poll(self) -> Watchlist | WatchlistError | None:
        """The new watchlist, or the error of a broken one, or None when nothing changed."""
        stat = _stat_key(self.path)
        if stat == self._stat and self._suspect is None:
            return None
        self._stat = stat
        digest = _digest(self.path)
        if digest == self._digest:  # touched, or changed back: nothing to do
            self._suspect = None
            return None
        try:
            watchlist = load_watchlist(self.path)
        except WatchlistError as exc:
            if self._suspect != digest:
                self._suspect = digest
                return None
            self._suspect, self._digest = None, digest
            return exc
        self._suspect, self._digest = None, digest
        return watchlist


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _describe_reload(added: list[Target], removed: list[str], changed: list[Target]) -> str:
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("added", [t.name for t in added]),
            ("removed", removed),
            ("changed", [t.name for t in changed]),
        )
        if names
    ]
    return "watchlist reloaded" + (f" ({'; '.join(parts)})" if parts else " (no target changed)")


# -- signals -------------------------------------------------------------------------------
@contextlib.contextmanager
def _signals_set(stop: asyncio.Event, *, enabled: bool) -> Iterator[None]:
    """SIGTERM (systemd stop) and SIGINT (Ctrl-C) set ``stop`` for a clean shutdown."""
    loop = asyncio.get_running_loop()
    installed = []
    if enabled:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
