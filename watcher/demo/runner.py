"""``watcher demo``: the bundled demo site, watched for a minute, alerts on the terminal."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.alert.console import ConsoleSink, events_to_show, format_summary
from watcher.app import CUSTODY_KEY_NAME, App, resolve_data_dir
from watcher.demo.scenario import DemoScenario, build_demo_site
from watcher.pipeline import run_capture
from watcher.scheduler import schedule_target
from watcher.timeutil import utc_now
from watcher.watchlist import Target, load_watchlist

SCENARIO_STEP_S = 4.0


async def run_demo(args: argparse.Namespace) -> int:
    """Start the demo site, schedule every target, print alerts for ``args.seconds``."""
    watchlist = load_watchlist(args.watchlist)
    data_dir = _demo_data_dir(args)
    site = build_demo_site()
    scenario = DemoScenario(site)
    app = App.open(watchlist, data_dir)
    sink = ConsoleSink()
    running: set[asyncio.Task] = set()

    async def capture(target: Target) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            summary = await run_capture(app, target)
            if summary.baseline or summary.status != "ok":
                print(format_summary(summary), flush=True)
            for event in events_to_show(summary.events):
                sink.show(event)
        finally:
            running.discard(task)

    async def change_site() -> None:
        # On the event loop, not in a worker thread: a step is instant, and a thread still
        # running when the demo ends was cancelled with an "Error running job" traceback.
        print(f"  (demo site: {scenario.step()})", flush=True)

    print(f"demo site on {site.base_url}; watching for {args.seconds:g}s (Ctrl-C stops)")
    scheduler = AsyncIOScheduler()
    for target in watchlist.targets:
        schedule_target(scheduler, target, capture)
    scheduler.add_job(change_site, IntervalTrigger(seconds=SCENARIO_STEP_S), id="demo-scenario")
    scheduler.start()
    try:
        await asyncio.sleep(args.seconds)
    finally:
        # Pause first: shutting the scheduler down would cancel captures still running.
        scheduler.pause()
        if running:
            await asyncio.wait(running, timeout=60)
        scheduler.shutdown(wait=False)
        await app.close()
        site.stop()
    print(f"\ndatabase: {data_dir / 'watcher.db'}\nevidence: {data_dir / 'blobs'}")
    print(f"pull an evidence bundle: watcher export --data {data_dir} --target ivory-dealer-kh")
    print(
        f"check it against this run's key: watcher verify BUNDLE --key "
        f"{data_dir / 'keys' / CUSTODY_KEY_NAME}  (others get the fingerprint from "
        f"`watcher key --data {data_dir}`)"
    )
    return 0


def _demo_data_dir(args: argparse.Namespace) -> Path:
    # A fresh folder per run: the demo site starts from the same posts each time, so an old
    # database would report them all as edited or deleted.
    base = resolve_data_dir(Path(args.watchlist), args.data)
    stamp = utc_now().replace(":", "").replace("-", "").split(".")[0]
    return base / f"demo-{stamp}"
