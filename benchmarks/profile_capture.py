"""Where one capture's time goes: wall time of each step of ``take`` and ``keep_files``
(called one by one), then cProfile of a whole ``run_capture`` (CPU hot spots).

The page is a fixture channel of 20 posts with 10 photos each. Wall time shows waiting
(browser, network, sleeps) that cProfile cannot see; cProfile shows Python CPU.

Run: .venv/bin/python benchmarks/profile_capture.py [--out /tmp/capture.prof] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import fill_channel, scratch_dir, write_watchlist

from watcher.app import App
from watcher.capture.archive import ResponseRecorder, mhtml_snapshot
from watcher.capture.browser import Browser
from watcher.capture.dedup import KnownPayloads, web_archive
from watcher.capture.media import download_images
from watcher.capture.page import _content, _open, take_screenshot
from watcher.demo.site import DemoSite
from watcher.detect.images import perceptual_hashes
from watcher.pipeline import run_capture
from watcher.steps.keep import _metadata, keep_files
from watcher.steps.take import take
from watcher.timeutil import utc_now
from watcher.watchlist import load_watchlist


class Stopwatch:
    """Wall-clock seconds per named step."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    async def run(self, name: str, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable``, timing it as ``name``."""
        start = time.perf_counter()
        result = await awaitable
        self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - start
        return result

    def call(self, name: str, func: Callable[[], Any]) -> Any:
        """Call ``func``, timing it as ``name``."""
        start = time.perf_counter()
        result = func()
        self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - start
        return result

    def report(self, title: str) -> None:
        """Print the steps, longest first, with their share."""
        total = sum(self.steps.values())
        print(f"### {title} (sum {total:.2f} s)")
        for name, seconds in sorted(self.steps.items(), key=lambda kv: -kv[1]):
            print(f"- {name}: {seconds:.3f} s ({100 * seconds / total:.0f} %)")


async def take_steps(app: App, url: str, watch: Stopwatch) -> None:
    """The browser part of a capture (what ``take`` + ``load_pages`` do), step by step."""
    target = app.watchlist.targets[0]
    adapter = target.adapter()
    guard = app.browser.guard(target.allow_private_network)
    async with app.browser.context(None, guard) as context:
        recorder = ResponseRecorder()
        page = await watch.run("new_page", context.new_page())
        recorder.attach(page)
        await watch.run("goto + settle (load, networkidle)", _open(page, url, 45))
        html = await watch.run("page.content()", _content(page))
        posts = watch.call("adapter.extract", lambda: adapter.extract(html, url))
        watch.call(
            "adapter.detect_block", lambda: adapter.detect_block(html, url, url, posts, None)
        )
        await watch.run("page.content() again (after grow/see-more)", _content(page))
        watch.call("adapter.extract again", lambda: adapter.extract(html, url))
        await watch.run("full-page screenshot", take_screenshot(page))
        await watch.run("MHTML snapshot", mhtml_snapshot(page))
        urls = [u for p in posts for u in p.image_urls]
        await watch.run(
            f"download_images ({len(urls)})",
            download_images(context, urls, url, blobs=app.blobs, guard=guard),
        )
        await watch.run("recorder.finish (response bodies)", recorder.finish())
    await watch.run("context close (incl.)", asyncio.sleep(0))


def _first_archive(taken, meta) -> bytes:
    """The WACZ as a first capture makes it (nothing archived before, nothing revisited)."""
    return web_archive(taken.snapshot, meta, taken.cookie_values, KnownPayloads(), {}).wacz


async def keep_steps(app: App, watch: Stopwatch) -> None:
    """The file part (``keep_files``) step by step: WACZ, perceptual hashes, blob writes."""
    target = app.watchlist.targets[0]
    taken = await take(app, target)
    meta = _metadata(app, target, taken, utc_now())
    watch.call("WACZ (build_warc + build_wacz)", lambda: _first_archive(taken, meta))
    # Downloads are streamed to the blob store; the hashes read them back from there.
    datas = [app.blobs.read(d.sha256) for d in taken.downloads.values() if d.sha256]
    watch.call(f"perceptual_hashes x{len(datas)}", lambda: [perceptual_hashes(d) for d in datas])
    profiler = cProfile.Profile()
    profiler.enable()
    watch.call("keep_files (everything, new data dir)", lambda: keep_files(app.blobs, taken, meta))
    profiler.disable()
    print_top(profiler, 20, "cProfile of keep_files (first capture: new blobs, WACZ)")


def print_top(profiler: cProfile.Profile, top: int, title: str) -> None:
    """Print the ``top`` functions by own time."""
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(top)
    print(f"### {title}\n```")
    print("\n".join(_trim(buffer.getvalue()).splitlines()[: top + 2]))
    print("```")


def profile_capture(app: App, out: Path, top: int, label: str) -> None:
    """cProfile one ``run_capture`` on a running loop; print the top functions."""
    target = app.watchlist.targets[0]
    profiler = cProfile.Profile()
    loop = asyncio.get_event_loop()
    start = time.perf_counter()
    profiler.enable()
    summary = loop.run_until_complete(run_capture(app, target))
    profiler.disable()
    wall = time.perf_counter() - start
    profiler.dump_stats(out)
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(top)
    print(f"### cProfile of run_capture, {label}: {wall:.2f} s wall, status {summary.status}")
    print(f"(saved to {out}; `python -m pstats {out}`)\n```")
    print("\n".join(_trim(buffer.getvalue()).splitlines()[: top + 6]))
    print("```")


def _trim(text: str) -> str:
    """The pstats table without its preamble."""
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def main(args: argparse.Namespace) -> None:
    """Step timings, then cProfile of a first and of a steady-state capture."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    root = scratch_dir("watcher-profile-")
    with DemoSite() as site:
        fill_channel(site, "dealer", 20, args.images, seed_base=7)
        watchlist = load_watchlist(write_watchlist(root / "watchlist.yaml", site, ["dealer"]))
        browser = Browser(max_concurrent=2)
        app = App.open(watchlist, root / "data", browser=browser)
        loop.run_until_complete(browser.start())
        url = f"{site.base_url}/s/dealer"
        watch = Stopwatch()
        loop.run_until_complete(take_steps(app, url, watch))
        watch.report("take, step by step (wall)")
        files = Stopwatch()
        loop.run_until_complete(keep_steps(app, files))
        files.report("keep_files, step by step (wall)")
        profile_capture(app, args.out.with_suffix(".first.prof"), args.top, "first capture")
        profile_capture(app, args.out, args.top, "unchanged page (steady state)")
        loop.run_until_complete(app.close())
        loop.run_until_complete(browser.close())
    loop.close()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/watcher-capture.prof"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--images", type=int, default=10, help="photos per post")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
