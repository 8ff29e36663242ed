"""Soak: ``--captures`` captures in one real ``watcher run`` (a subprocess, with alerts to a
fake Telegram on loopback); the RSS of the watcher process and the PSS of its browser tree
(Playwright driver + Chromium) are sampled every ``--every`` captures. Target: no upward trend
after the first 10 % (the least-squares slope is reported, MiB per 100 captures).

The site changes as it goes (a new post on some channel every few seconds), so posts,
versions, events, outbox rows and blobs keep growing as in real life. The Browser relaunches
Chromium every 200 contexts (``recycle_after``), so the browser's curve is a saw-tooth.
Baseline (same run): the naive way, a browser launched per capture, over a few captures: its
peak memory per capture.

Run: .venv/bin/python benchmarks/bench_soak.py [--captures 300] [--images 2] [--targets 8]
``--captures 2000`` takes about 30-60 min on a 2-core machine (targets every 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    REPO_ROOT,
    PeakMemory,
    add_fresh_post,
    add_repo_root,
    descendants,
    fill_channel,
    mib,
    pss_bytes,
    rss_bytes,
    scratch_dir,
    slope,
    write_watchlist,
)
from bench_capture import naive_capture
from playwright.async_api import async_playwright

from watcher.demo.site import DemoSite

add_repo_root()
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

CHAT = -100555
NEW_POST_EVERY_S = 5.0


def capture_counts(data: Path) -> tuple[int, int]:
    """(captures, failed captures) so far, read-only beside the daemon's connection."""
    db = data / "watcher.db"
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(status != 'ok'), 0) FROM captures"
            ).fetchone()
            return row[0], row[1]
    except sqlite3.Error:
        return 0, 0


async def grow_site(site: DemoSite, names: list[str], images: int) -> None:
    """A new post on one channel or another every few seconds, until cancelled."""
    for n in itertools.count(1):
        await asyncio.sleep(NEW_POST_EVERY_S)
        add_fresh_post(site, names[n % len(names)], f"fresh stock {n}", images, seed=n)


def start_daemon(
    root: Path, site: DemoSite, fake: FakeTelegram, names: list[str]
) -> subprocess.Popen:
    """``python -m watcher run`` on a watchlist of ``names``, every 5 s, alerts to ``fake``."""
    alerts = (
        "defaults: {every: 5s, jitter: 0s}\n"
        f"alerts:\n  telegram:\n    chat_ids: [{CHAT}]\n    api_url: {fake.base_url}\n"
    )
    watchlist = write_watchlist(root / "watchlist.yaml", site, names, extra=alerts)
    env = {**os.environ, "WATCHER_TELEGRAM_TOKEN": fake.token}
    cmd = [sys.executable, "-m", "watcher", "run", "--watchlist", str(watchlist)]
    return subprocess.Popen(
        [*cmd, "--data", str(root / "data")],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.log", "wb"),  # the daemon's log, closed when it exits
    )


async def soak(site: DemoSite, fake: FakeTelegram, names: list[str], args) -> list[tuple]:
    """Run the daemon until ``args.captures`` captures; (captures, RSS, browser PSS) samples."""
    root = scratch_dir("watcher-bench-soak-")
    daemon = start_daemon(root, site, fake, names)
    grower = asyncio.create_task(grow_site(site, names, args.images))
    samples, start, next_sample = [], time.perf_counter(), args.every
    try:
        done = failed = 0
        while done < args.captures:
            if daemon.poll() is not None:
                log = (root / "daemon.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"watcher run stopped early; the end of its log:\n{log}")
            await asyncio.sleep(0.5)
            done, failed = capture_counts(root / "data")
            if done >= next_sample:
                kids = descendants(daemon.pid)
                rss, pss = rss_bytes(daemon.pid), sum(pss_bytes(p) for p in kids)
                samples.append((done, rss, pss))
                next_sample += args.every
                print(
                    f"  {done:5d} captures  watcher {mib(rss):>8}  browser {mib(pss):>8}"
                    f"  ({len(kids)} procs, {time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    finally:
        grower.cancel()
        daemon.terminate()
        daemon.wait(60)
    alerts = len(fake.sent_messages(CHAT))
    print(
        f"- {done} captures in {time.perf_counter() - start:.0f} s by one `watcher run` "
        f"({len(names)} targets every 5 s), {failed} failed; {alerts} alert messages sent; "
        f"exit code {daemon.returncode}"
    )
    return samples


def report_trend(samples: list[tuple], captures: int) -> None:
    """Slope of each curve after the first 10 % of captures."""
    after = [s for s in samples if s[0] > captures // 10]
    xs = [float(s[0]) for s in after]
    for label, column in (("watcher process RSS", 1), ("browser tree PSS", 2)):
        ys = [s[column] / 2**20 for s in after]
        per100 = 100 * slope(xs, ys)
        print(
            f"- {label}: {ys[0]:.0f} -> {ys[-1]:.0f} MiB (min {min(ys):.0f}, max {max(ys):.0f}); "
            f"**slope {per100:+.2f} MiB per 100 captures** after the first 10 %"
        )


async def naive_baseline(site: DemoSite, names: list[str], count: int) -> None:
    """Peak memory of ``count`` naive captures (a fresh browser each)."""
    with PeakMemory(every=0.2) as peak:
        async with async_playwright() as playwright:
            for name in itertools.islice(itertools.cycle(names), count):
                await naive_capture(playwright, f"{site.base_url}/s/{name}")
    print(
        f"- baseline, naive browser-per-capture ({count} captures): peak python "
        f"{mib(peak.peak_self)}, peak browser {mib(peak.peak_browser)} (flat by construction, "
        "paid in launch time instead)"
    )


async def main(args: argparse.Namespace) -> None:
    """Build the site, soak, report the trend and the naive baseline."""
    print(
        f"## Soak ({args.captures} captures in one `watcher run`, {args.targets} targets x 20 "
        f"posts x {args.images} images, sampled every {args.every})"
    )
    with DemoSite() as site, FakeTelegram() as fake:
        names = [f"soak{n}" for n in range(args.targets)]
        for n, name in enumerate(names):
            fill_channel(site, name, posts=20, images=args.images, seed_base=500 + n)
        samples = await soak(site, fake, names, args)
        report_trend(samples, args.captures)
        await naive_baseline(site, names, args.naive)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=300)
    parser.add_argument("--images", type=int, default=2, help="photos per post")
    parser.add_argument("--every", type=int, default=20, help="sample every N captures")
    parser.add_argument("--targets", type=int, default=8, help="fixture channels watched")
    parser.add_argument("--naive", type=int, default=3, help="naive baseline captures")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
