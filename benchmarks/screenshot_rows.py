"""Why a page with one new post shares fewer screenshot rows than it could: which rows of a
full-page screenshot Chromium draws differently when the page around them changes.

One page of the fixture site (``--posts`` posts x 10 photos) is loaded once and screenshot;
then, in the same page, an empty block is put above everything (the posts shift down), and
10 new photos are added after the posts, then before them. Each line counts the rows of the
new screenshot found nowhere in the first one (the least lossless sharing can store).
A shift by a fraction of a pixel (a new post whose height is not a whole number of pixels,
as text line heights often are) is what makes Chromium draw the photos below differently:
text is snapped to whole pixels, photos are resampled at their sub-pixel position.

Last, the bench's real case: one new post comes and the oldest of the 20 leaves, screenshot
as the page is, with only its bottom on a whole pixel, and with each post box made a whole
number of pixels high (``capture.page.screenshot_on_pixels``, what captures do).

Run: .venv/bin/python benchmarks/screenshot_rows.py [--posts 20] [--chromium-arg=--flag ...]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
from collections.abc import Awaitable

import numpy as np
from _common import add_fresh_post, fill_channel, photo_bytes
from PIL import Image
from playwright.async_api import Page, async_playwright

from watcher.capture.adapters.telegram import TelegramAdapter
from watcher.capture.browser import find_chromium
from watcher.capture.page import _fast_png, screenshot_on_pixels
from watcher.demo.site import DemoSite

ADD_PHOTOS = """([where, prefix]) => {
    const block = document.createElement('div');
    for (let i = 0; i < 10; i++) {
        const photo = document.createElement('div');
        photo.style.cssText = 'display:inline-block;width:100px;height:80px;background-size:cover';
        photo.style.backgroundImage = 'url(' + prefix + i + ')';
        block.appendChild(photo);
    }
    document.body[where](block);
}"""
PAD = """(h) => {
    let pad = document.getElementById('pad');
    if (!pad) { pad = document.createElement('div'); pad.id = 'pad'; document.body.prepend(pad); }
    pad.style.height = h + 'px';
}"""


async def rows(page: Page) -> list[bytes]:
    """The digest of each row of a full-page screenshot."""
    png = await page.screenshot(full_page=True)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return [hashlib.sha256(row.tobytes()).digest() for row in pixels]


async def main(posts: int, chromium_args: list[str]) -> None:
    with DemoSite() as site:
        fill_channel(site, "dealer", posts=posts, images=10, seed_base=42)
        for i in range(10):
            site.put_image(f"new-{i}", photo_bytes(777 + i))
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=find_chromium(), args=chromium_args)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"{site.base_url}/s/dealer", wait_until="networkidle")
            first = set(await rows(page))
            flags = f", Chromium {' '.join(chromium_args)}" if chromium_args else ""
            print(f"## Screenshot rows not in the first one ({posts} posts x 10 photos{flags})")
            for height in (1, 100, 256, 482, 512, 100.5, 100.25, 99.9):
                await page.evaluate(PAD, height)
                await page.wait_for_timeout(300)
                shot = await rows(page)
                print(f"- everything {height} px lower: {sum(r not in first for r in shot)} rows")
            await page.evaluate(PAD, 0)
            for where in ("append", "prepend"):
                await page.evaluate(ADD_PHOTOS, [where, f"{site.base_url}/img/new-"])
                await page.wait_for_timeout(1500)
                shot = await rows(page)
                side = "after" if where == "append" else "before"
                print(f"- 10 new photos {side} the posts: {sum(r not in first for r in shot)} rows")
            await new_post_in_a_full_feed(page, site)
            await browser.close()


async def new_post_in_a_full_feed(page: Page, site: DemoSite) -> None:
    """Rows not found after one post comes and the oldest leaves, three ways."""
    url = f"{site.base_url}/s/dealer"
    posts_css = TelegramAdapter.default_recipe.post.plain_css
    ways = {
        "as the page is": lambda: _fast_png(page, full_page=True),
        "its bottom on a whole pixel": lambda: screenshot_on_pixels(page),
        "each post box whole pixels high": lambda: screenshot_on_pixels(page, posts_css),
    }
    await page.goto(url, wait_until="networkidle")
    before = {name: await _png(way()) for name, way in ways.items()}
    add_fresh_post(site, "dealer", "one new post, new stock", images=10, seed=9001)
    await page.goto(url, wait_until="networkidle")
    print("## One new post, the oldest leaving the page: rows not in the last screenshot")
    for name, way in ways.items():
        old = {hashlib.sha256(r.tobytes()).digest() for r in pixels_of(before[name])}
        new = [hashlib.sha256(r.tobytes()).digest() for r in pixels_of(await _png(way()))]
        print(f"- {name}: {sum(r not in old for r in new)} of {len(new)} rows")


async def _png(shot: Awaitable[bytes | tuple[bytes | None, object]]) -> bytes:
    got = await shot
    png = got[0] if isinstance(got, tuple) else got
    assert png, "the page did not paint"
    return png


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--chromium-arg", action="append", default=[], help="a browser switch")
    args = parser.parse_args()
    asyncio.run(main(args.posts, args.chromium_arg))
