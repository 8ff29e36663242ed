"""Storage: bytes per capture of a realistic page (20 posts x 10 photos) when it is
unchanged (a full capture, and a light check with ``full_every``), when one post is new, and
when a post reposts already-seen photos (resized), each against the naive copy of every file
and, in the same run, against web archives that copy every payload again (no revisit
records: watcher before archives were deduplicated);
in the same run against screenshots stored whole (Chromium's PNG, before strips);
then the database after 100,000 posts (synthetic, inserted through the ``Store`` API) and the
time of ``watcher status`` and ``/search`` at that size, against a naive ``LIKE`` scan of the
same rows and the same commands on an empty database.

Run: .venv/bin/python benchmarks/bench_storage.py [--posts 100000] [--captures-only]
(about 1-2 min for 100k posts: the Store API is the slow, honest path)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from _common import add_fresh_post, fill_channel, post_text, scratch_dir, write_watchlist
from PIL import Image

from watcher.app import App
from watcher.capture import dedup
from watcher.capture import page as page_module
from watcher.capture.browser import Browser
from watcher.demo.site import DemoSite
from watcher.models import CapturedPost, Post, ShotLayout
from watcher.pipeline import run_capture
from watcher.steps import keep
from watcher.store import strips
from watcher.store.db import CaptureRow, Store
from watcher.store.search import search_posts
from watcher.timeutil import utc_now
from watcher.watchlist import Target, load_watchlist

QUERIES = ("ivory bangle", "carving", "antique collection cheap", "zzznomatch")


def disk_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (blobs and the SQLite files)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def file_sizes(root: Path) -> dict[Path, tuple[int, int]]:
    """Each file under ``root``: (its size, what the filesystem allocates for it)."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            info = p.stat()
            out[p] = (info.st_size, info.st_blocks * 512)
    return out


@contextlib.contextmanager
def whole_screenshots() -> Iterator[None]:
    """Screenshots stored as before strips: Chromium's PNG, whole, every time it changes."""
    stored = keep._stored_screenshots
    keep._stored_screenshots = lambda *args: {}
    try:
        yield
    finally:
        keep._stored_screenshots = stored


@contextlib.contextmanager
def page_as_it_is() -> Iterator[None]:
    """Screenshots of the page's own layout: no post box rounded to whole pixels, the page
    not drawn lower (``capture.page.screenshot_on_pixels`` before this change)."""
    chosen = page_module._on_whole_pixels

    async def untouched(page: object, posts_css: str | None) -> ShotLayout:
        return ShotLayout()

    page_module._on_whole_pixels = untouched
    try:
        yield
    finally:
        page_module._on_whole_pixels = chosen


ENCODE_CPU: list[float] = []  # CPU-s of each re-encode (the keep worker thread's own)


def _timed_encode(png: bytes, level: int = strips.LEVEL) -> strips.Encoded:
    start = time.thread_time()
    try:
        return _encode(png, level)
    finally:
        ENCODE_CPU.append(time.thread_time() - start)


_encode = keep.encode
keep.encode = _timed_encode


def resized(data: bytes, scale: float = 0.6) -> bytes:
    """A smaller, recompressed copy of a JPEG (a repost)."""
    img = Image.open(io.BytesIO(data))
    small = img.resize((int(img.width * scale), int(img.height * scale)))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return out.getvalue()


@contextlib.contextmanager
def without_revisits() -> Iterator[None]:
    """Web archives as before deduplication: no payload counts as archived."""
    origins = dedup._origins
    dedup._origins = lambda *args: {}
    try:
        yield
    finally:
        dedup._origins = origins


