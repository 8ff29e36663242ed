"""ReplayWeb.page in headless Chromium, to open a WACZ as an investigator would.

ReplayWeb.page (the ``replaywebpage`` npm package, AGPL) is fetched by ``make replay`` into
``.cache/`` and never committed. The player runs in a service worker, so it and the WACZ are
served from a loopback HTTP server (``file://`` has no service workers), with byte ranges:
the player reads a WACZ's index first and then only the records a page needs.
"""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from playwright.async_api import Frame, Page, async_playwright

from watcher.capture.browser import find_chromium

REPO = Path(__file__).resolve().parent.parent
VERSION = "2.5.3"
ASSETS = REPO / ".cache" / f"replaywebpage-{VERSION}"
# Generous: the service worker installs, loads the WACZ index, then the page and its photos,
# on a machine shared with other test runs.
LOAD_TIMEOUT_MS = 120_000


def assets() -> Path | None:
    """The folder holding ReplayWeb.page's ui.js, sw.js and index.html, fetched by
    ``make replay`` when missing; None when it cannot be had (no npm, no registry)."""
    if not (ASSETS / "sw.js").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["make", "-s", "replay"], cwd=REPO, timeout=300, check=False)
    return ASSETS if (ASSETS / "sw.js").exists() else None


_TYPES = {".js": "application/javascript", ".html": "text/html", ".wacz": "application/wacz"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path.endswith("/"):
            path += "index.html"
        data = self.files.get(path)
        if data is None:
            self.send_error(404)
            return
        start, end = 0, len(data) - 1
        wanted = _RANGE.match(self.headers.get("Range", ""))
        if wanted and (wanted.group(1) or wanted.group(2)):
            if wanted.group(1):
                start = int(wanted.group(1))
                end = min(int(wanted.group(2) or end), end)
            else:  # the last N bytes
                start = max(0, len(data) - int(wanted.group(2)))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        suffix = Path(path).suffix
        self.send_header("Content-Type", _TYPES.get(suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            self.wfile.write(data[start : end + 1])

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test says what failed


@contextlib.contextmanager
def serve(files: dict[str, bytes]) -> Iterator[str]:
    """Serve ``files`` (path → bytes) on 127.0.0.1; yields the base URL."""
    handler = type("Handler", (_Handler,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def embedding_page(wacz_name: str, url: str) -> bytes:
    """A page embedding the player on ``url`` of the archive ``wacz_name``."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<script src='./replay/ui.js'></script>"
        "<style>html,body{margin:0;height:100%} replay-web-page{display:block;height:100vh}"
        "</style></head><body>"
        f"<replay-web-page source='{html.escape(wacz_name)}' url='{html.escape(url)}' "
        "replayBase='./replay/' embed='replayonly'></replay-web-page></body></html>"
    ).encode()


@dataclass(frozen=True)
class Replayed:
    """What the replayed page showed."""

    text: str
    photos_loaded: int  # <img> elements decoded with a size
    photo_sources: list[str]
    screenshot: bytes


async def replay(wacz: bytes, url: str, folder: Path) -> Replayed:
    """Open ``url`` of ``wacz`` in ReplayWeb.page (``folder``: its assets) and read the page."""
    files = {
        "/index.html": embedding_page("archive.wacz", url),
        "/archive.wacz": wacz,
        "/replay/index.html": (folder / "index.html").read_bytes(),
        "/replay/ui.js": (folder / "ui.js").read_bytes(),
        "/replay/sw.js": (folder / "sw.js").read_bytes(),
    }
    with serve(files) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=find_chromium(), headless=True
            )
            try:
                page = await browser.new_page(viewport={"width": 1000, "height": 1400})
                await page.goto(f"{base}/index.html")
                frame = await _replayed_frame(page)
                await frame.wait_for_function(_HAS_PHOTOS, timeout=LOAD_TIMEOUT_MS)
                text = await frame.inner_text("body")
                loaded = await frame.evaluate(_LOADED_PHOTOS)
                # The newest post is last on a channel page: show it, with older ones above.
                await frame.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                shot = await page.screenshot()
            finally:
                await browser.close()
    return Replayed(text, len(loaded), loaded, shot)


# Photos are <img> elements or, on Telegram's preview, CSS background images.
_HAS_PHOTOS = "document.querySelectorAll('img, [style*=background-image]').length > 0"
# Each photo's URL (as the player rewrote it) loaded again: those that decode with a size.
_LOADED_PHOTOS = """async () => {
  const urls = [...document.images].map(i => i.currentSrc || i.src);
  for (const e of document.querySelectorAll('[style*=background-image]')) {
    const m = getComputedStyle(e).backgroundImage.match(/url\\("?(.*?)"?\\)/);
    if (m) urls.push(m[1]);
  }
  const decoded = await Promise.all(urls.map(u => new Promise(done => {
    const i = new Image();
    i.onload = () => done(i.naturalWidth > 0 ? u : null);
    i.onerror = () => done(null);
    i.src = u;
  })));
  return decoded.filter(Boolean);
}"""


async def _replayed_frame(page: Page) -> Frame:
    """The frame holding the archived page (the player nests it: its app, then the page,
    served by the service worker under ``/w/<collection>/<time>mp_/<url>``)."""
    deadline = LOAD_TIMEOUT_MS
    step = 500
    while deadline > 0:
        for frame in page.frames:
            if "mp_/" in frame.url:
                with contextlib.suppress(Exception):  # still navigating
                    await frame.wait_for_load_state("load", timeout=step * 4)
                    if await frame.evaluate("document.body !== null"):
                        return frame
        await page.wait_for_timeout(step)
        deadline -= step
    raise AssertionError(
        "ReplayWeb.page showed no archived page; frames: " + ", ".join(f.url for f in page.frames)
    )
