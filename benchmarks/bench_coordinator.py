"""The ceiling of one coordinator: keep + record per core, with the browser elsewhere.

With the browsers on other machines (``browsers:``), what is left on the machine running
``watcher run`` is the part after the page load: the photos streamed into the blob store
(the coordinator downloads them, media.download_images), ``steps.keep`` (metadata,
screenshot, HTML, posts JSON, WACZ, perceptual hashes of new photos, blob writes) and
``steps.record`` (one SQLite transaction: diff, posts, findings, events, custody entry).
This feeds pre-made capture results (what a remote browser hands back: posts, HTML, a
screenshot, the recorded responses, the photos' bytes) straight to those steps, one capture
at a time on one event loop (and keep's worker thread), and reports captures per minute of
wall time and per CPU-minute of the process, for:

* first captures: N targets, each page new (20 posts x 10 photos, every photo new);
* steady state: the same N pages again, unchanged (no WACZ, stored hashes reused);
* one new post: each page again with one new post of 10 new photos (a changed page: WACZ).

Baseline in the same run, on the same inputs: a naive recorder that writes every file named
by its SHA-256 with an fsync each, hashes every photo with imagehash every time (no reuse),
and inserts the capture, each post and each image in SQLite in a transaction of its own (no
dedupe of unchanged captures, no WACZ, no diff, no findings).

    python benchmarks/bench_coordinator.py --targets 60 [--posts 20 --images 10]
        [--prefill-posts 300000]   # the same on a database grown by months of other targets
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import platform
import resource
import sqlite3
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import imagehash
from _common import photo_bytes, post_text, scratch_dir
from PIL import Image

from watcher.app import App
from watcher.capture.archive import RecordedResponse
from watcher.capture.browser import BrowserInfo
from watcher.capture.media import Download
from watcher.models import PageSnapshot, Post
from watcher.steps.keep import keep
from watcher.steps.record import record_success
from watcher.steps.take import Taken
from watcher.timeutil import utc_now
from watcher.watchlist import load_watchlist

BASE = "https://t.me/s"
_PHOTOS: dict[int, bytes] = {}  # by seed: the grown pages show the same photos again


@dataclass
class Page:
    """One target's page as a remote browser hands it back (photos not yet stored)."""

    name: str
    posts: list[Post]
    html: str
    screenshot: bytes
    photos: dict[str, bytes]  # by URL


def make_page(name: str, n: int, posts: int, images: int, extra: int = 0) -> Page:
    import random

    rng = random.Random(n * 7)  # the same posts, plus `extra` new ones
    made, photos, cards = [], {}, []
    for p in range(posts + extra):
        urls = []
        for i in range(images):
            url = f"{BASE}/{name}/img/{p}-{i}.jpg"
            seed = n * 100_000 + p * 100 + i
            photos[url] = _PHOTOS.get(seed) or _PHOTOS.setdefault(seed, photo_bytes(seed))
            urls.append(url)
        post = Post(
            post_id=f"{name}/{1000 + p}",
            text=post_text(rng),
            permalink=f"https://t.me/{name}/{1000 + p}",
            posted_at=f"2026-11-{1 + p % 28:02d}T10:00:00Z",
            image_urls=tuple(urls),
        )
        made.append(post)
        cards.append(
            f'<div class="tgme_widget_message" data-post="{post.post_id}"><div class="text">'
            f"{post.text}</div>{''.join(f'<a style=background-image:url({u})></a>' for u in urls)}"
            "</div>"
        )
    html = "<!doctype html><html><body>" + "\n".join(cards) + "</body></html>"
    # A full-page PNG of a 20-post page of albums is a few MB; its bytes are only hashed
    # and written here (never decoded), so noise of that size stands for it.
    screenshot = b"\x89PNG\r\n\x1a\n" + os.urandom(2_500_000)
    return Page(name, made, html, screenshot, photos)


