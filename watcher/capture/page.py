"""Load a target's page(s) in a browser context and take what a capture keeps.

This is the one place that drives a Playwright page; its errors become :class:`CaptureError`
with a reason code (``timeout``, ``network``, ``http_error``, ``browser``).
"""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from watcher.capture.adapters import Adapter
from watcher.capture.archive import ResponseRecorder, mhtml_snapshot
from watcher.errors import CaptureError
from watcher.models import PageSnapshot, Post

# Chromium cannot paint taller than this in one screenshot; past it the shot is cut.
MAX_SCREENSHOT_HEIGHT = 16_000
SETTLE_MS = 2_000


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What to load: the target's URL, how many pages back to read, how long to wait."""

    url: str
    pages: int = 1
    timeout_s: float = 45.0


async def load_pages(
    context: BrowserContext,
    request: PageRequest,
    adapter: Adapter,
    user_agent: str,
    version: str,
    recorder: ResponseRecorder | None = None,
) -> tuple[PageSnapshot, list[Post]]:
    """Open the target, read up to ``request.pages`` pages, return the snapshot and posts.

    With a ``recorder``, every network response of the load is kept for the web archive.
    """
    page = await context.new_page()
    if recorder is not None:
        recorder.attach(page)
    page.set_default_timeout(request.timeout_s * 1000)
    status, final_url = await _open(page, request.url, request.timeout_s)
    html = await _content(page)
    screenshot = await take_screenshot(page)
    mhtml = await mhtml_snapshot(page)
    htmls = [html]
    posts = adapter.extract(html, final_url)
    url = final_url
    for _ in range(request.pages - 1):
        older = adapter.older_page_url(url, posts)
        if older is None:
            break
        await _open(page, older, request.timeout_s)
        older_html = await _content(page)
        older_posts = adapter.extract(older_html, older)
        known = {p.post_id for p in posts}
        fresh = [p for p in older_posts if p.post_id not in known]
        if not fresh:
            break
        htmls.append(older_html)
        posts = fresh + posts if adapter.oldest_first else posts + fresh
        url = older
    snapshot = PageSnapshot(
        requested_url=request.url,
        final_url=final_url,
        http_status=status,
        html_pages=tuple(htmls),
        screenshot=screenshot,
        user_agent=user_agent,
        browser_version=version,
        mhtml=mhtml,
    )
    return snapshot, posts


async def take_screenshot(page: Page) -> bytes | None:
    """Full-page PNG, cut at :data:`MAX_SCREENSHOT_HEIGHT`; None if the page cannot paint."""
    try:
        height = await page.evaluate("Math.max(document.body ? document.body.scrollHeight : 0, 1)")
        width = page.viewport_size["width"] if page.viewport_size else 1280
        if height > MAX_SCREENSHOT_HEIGHT:
            clip = {"x": 0, "y": 0, "width": width, "height": MAX_SCREENSHOT_HEIGHT}
            return await page.screenshot(full_page=True, clip=clip, type="png")
        return await page.screenshot(full_page=True, type="png")
    except PlaywrightError:
        return None


async def error_screenshot(context: BrowserContext) -> bytes | None:
    """Screenshot of whatever the first tab shows after a failure, for the record."""
    for page in context.pages:
        shot = await take_screenshot(page)
        if shot:
            return shot
    return None


async def _open(page: Page, url: str, timeout_s: float) -> tuple[int | None, str]:
    try:
        response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
    except PlaywrightTimeout as exc:
        raise CaptureError(
            "timeout", f"{url} did not load within {timeout_s:g}s; the site may be down or slow"
        ) from exc
    except PlaywrightError as exc:
        raise CaptureError("network", f"{url} could not be opened: {_short(exc)}") from exc
    await _settle(page)
    status = response.status if response else None
    if status is not None and status >= 400:
        raise CaptureError("http_error", f"{url} answered HTTP {status}")
    return status, page.url


async def _settle(page: Page) -> None:
    # Images and late scripts: wait a little for quiet, but a page that never goes quiet
    # must not hold the capture.
    try:
        await page.wait_for_load_state("load", timeout=SETTLE_MS * 2)
        await page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
    except PlaywrightError:
        pass


async def _content(page: Page) -> str:
    try:
        return await page.content()
    except PlaywrightError as exc:
        raise CaptureError("browser", f"could not read the page: {_short(exc)}") from exc


def _short(exc: PlaywrightError) -> str:
    message = (exc.message or str(exc)).strip().splitlines()
    return message[0] if message else type(exc).__name__
