"""Make the report screenshots in this folder from a realistic export of the demo site.

    .venv/bin/python docs/screenshots/make.py [--keep FOLDER]

Captures the demo channel and shop through a scripted case (a new post, an edit, a repost, a
deletion, a post hidden and back, a shared handle: ``watcher.demo.evidence``), exports the
bundle, opens its ``index.html`` in Chromium and saves the first screen
(``report-summary.png``), a post (``report-post.png``) and the findings
(``report-findings.png``), and the A4 PDF's first page as text on stdout. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import zipfile
from pathlib import Path

from playwright.async_api import async_playwright

from watcher.capture.browser import find_chromium
from watcher.demo.evidence import collect_demo_case, demo_case_app
from watcher.demo.site import DemoSite
from watcher.evidence.bundle import Selection, export_bundle

HERE = Path(__file__).parent


async def export_demo(folder: Path) -> Path:
    """The demo case's bundle, unzipped into ``folder / "opened"``; returns its index.html."""
    with DemoSite() as site:
        app = demo_case_app(site, folder)
        try:
            await collect_demo_case(site, app)
            (bundle,) = export_bundle(app, Selection(tag="case-17"), folder / "bundles")
        finally:
            await app.close()
    with zipfile.ZipFile(bundle) as opened:
        opened.extractall(folder / "opened")
    return folder / "opened" / "index.html"


async def shoot(index: Path, out: Path) -> None:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=find_chromium())
        page = await browser.new_page(viewport={"width": 1000, "height": 1400})
        await page.goto(index.as_uri())
        await page.screenshot(path=out / "report-summary.png")
        post = page.locator("section.post.deleted, section.post:has(.badge.edited)").first
        await post.screenshot(path=out / "report-post.png")
        await page.locator("#deletions").scroll_into_view_if_needed()
        await page.screenshot(
            path=out / "report-findings.png",
            clip={
                "x": 0,
                "y": await page.evaluate("document.getElementById('findings').offsetTop - 10"),
                "width": 1000,
                "height": 1400,
            },
            full_page=True,
        )
        await browser.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the data and bundle in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        index = await export_demo(folder)
        await shoot(index, HERE)
        print(f"report: {index}")


if __name__ == "__main__":
    asyncio.run(main())