def responses(page: Page) -> tuple[RecordedResponse, ...]:
    def response(url: str, body: bytes, media: str) -> RecordedResponse:
        return RecordedResponse(
            url=url,
            method="GET",
            status=200,
            status_text="OK",
            request_headers={"User-Agent": "HeadlessChrome"},
            response_headers=[("Content-Type", media), ("Content-Length", str(len(body)))],
            body=body,
            remote_ip="149.154.167.99",
            remote_port=443,
            tls=None,
            http_version="HTTP/1.1",
            truncated=False,
            started_at=utc_now(),
        )

    doc = response(f"{BASE}/{page.name}", page.html.encode(), "text/html; charset=utf-8")
    return (doc, *(response(u, b, "image/jpeg") for u, b in page.photos.items()))


INFO = BrowserInfo("browser-1", "playwright", "10.0.0.5:3000", "156.0.8078.129", "HeadlessChrome")


async def ours(app: App, page: Page) -> None:
    """What the coordinator does for one capture after the remote browser's part."""
    target = app.watchlist.target(page.name)
    started = utc_now()
    app.store.upsert_target(target.name, target.platform, target.url, started)
    # The photos, as media.download_images streams them into the blob store.
    shas = await asyncio.to_thread(app.blobs.put_many, list(page.photos.values()))
    downloads = {
        url: Download(url, sha, len(data), "image/jpeg")
        for (url, data), sha in zip(page.photos.items(), shas, strict=True)
    }
    snapshot = PageSnapshot(
        requested_url=target.url,
        final_url=target.url,
        http_status=200,
        html_pages=(page.html,),
        screenshot=page.screenshot,
        user_agent=INFO.user_agent,
        browser_version=INFO.version,
        responses=responses(page),
    )
    previous = app.store.last_artifact_sha(target.name, "html")
    taken = Taken(snapshot, page.posts, downloads, previous_html=previous, browser=INFO)
    kept = await keep(app, target, taken, started)
    summary = record_success(app, target, started, taken, kept)
    assert summary.capture_id is not None