def wacz_parts(data: bytes) -> tuple[int, int]:
    """(bytes of the WACZ, bytes of its MHTML snapshot's record) of a capture's WACZ."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        lines = archive.read("indexes/index.cdx").decode().splitlines()
    fields = [json.loads(line.split(" ", 2)[2]) for line in lines]
    mhtml = sum(int(f["length"]) for f in fields if f["url"] == "urn:watcher:mhtml")
    return len(data), mhtml


async def per_capture_cases() -> None:
    """Disk growth of each case vs the sum of the capture's artifacts (naive copy), with
    deduplicated web archives, then the same cases with every payload copied again."""
    rows = await capture_cases(keep_mhtml=False)
    with page_as_it_is():
        own_layout = await capture_cases(keep_mhtml=False)
    with whole_screenshots():
        whole = await capture_cases(keep_mhtml=False)
    with_mhtml = await capture_cases(keep_mhtml=True)
    with without_revisits():
        before = await capture_cases(keep_mhtml=True)
    print("## Storage per capture (page: 20 posts x 10 photos)")
    print("now: screenshots as strips, revisit records, MHTML on the target's first capture only:")
    print_cases(rows)
    print("same run, strips of the page's own layout (no post box made whole-pixel high):")
    print_cases(own_layout)
    print("same run, screenshots stored whole (Chromium's PNG, as before strips):")
    print_cases(whole)
    print("same run, keep_mhtml: true (an MHTML on every changed capture, as before issue 21):")
    print_cases(with_mhtml)
    print("baseline, same run: web archives copying every payload, MHTML every time:")
    print_cases(before)


def print_cases(rows: list) -> None:
    """One line per case: disk growth, naive copy, the WACZ and its MHTML part, events."""
    for label, actual, naive, summary, wacz, shot, cost in rows:
        archive = f"; WACZ {wacz[0] / 2**20:.2f} MiB (MHTML {wacz[1] / 2**20:.2f})" if wacz else ""
        new_files, allocated, shot_disk, cpu = cost
        print(
            f"- {label}: **{actual / 2**20:.2f} MiB** on disk (blobs + db + WAL; allocated "
            f"{allocated / 2**20:.2f} MiB in {new_files} new files); naive copy "
            f"of every file {naive / 2**20:.2f} MiB{archive}; screenshot PNG {shot / 2**20:.2f} "
            f"MiB, of which new on disk **{shot_disk / 2**20:.2f} MiB**; re-encode "
            f"{cpu:.2f} CPU-s; events {len(summary.events)}"
        )


async def capture_cases(keep_mhtml: bool) -> list:
    """(label, disk growth, naive copy, summary, (WACZ bytes, MHTML bytes) or None,
    screenshot bytes) per case; ``keep_mhtml`` as the target's option."""
    root = scratch_dir("watcher-bench-storage-")
    with DemoSite() as site:
        fill_channel(site, "dealer", posts=20, images=10, seed_base=42)
        wl = load_watchlist(write_watchlist(root / "watchlist.yaml", site, ["dealer"]))
        browser = Browser()
        app = App.open(wl, root / "data", browser=browser)
        target = app.watchlist.target("dealer").model_copy(update={"keep_mhtml": keep_mhtml})
        rows = []

        async def case(label: str, which: Target = target) -> None:
            before = disk_bytes(root / "data")
            files = file_sizes(app.blobs.root)
            ENCODE_CPU.clear()
            summary = await run_capture(app, which)
            artifacts = app.store.artifacts(summary.capture_id)
            naive = sum(a.size for a in artifacts)
            waczs = [wacz_parts(app.blobs.read(a.sha256)) for a in artifacts if a.kind == "wacz"]
            growth = disk_bytes(root / "data") - before
            shots = [a for a in artifacts if a.kind == "screenshot"]
            shot = sum(a.size for a in shots)
            added = {p: v for p, v in file_sizes(app.blobs.root).items() if p not in files}
            parts = screenshot_files(app, [a.sha256 for a in shots])
            shot_disk = sum(v[0] for p, v in added.items() if p.name in parts)
            cost = (len(added), sum(v[1] for v in added.values()), shot_disk, sum(ENCODE_CPU))
            rows.append((label, growth, naive, summary, waczs[0] if waczs else None, shot, cost))

        await case("first capture (baseline, 200 photos)")
        await case("unchanged page")
        checked = target.model_copy(update={"full_every": 6 * 3600.0})
        await case("unchanged page, light check (full_every)", checked)
        add_fresh_post(site, "dealer", "one new post, new stock", images=10, seed=9001)
        await case("one new post (10 new photos)")
        old = [site.put_image(f"rp{i}", resized(photo_of(site, i))) for i in range(3)]
        site.add_post("dealer", "reposted photos", images=old)
        await case("one post reposting 3 seen photos (resized)")
        await app.close()
        await browser.close()
    return rows


def screenshot_files(app: App, shas: list[str]) -> set[str]:
    """File names in the blob store that make up these screenshots: the whole PNG, or a
    composite's pointer, manifest and pieces."""
    names = set()
    for sha in shas:
        names.add(sha)
        pointer = app.blobs.path(sha).with_name(sha + ".composite")
        if pointer.exists():
            manifest = pointer.read_text().strip()
            names |= {pointer.name, manifest}
            pieces = json.loads(app.blobs.read(manifest))["pieces"]
            names |= {p["sha256"] for p in pieces}
    return names


