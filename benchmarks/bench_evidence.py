"""Evidence costs: disk per capture (with dedupe vs a naive copy of every file) and the time
to export and verify a capture with 200 images (vs a naive zip of the same files).

Run: .venv/bin/python benchmarks/bench_evidence.py
"""

from __future__ import annotations

import asyncio
import time
import zipfile

from _common import scratch_dir

from watcher.app import App
from watcher.capture.browser import Browser
from watcher.demo.site import DemoSite
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.verify import verify_bundle
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist


def blob_bytes(app: App) -> int:
    return sum(p.stat().st_size for p in app.blobs.root.rglob("*") if p.is_file())


def artifact_bytes(app: App, capture_id: int) -> int:
    return sum(a.size for a in app.store.artifacts(capture_id))


async def main() -> None:
    root = scratch_dir("watcher-bench-evidence-")
    with DemoSite() as site:
        site.channel("dealer")
        for n in range(20):
            site.add_post("dealer", f"post {n} ivory", images=[site.add_photo(f"i{n}", seed=n)])
        site.channel("album")
        keys = [site.add_photo(f"a{n}", seed=1000 + n) for n in range(200)]
        for n in range(20):
            site.add_post("album", f"album {n}", images=keys[n * 10 : n * 10 + 10])
        wl = root / "watchlist.yaml"
        wl.write_text(
            "targets:\n"
            f"  - {{name: dealer, platform: telegram, url: '{site.base_url}/s/dealer',"
            " allow_private_network: true}\n"
            f"  - {{name: album, platform: telegram, url: '{site.base_url}/s/album',"
            " allow_private_network: true}\n"
        )
        browser = Browser()
        app = App.open(load_watchlist(wl), root / "data", browser=browser)
        dealer, album = app.watchlist.target("dealer"), app.watchlist.target("album")

        first = await run_capture(app, dealer)
        after_first = blob_bytes(app)
        same = await run_capture(app, dealer)
        after_same = blob_bytes(app)
        site.add_post("dealer", "one new post", images=[site.add_photo("new", seed=500)])
        new = await run_capture(app, dealer)
        after_new = blob_bytes(app)
        site.add_post("dealer", "repost", images=[site.add_photo("rp", seed=3, scale=0.6)])
        rep = await run_capture(app, dealer)
        after_rep = blob_bytes(app)

        print("## Disk per capture (dedupe by SHA-256 vs naive copy of every file)")
        rows = [
            ("first capture (20 posts, 20 images)", after_first, first.capture_id),
            ("unchanged page", after_same - after_first, same.capture_id),
            ("one new post with a photo", after_new - after_same, new.capture_id),
            ("a reposted (resized) photo", after_rep - after_new, rep.capture_id),
        ]
        for label, actual, cid in rows:
            naive = artifact_bytes(app, cid)
            print(f"- {label}: {actual / 1024:.0f} KiB stored; naive {naive / 1024:.0f} KiB")

        cap = await run_capture(app, album)
        out = root / "out"
        start = time.perf_counter()
        (bundle,) = export_bundle(
            app, Selection(capture_id=cap.capture_id), out, progress=lambda d, t: None
        )
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        ok = verify_bundle(bundle).intact  # every byte checked; no trust anchor here
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        with zipfile.ZipFile(root / "naive.zip", "w", zipfile.ZIP_DEFLATED) as naive:
            for artifact in app.store.artifacts(cap.capture_id):
                naive.writestr(artifact.sha256, app.blobs.read(artifact.sha256))
        naive_s = time.perf_counter() - start
        print("\n## Export of one capture with 200 images")
        print(
            f"- export {export_s:.2f} s ({bundle.stat().st_size / 1e6:.1f} MB), "
            f"verify {verify_s:.2f} s "
            f"(verified: {ok}); naive zip of the same files {naive_s:.2f} s"
        )
        await app.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