class Naive:
    """The baseline recorder: files by SHA-256 with an fsync each, every photo hashed every
    time, one SQLite transaction per row."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.db = sqlite3.connect(folder / "naive.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE captures (id INTEGER PRIMARY KEY, target, at, meta)")
        self.db.execute("CREATE TABLE posts (capture, post_id, text, images)")
        self.db.execute("CREATE TABLE images (capture, url, sha256, phash, dhash)")

    def write(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.folder / sha
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return sha

    def capture(self, page: Page) -> None:
        meta = json.dumps({"target": page.name, "at": utc_now()})
        cur = self.db.execute(
            "INSERT INTO captures (target, at, meta) VALUES (?, ?, ?)", [page.name, utc_now(), meta]
        )
        capture = cur.lastrowid
        self.write(page.html.encode())
        self.write(page.screenshot)
        self.write(json.dumps([p.to_json() for p in page.posts]).encode())
        for post in page.posts:
            self.db.execute(
                "INSERT INTO posts VALUES (?, ?, ?, ?)",
                [capture, post.post_id, post.text, json.dumps(post.image_urls)],
            )
        for url, data in page.photos.items():
            sha = self.write(data)
            with Image.open(io.BytesIO(data)) as img:
                ph, dh = str(imagehash.phash(img)), str(imagehash.dhash(img))
            self.db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?)", [capture, url, sha, ph, dh]
            )


@dataclass
class Round:
    label: str
    captures: int
    wall_s: float
    cpu_s: float

    def line(self) -> str:
        per_min = self.captures / self.wall_s * 60
        per_core = self.captures / self.cpu_s * 60 if self.cpu_s else float("nan")
        return (
            f"| {self.label} | {self.captures} | {per_min:.1f} | {self.cpu_s / self.captures:.3f} "
            f"| **{per_core:.1f}** |"
        )


def db_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in (root / "data").glob("watcher.db*"))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(label: str, pages: list[Page], one) -> Round:
    t0, c0 = time.perf_counter(), cpu()
    for page in pages:
        result = one(page)
        if asyncio.iscoroutine(result):
            await result
    return Round(label, len(pages), time.perf_counter() - t0, cpu() - c0)


async def main(args: argparse.Namespace) -> None:
    root = scratch_dir("watcher-bench-coordinator-")
    names = [f"chan{n:04d}" for n in range(args.targets)]
    lines = ["targets:"] + [
        f"  - {{name: {n}, platform: telegram, url: '{BASE}/{n}'}}" for n in names
    ]
    (root / "watchlist.yaml").write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    pages = [make_page(n, i, args.posts, args.images) for i, n in enumerate(names)]
    grown = [make_page(n, i, args.posts, args.images, extra=1) for i, n in enumerate(names)]
    # The new post is the newest: first on the page, as a channel shows it.
    grown = [replace(g, posts=[g.posts[-1], *g.posts[:-1]]) for g in grown]
    made = time.perf_counter() - t0
    print(
        f"inputs: {args.targets} pages x {args.posts} posts x {args.images} photos "
        f"(480x360 JPEG), 2.5 MB screenshot each, made in {made:.0f} s"
    )
    rounds = []
    app = App.open(load_watchlist(root / "watchlist.yaml"), root / "data")
    try:
        assert app.wacz_key.key_id  # created once, as on a running coordinator
        if args.prefill_posts:
            from bench_storage import fill_store

            took = fill_store(app.store, args.prefill_posts)
            print(f"prefilled {args.prefill_posts} posts of 100 other targets in {took:.0f} s")
        grew = []  # database bytes added per capture, each round
        for label, inputs in (
            ("watcher: first captures", pages),
            ("watcher: unchanged (steady state)", pages),
            ("watcher: one new post (10 new photos)", grown),
        ):
            before = db_bytes(root)
            rounds.append(await timed(label, inputs, lambda p: ours(app, p)))
            app.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            grew.append((db_bytes(root) - before) / len(inputs))
        db_mb = sum(f.stat().st_size for f in (root / "data").glob("watcher.db*")) / 2**20
        posts = app.store.db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        captures = app.store.db.execute("SELECT COUNT(*) FROM captures").fetchone()[0]
    finally:
        await app.close()
    naive = Naive(root / "naive")
    few = args.naive or args.targets  # its rate per capture does not depend on how many
    rounds.append(await timed("naive: first captures", pages[:few], naive.capture))
    rounds.append(await timed("naive: unchanged", pages[:few], naive.capture))
    rounds.append(await timed("naive: one new post", grown[:few], naive.capture))

    blobs = sum(f.stat().st_size for f in (root / "data" / "blobs").rglob("*") if f.is_file())
    print()
    print(
        f"## Coordinator ceiling ({args.targets} targets, "
        f"{args.posts} posts x {args.images} photos)"
    )
    print(
        f"- {platform.node()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end; one capture at a time"
    )
    print()
    print(
        "| round | captures | captures/min (wall) | CPU-s per capture | captures per CPU-minute |"
    )
    print("|---|---|---|---|---|")
    for r in rounds:
        print(r.line())
    print()
    first, steady, changed = rounds[0], rounds[1], rounds[2]
    nfirst, nsteady, nchanged = rounds[3], rounds[4], rounds[5]
    ratio = lambda a, b: (b.cpu_s / b.captures) / (a.cpu_s / a.captures)  # noqa: E731
    print(
        f"- per CPU: first captures {ratio(first, nfirst):.1f}x the naive recorder, steady "
        f"state {ratio(steady, nsteady):.1f}x, one new post {ratio(changed, nchanged):.1f}x"
    )
    print(
        "- database growth per capture (after a WAL checkpoint): first "
        + ", unchanged ".join(f"{g / 1024:.0f} KiB" for g in grew[:2])
        + f", one new post {grew[2] / 1024:.0f} KiB"
    )
    print(
        f"- after {captures} captures: watcher.db {db_mb:.1f} MiB ({posts} posts), blobs "
        f"{blobs / 2**20:.0f} MiB ({blobs / captures / 2**20:.1f} MiB per capture on average)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--naive", type=int, default=0, help="pages for the baseline (all)")
    parser.add_argument(
        "--prefill-posts",
        type=int,
        default=0,
        help="first store this many posts of 100 other targets (a database grown by months)",
    )
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