def photo_of(site: DemoSite, index: int) -> bytes:
    """Bytes of one of the dealer's already-posted photos."""
    status = site.respond(f"/img/dealer-0-{index}")
    return status.body


def fill_store(store: Store, posts: int, targets: int = 100, per_capture: int = 20) -> float:
    """``posts`` synthetic posts through Store.insert_post, one transaction per capture."""
    rng = random.Random(1)
    start = time.perf_counter()
    for t in range(targets):
        store.upsert_target(f"t{t:03d}", "telegram", f"https://t.me/s/t{t:03d}", utc_now())
    per_target = posts // targets
    for t in range(targets):
        name = f"t{t:03d}"
        for first in range(0, per_target, per_capture):
            now = utc_now()
            with store.transaction():
                row = CaptureRow(name, "ok", now, now, f"https://t.me/s/{name}", post_count=20)
                capture_id = store.insert_capture(row)
                for i in range(first, min(first + per_capture, per_target)):
                    post = Post(f"{name}/{i}", post_text(rng), f"https://t.me/{name}/{i}")
                    store.insert_post(name, CapturedPost(post, ()), capture_id, i - first, now)
    return time.perf_counter() - start


def best_of(cmd: list[str], runs: int = 3) -> float:
    """Fastest of ``runs`` runs of ``cmd`` (the machine is shared: the minimum is the cost)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def status_time(root: Path, targets: int) -> float:
    """Seconds of ``watcher status`` (a subprocess, as the team runs it; best of 3)."""
    wl = root / "watchlist.yaml"
    lines = ["targets:"] + [
        f"  - {{name: t{t:03d}, platform: telegram, url: 'https://t.me/s/t{t:03d}'}}"
        for t in range(targets)
    ]
    wl.write_text("\n".join(lines) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "watcher",
        "status",
        "--watchlist",
        str(wl),
        "--data",
        str(root / "data"),
    ]
    return best_of(cmd)


def search_times(store: Store) -> list[tuple[str, float, int, float]]:
    """(query, FTS seconds, hits, naive LIKE-scan seconds) per query."""
    out = []
    for query in QUERIES:
        start = time.perf_counter()
        _hits, total = search_posts(store, query)
        fts = time.perf_counter() - start
        where = " AND ".join("text LIKE ?" for _ in query.split())
        start = time.perf_counter()
        store.db.execute(
            f"SELECT count(*) FROM post_versions WHERE {where}", [f"%{w}%" for w in query.split()]
        ).fetchone()
        out.append((query, fts, total, time.perf_counter() - start))
    return out


def at_size(posts: int) -> None:
    """DB size after ``posts`` posts; status and search times there and on an empty DB."""
    root = scratch_dir("watcher-bench-db-")
    empty_root = scratch_dir("watcher-bench-db0-")
    Store(empty_root / "data" / "watcher.db").close()
    store = Store(root / "data" / "watcher.db")
    seconds = fill_store(store, posts)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = disk_bytes(root / "data")
    text = store.db.execute("SELECT sum(length(text)) FROM post_versions").fetchone()[0]
    print(f"\n## Database at {posts:,} posts (100 targets, 1 capture per 20 posts)")
    print(
        f"- inserted through Store.insert_post in {seconds:.0f} s "
        f"({posts / seconds:,.0f} posts/s); **{size / 2**20:.1f} MiB** on disk = "
        f"{size / posts:,.0f} B/post; baseline: the raw post text alone {text / 2**20:.1f} MiB"
    )
    full, empty = status_time(root, 100), status_time(empty_root, 100)
    startup = best_of([sys.executable, "-c", "import watcher.cli"])
    print(
        f"- `watcher status` (100 targets, best of 3): **{full:.2f} s**; same on an empty db "
        f"{empty:.2f} s; of which Python start + `import watcher.cli` {startup:.2f} s"
    )
    for query, fts, total, like in search_times(store):
        print(
            f"- /search {query!r}: **{1000 * fts:.1f} ms** ({total} posts); naive LIKE scan "
            f"{1000 * like:.1f} ms"
        )
    store.close()


def main(args: argparse.Namespace) -> None:
    """Per-capture cases, then the database at size."""
    asyncio.run(per_capture_cases())
    if not args.captures_only:
        at_size(args.posts)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument(
        "--captures-only", action="store_true", help="only the per-capture cases (~2-4 min)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
