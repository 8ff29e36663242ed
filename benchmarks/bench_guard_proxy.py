"""The guard proxy's cost on a capture: the browser's part of a full capture (``take``: load,
screenshot, MHTML, extract, the 200 photos) of a 20-post x 10-photo page, through the
context's guard proxy (watcher now) against the same browser without it (the route alone, as
before issue 19 item 3: the naive baseline), in the same run.

Rounds alternate (proxy, no proxy, proxy, ...) so the load of a shared host falls on both
alike; every target is captured once per round, each mode with a data folder of its own. The
fixture site runs in a process of its own, as a watched site is remote.

Run: .venv/bin/python benchmarks/bench_guard_proxy.py [--targets 6] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from _common import (
    RemoteSite,
    fill_channel,
    measure_cpu,
    scratch_dir,
    serve_site_forever,
    site_in_own_process,
    write_watchlist,
)

from watcher.app import App
from watcher.capture.browser import Browser
from watcher.capture.guardproxy import GuardProxy
from watcher.steps.take import take
from watcher.watchlist import load_watchlist


class RouteOnlyBrowser(Browser):
    """The baseline: contexts without the guard proxy (the route guard alone)."""

    async def _new_context(self, session, proxy: GuardProxy):  # type: ignore[no-untyped-def]
        proxy.playwright_proxy = lambda: None  # type: ignore[method-assign]
        return await super()._new_context(session, proxy)


async def run_round(app: App, names: list[str]) -> tuple[list[float], float, float]:
    """Seconds of each target's ``take``; CPU seconds of python and of the browser tree."""
    walls = []
    with measure_cpu() as cpu:
        for name in names:
            t0 = time.perf_counter()
            taken = await take(app, app.watchlist.target(name))
            walls.append(time.perf_counter() - t0)
            assert len(taken.posts) == 20 and len(taken.snapshot.responses) > 200, name
    return walls, cpu.self_s, cpu.children_s


async def main(targets: int, rounds: int, base_url: str) -> None:
    names = [f"gp{n}" for n in range(targets)]
    root = scratch_dir("bench-guard-proxy")
    results: dict[str, dict[str, list[float]]] = {}
    modes = {"guard proxy": Browser, "no proxy (baseline)": RouteOnlyBrowser}
    apps = {}
    for mode, cls in modes.items():
        folder = root / mode.split()[0]
        folder.mkdir()

        path = write_watchlist(folder / "watchlist.yaml", RemoteSite(base_url), names)
        browser = cls(max_concurrent=1)
        await browser.start()
        apps[mode] = App.open(load_watchlist(path), folder / "data", browser=browser)
        results[mode] = {"wall": [], "python": [], "browser": []}
    try:
        for _warm in modes:  # one capture each first: Chromium's first pages are slower
            await take(apps[_warm], apps[_warm].watchlist.target(names[0]))
        for n in range(rounds):
            order = list(modes) if n % 2 == 0 else list(reversed(modes))
            for mode in order:
                walls, py, br = await run_round(apps[mode], names)
                results[mode]["wall"] += walls
                results[mode]["python"].append(py / len(names))
                results[mode]["browser"].append(br / len(names))
    finally:
        for app in apps.values():
            await app.browser.close()
            await app.close()
    print(f"## Guard proxy on a capture ({targets} targets x {rounds} rounds, 20x10 photos)")
    print()
    print("| mode | take, median s | take, mean s | python CPU-s / take | browser CPU-s / take |")
    print("|---|---|---|---|---|")
    mean = statistics.mean
    for mode, r in results.items():
        print(
            f"| {mode} | {statistics.median(r['wall']):.2f} | {mean(r['wall']):.2f} |"
            f" {mean(r['python']):.2f} | {mean(r['browser']):.2f} |"
        )
    p, b = results["guard proxy"], results["no proxy (baseline)"]
    wall = statistics.median(p["wall"]) / statistics.median(b["wall"])
    py = mean(p["python"]) / mean(b["python"])
    total = (mean(p["python"]) + mean(p["browser"])) / (mean(b["python"]) + mean(b["browser"]))
    print()
    print(f"- proxy / baseline: take median x{wall:.2f}, python CPU x{py:.2f}, CPU x{total:.2f}")


def build_site(site, targets: int) -> None:  # type: ignore[no-untyped-def]
    for n in range(targets):
        fill_channel(site, f"gp{n}", posts=20, images=10, seed_base=n)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-site"]:
        count = int(sys.argv[2])
        serve_site_forever(lambda site: build_site(site, count))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with site_in_own_process([__file__, "--serve-site", str(args.targets)]) as remote:
        asyncio.run(main(args.targets, args.rounds, remote.base_url))
