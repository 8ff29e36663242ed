"""Alert latency: from a post appearing on the fixture site to the fake Telegram server
receiving its alert, through the real daemon (``watcher.daemon.run_daemon``, in-process).

Targets capture ``every: 30s`` with no jitter; each probe post is added at a random moment,
so the wait for the next capture is uniform over the interval. The bound to meet is
p95 < interval + 5 s. Baseline (same run): the floor a scheduler with this interval cannot
beat, a uniform wait over the interval (p50 = interval/2, p95 = 0.95 x interval), with the
same targets' measured capture time added.

Run: .venv/bin/python benchmarks/bench_latency.py [--samples 12] [--targets 3] [--every 30]
(about samples / targets x 1.5 x every seconds: ~2 min with the defaults)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import time
from pathlib import Path

from _common import add_repo_root, percentile, scratch_dir, write_watchlist

from watcher.daemon import run_daemon
from watcher.demo.site import DemoSite

add_repo_root()
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

CHAT = -100777


def alert_times(fake: FakeTelegram) -> list[tuple[float, str]]:
    """(monotonic time, all text fields) of every successful send to the chat."""
    return [(c.at, " ".join(c.fields.values())) for c in fake.sent_messages(CHAT)]


async def wait_for_alert(fake: FakeTelegram, token: str, timeout: float) -> float | None:
    """Monotonic time the first alert carrying ``token`` arrived, or None at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, text in alert_times(fake):
            if token in text:
                return at
        await asyncio.sleep(0.1)
    return None


def capture_count(data: Path) -> int:
    """Captures recorded so far (read-only, beside the daemon's connection)."""
    db = data / "watcher.db"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute("SELECT count(*) FROM captures").fetchone()[0]
        except sqlite3.Error:
            return 0


async def probe(
    site: DemoSite, fake: FakeTelegram, channel: str, n: int, every: float
) -> float | None:
    """Wait a random moment, add a probe post, return seconds until its alert."""
    await asyncio.sleep(random.uniform(0, every))
    token = f"latencyprobe{channel}x{n}"
    site.add_post(channel, f"new carving {token} inbox for price")
    appeared = time.monotonic()
    arrived = await wait_for_alert(fake, token, timeout=every * 3 + 30)
    return None if arrived is None else arrived - appeared


async def probes_for(
    site: DemoSite, fake: FakeTelegram, channel: str, count: int, every: float
) -> list[float | None]:
    """``count`` probes, one after another, on one channel."""
    return [await probe(site, fake, channel, n, every) for n in range(count)]


async def measure(args: argparse.Namespace, site: DemoSite, fake: FakeTelegram) -> list:
    """Run the daemon and the probes; returns the latencies (None: alert never came)."""
    root = scratch_dir("watcher-bench-latency-")
    names = [f"lat{n}" for n in range(args.targets)]
    for name in names:
        site.channel(name)
        site.add_post(name, "old stock, first post")
    alerts = (
        f"defaults: {{every: {args.every:g}s, jitter: 0s}}\n"
        f"alerts:\n  telegram:\n    chat_ids: [{CHAT}]\n    api_url: {fake.base_url}\n"
    )
    watchlist = write_watchlist(root / "watchlist.yaml", site, names, extra=alerts)
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(watchlist, root / "data", console=False, stop=stop))
    while capture_count(root / "data") < len(names):  # the baselines first
        if daemon.done():
            daemon.result()
        await asyncio.sleep(0.2)
    per_target = -(-args.samples // len(names))
    results = await asyncio.gather(
        *(probes_for(site, fake, n, per_target, args.every) for n in names)
    )
    stop.set()
    await daemon
    return [x for r in results for x in r][: args.samples]


def report(latencies: list[float | None], every: float) -> None:
    """Print p50/p95 against the bound and the scheduler floor."""
    got = [x for x in latencies if x is not None]
    p50, p95 = percentile(got, 50), percentile(got, 95)
    print(f"## Alert latency (every: {every:g}s, jitter 0; {len(got)}/{len(latencies)} probes)")
    print(
        f"- watcher: **p50 {p50:.1f} s, p95 {p95:.1f} s**, max {max(got):.1f} s "
        f"(target p95 < {every + 5:.0f} s: {'met' if p95 < every + 5 else 'NOT met'})"
    )
    print(f"- samples (s): {', '.join(f'{x:.1f}' for x in sorted(got))}")
    print(
        f"- baseline (uniform wait for the next run of a {every:g} s schedule, no work): "
        f"p50 {every / 2:.1f} s, p95 {0.95 * every:.1f} s"
    )


async def main(args: argparse.Namespace) -> None:
    """Fixture site + fake Telegram + daemon; probes; report."""
    with DemoSite() as site, FakeTelegram() as fake:
        os.environ["WATCHER_TELEGRAM_TOKEN"] = fake.token
        latencies = await measure(args, site, fake)
    report(latencies, args.every)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--every", type=float, default=30.0)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
