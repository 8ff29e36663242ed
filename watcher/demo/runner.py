"""``watcher demo``: the bundled demo site, watched for a minute, alerts on the terminal.

The demo captures only its own targets: those of the watchlist whose address is a page of
the demo site on this machine (http://127.0.0.1:PORT/s/ivory_dealer_kh, .../shop/...).
A real dealer's account in the same watchlist is never touched by a demo run.
``--site-only`` serves the site alone, to try ``check``, ``run`` and ``probe`` against it.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.alert.console import ConsoleSink, events_to_show, format_summary
from watcher.app import CUSTODY_KEY_NAME, App, resolve_data_dir
from watcher.demo.scenario import DEMO_PATHS, DEMO_PORT, DemoScenario, build_demo_site
from watcher.demo.site import DemoSite
from watcher.errors import WatcherError
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.scheduler import schedule_target
from watcher.timeutil import utc_now
from watcher.watchlist import Target, Watchlist, load_watchlist

SCENARIO_STEP_S = 4.0
DEMO_HOST = "127.0.0.1"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class DemoTargets:
    """The watchlist split into what the demo captures and what it leaves alone."""

    watched: list[Target]  # addresses moved to the running demo site's port
    skipped: list[Target]
    moved_from: set[int]  # ports the watchlist named that are not the demo site's


def demo_url(url: str, port: int) -> str | None:
    """``url`` on the demo site at ``port`` if it is a demo page on this machine, else None."""
    parts = urlsplit(url)
    if parts.scheme != "http" or (parts.hostname or "").lower() not in _LOOPBACK:
        return None
    if parts.path.rstrip("/") not in DEMO_PATHS:
        return None
    return urlunsplit(("http", f"{DEMO_HOST}:{port}", parts.path, parts.query, ""))


def split_targets(watchlist: Watchlist, port: int) -> DemoTargets:
    """Which targets the demo watches (at ``port``) and which it skips."""
    watched, skipped, moved_from = [], [], set()
    for target in watchlist.targets:
        url = demo_url(target.url, port)
        if url is None:
            skipped.append(target)
            continue
        if (urlsplit(target.url).port or 80) != port:
            moved_from.add(urlsplit(target.url).port or 80)
        watched.append(target.model_copy(update={"url": url}))
    return DemoTargets(watched, skipped, moved_from)


def start_demo_site(port: int, site_only: bool) -> DemoSite:
    """The populated demo site on ``port``; a port in use is one line naming a free one."""
    try:
        return build_demo_site(port)
    except OSError as exc:
        free = free_port(port)
        again = f"watcher demo{' --site-only' if site_only else ''} --port {free}"
        if exc.errno == errno.EADDRINUSE:
            raise WatcherError(f"port {port} is in use: {again}") from None
        if exc.errno == errno.EACCES:
            raise WatcherError(f"port {port} needs administrator rights: {again}") from None
        raise WatcherError(f"the demo site cannot use port {port} ({exc}): {again}") from None


def free_port(after: int) -> int:
    """A port on the demo host that nothing listens on: the first above ``after`` if any."""
    for port in range(max(after + 1, 1024), min(after + 200, 65535) + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((DEMO_HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((DEMO_HOST, 0))  # any free port the system picks
        return probe.getsockname()[1]


def main(args: argparse.Namespace) -> int:
    """``watcher demo``: the demo, or with ``--site-only`` only its site."""
    if args.port is None:
        args.port = DEMO_PORT
    if args.site_only:
        return serve_site(args)
    return asyncio.run(run_demo(args))


def serve_site(args: argparse.Namespace) -> int:
    """Serve the demo site (changing every few seconds) until Ctrl-C."""
    site = start_demo_site(args.port, site_only=True)
    scenario = DemoScenario(site)
    print(f"demo site on {site.base_url}: {', '.join(site.base_url + p for p in DEMO_PATHS)}")
    for line in _site_hints(args, site):
        print(line)
    print(f"it changes every {SCENARIO_STEP_S:g}s; Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(SCENARIO_STEP_S)
            print(f"  (demo site: {scenario.step()})", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    print("\ndemo site stopped")
    return 0


def _site_hints(args: argparse.Namespace, site: DemoSite) -> list[str]:
    probe = f"watcher probe {site.base_url}{DEMO_PATHS[0]} --platform telegram"
    try:
        watchlist = load_watchlist(args.watchlist)
    except WatcherError:  # a broken or missing watchlist does not stop the site
        return [f"try: {probe}"]
    demo = split_targets(watchlist, site.port)
    if not demo.watched:
        return [f"try: {probe}  ({args.watchlist} has no target on the demo site)"]
    if demo.moved_from:
        ports = ", ".join(str(p) for p in sorted(demo.moved_from))
        return [
            f"try: {probe}  ({args.watchlist} points at port {ports}: change it to "
            f"{site.port} to try check and run)"
        ]
    return [f"try: watcher check {demo.watched[0].name}   watcher run   {probe}"]


async def run_demo(args: argparse.Namespace) -> int:
    """Start the demo site, schedule its targets, print alerts for ``args.seconds``."""
    watchlist = load_watchlist(args.watchlist)
    demo = split_targets(watchlist, args.port)
    if not demo.watched:
        raise WatcherError(
            f"no target of {args.watchlist} is on the demo site (an address like "
            f"http://{DEMO_HOST}:{DEMO_PORT}{DEMO_PATHS[0]}): run the demo from the watcher "
            "folder, or pass --watchlist with the bundled watchlist.yaml"
        )
    data_dir = _demo_data_dir(args)
    site = start_demo_site(args.port, site_only=False)
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
            if summary.baseline or summary.status != CaptureStatus.OK:
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
    if demo.skipped:
        print(f"not on the demo site, so not captured: {_names(demo.skipped)}")
    if demo.moved_from:
        ports = ", ".join(str(p) for p in sorted(demo.moved_from))
        print(
            f"{args.watchlist} names port {ports}; the demo site is on {site.port}, watched there"
        )
    scheduler = AsyncIOScheduler()
    for target in demo.watched:
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
    watchlist_arg = "" if args.watchlist == "watchlist.yaml" else f" --watchlist {args.watchlist}"
    print(
        f"pull an evidence bundle: watcher export{watchlist_arg} --data {data_dir} "
        f"--target {demo.watched[0].name}"
    )
    print(
        f"check it against this run's key: watcher verify BUNDLE --key "
        f"{data_dir / 'keys' / CUSTODY_KEY_NAME}  (others get the fingerprint from "
        f"`watcher key --data {data_dir}`)"
    )
    return 0


def _names(targets: list[Target], shown: int = 5) -> str:
    names = ", ".join(t.name for t in targets[:shown])
    return names + (f" and {len(targets) - shown} more" if len(targets) > shown else "")


def _demo_data_dir(args: argparse.Namespace) -> Path:
    # A fresh folder per run: the demo site starts from the same posts each time, so an old
    # database would report them all as edited or deleted.
    base = resolve_data_dir(Path(args.watchlist), args.data)
    stamp = utc_now().replace(":", "").replace("-", "").split(".")[0]
    return base / f"demo-{stamp}"
