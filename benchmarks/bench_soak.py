"""Soak: many captures in one process with one shared Browser (as in ``watcher run``); the
RSS of this process and the PSS of the browser tree (Playwright driver + Chromium) are
sampled every ``--every`` captures. Target: no upward trend after the first 10 % (the
least-squares slope is reported, MiB per 100 captures).

The site changes as it goes (a new post every 5th capture), so posts, versions, events and
blobs keep growing as in real life. The Browser relaunches Chromium every 200 contexts
(``recycle_after``), so the browser's curve is a saw-tooth. Baseline (same run): the naive
way, a browser launched per capture, over a few captures: its peak memory per capture.

Run: .venv/bin/python benchmarks/bench_soak.py [--captures 300] [--images 2]
``--captures 2000`` takes about 1.5-2 h on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from _common import (
    PeakMemory,
    add_fresh_post,
    fill_channel,
    mib,
    sample_memory,
    slope,
    write_watchlist,
)
from bench_capture import naive_capture
from playwright.async_api import async_playwright

from watcher.app import App
from watcher.capture.browser import Browser
from watcher.demo.site import DemoSite
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist

TARGETS = 4


async def soak(site: DemoSite, names: list[str], args: argparse.Namespace) -> list[tuple]:
    """``args.captures`` captures round-robin; (captures done, self RSS, browser PSS) samples."""
    root = Path(tempfile.mkdtemp(prefix="watcher-bench-soak-"))
    watchlist = load_watchlist(write_watchlist(root / "watchlist.yaml", site, names))
    browser = Browser(max_concurrent=2)
    app = App.open(watchlist, root / "data", browser=browser)
    samples, failures, start = [], 0, time.perf_counter()
    targets = itertools.cycle(app.watchlist.targets)
    for n in range(1, args.captures + 1):
        target = next(targets)
        if n % 5 == 0:
            add_fresh_post(site, target.name, f"fresh stock {n}", args.images, seed=n)
        summary = await run_capture(app, target)
        failures += summary.status != "ok"
        if n % args.every == 0:
            mem = sample_memory()
            samples.append((n, mem.self_rss, mem.browser_pss))
            print(
                f"  {n:5d} captures  python {mib(mem.self_rss):>8}  "
                f"browser {mib(mem.browser_pss):>8}"
                f"  ({mem.browser_procs} procs, {time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    print(
        f"- {args.captures} captures in {time.perf_counter() - start:.0f} s, {failures} failed, "
        f"Chromium launched {browser.launches} times (recycle_after={browser.recycle_after})"
    )
    await app.close()
    await browser.close()
    return samples


def report_trend(samples: list[tuple], captures: int) -> None:
    """Slope of each curve after the first 10 % of captures."""
    after = [s for s in samples if s[0] > captures // 10]
    xs = [float(s[0]) for s in after]
    for label, column in (("python process RSS", 1), ("browser tree PSS", 2)):
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
        f"## Soak ({args.captures} captures, {TARGETS} targets x 20 posts x {args.images} "
        f"images, sampled every {args.every})"
    )
    with DemoSite() as site:
        names = [f"soak{n}" for n in range(TARGETS)]
        for n, name in enumerate(names):
            fill_channel(site, name, posts=20, images=args.images, seed_base=500 + n)
        samples = await soak(site, names, args)
        report_trend(samples, args.captures)
        await naive_baseline(site, names, args.naive)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=300)
    parser.add_argument("--images", type=int, default=2, help="photos per post")
    parser.add_argument("--every", type=int, default=20, help="sample every N captures")
    parser.add_argument("--naive", type=int, default=3, help="naive baseline captures")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
