"""Load a target's page(s) in a browser context and take what a capture keeps.

This is the one place that drives a Playwright page; its errors become :class:`CaptureError`
with a reason code (``timeout``, ``network``, ``http_error``, ``browser``).

Reading further than the first screen, in the ways listing pages go on:

* older pages by URL (Telegram's ``?before=``, :meth:`Adapter.older_page_url`) or by a
  ``next_page`` link: up to ``pages`` pages;
* a ``load_more`` button: clicked up to ``pages - 1`` times, each time waiting for new posts;
* infinite scroll: ``scroll`` screens down (for Facebook and VK, ``pages - 1`` when the target
  sets no ``scroll``), at a human pace (:data:`PACE`).

Every way stops at the first page that shows a post already known (``known_ids``), at
:data:`MAX_POSTS` posts, when the feed stops growing, and when the target's time runs out, so
an endless feed cannot hold a capture.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from selectolax.lexbor import LexborHTMLParser

from watcher.capture.adapters import Adapter
from watcher.capture.adapters.base import absolute_url
from watcher.capture.archive import ResponseRecorder, mhtml_snapshot
from watcher.capture.fetch import RateLimited, is_rate_limit, retry_after_seconds
from watcher.capture.recipe import Selector
from watcher.errors import CaptureError
from watcher.models import PageSnapshot, Post, ShotLayout

log = logging.getLogger(__name__)

# Chromium cannot paint taller than this in one screenshot; past it the shot is cut.
MAX_SCREENSHOT_HEIGHT = 16_000
# A hostile page can also be wide: one 60,000 px wide made a 481-megapixel screenshot and
# took the capture machine to 5.4 GB. Cut at this width, and at the pixels of the tallest
# screenshot of the usual 1280 px viewport (20.5 MP), whatever the page's shape.
MAX_SCREENSHOT_WIDTH = 4_096
MAX_SCREENSHOT_PIXELS = 1_280 * MAX_SCREENSHOT_HEIGHT
SETTLE_MS = 2_000
SCREENSHOT_EVAL_TIMEOUT_S = 10.0
# A screenshot is a DevTools call with no timeout of its own: a hung renderer must not hold it.
SCREENSHOT_TIMEOUT_S = 45.0
# Seconds between scrolls, clicks and detail pages: a person reading, not a bot hammering
# (platforms ban accounts that scroll at machine speed). Tests set it to (0, 0.05).
PACE: tuple[float, float] = (0.8, 2.5)
# How long to wait for new posts after a scroll or a "load more" click.
GROWTH_WAIT_S = 4.0
# An infinite feed ends here even when pages/scroll would go on.
MAX_POSTS = 2_000
# "See more" buttons clicked per page, at most.
MAX_SEE_MORE = 50
# A feed that did not grow after this many scrolls in a row has ended.
STALLS_TO_STOP = 2


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What to load: the target's URL, how many pages back to read, how long to wait, and how
    the listing goes on (see the module docstring)."""

    url: str
    pages: int = 1
    timeout_s: float = 45.0
    next_page: str | None = None  # selector of the "next/older page" link (``css@href``)
    load_more: str | None = None  # selector of the "load more" button
    scroll: int = 0  # screens to scroll down; 0: the adapter's default
    known_ids: frozenset[str] | None = None  # stop reading back at a page with one of these
    max_posts: int = MAX_POSTS
    # SHA-256 of the last capture's HTML: a page still the same needs no new MHTML, as no new
    # web archive is made for it (the HTML hash proves it unchanged).
    previous_html: str | None = None
    # Take an MHTML snapshot (when the page changed): the target's first capture, or
    # ``keep_mhtml: true``. The WACZ replays every capture; the MHTML is its one-file twin.
    mhtml: bool = True


# -- cookie consent ------------------------------------------------------------------------
# Only answers that give nothing away beyond what the page needs: never "accept and
# subscribe", never anything that logs in or out.
CONSENT_LABELS = (
    "Allow all cookies",
    "Only allow essential cookies",
    "Decline optional cookies",
    "Accept all",
    "Accept all cookies",
    "Reject all",
)
CONSENT_BUDGET_S = 3.0


async def dismiss_consent(page: Page, budget_s: float = CONSENT_BUDGET_S) -> str | None:
    """Click a safe cookie-consent button if one shows; return its label, or None.

    Best effort and bounded: a page without a banner costs one quick look, and a banner
    that will not go away never holds the capture longer than ``budget_s``.
    """
    try:
        if not await asyncio.wait_for(page.evaluate(_HAS_CONSENT_LABEL, CONSENT_LABELS), budget_s):
            return None
        return await asyncio.wait_for(_click_consent(page, budget_s), timeout=budget_s)
    except (TimeoutError, PlaywrightError) as exc:
        log.debug("cookie banner not dismissed: %s", exc)
        return None


# Whether any button (also in open shadow roots, as consent tools use) is labelled like one of
# the answers: one look at the page instead of a role query per label, which cost a light
# check 15 % of its CPU on a page without a banner. A match is then clicked by role.
_HAS_CONSENT_LABEL = """(labels) => {
  const wanted = new Set(labels.map((l) => l.toLowerCase()));
  const name = (el) => (el.getAttribute('aria-label') || el.innerText || el.value || '')
    .trim().replace(/\\s+/g, ' ').toLowerCase();
  const roots = [document];
  while (roots.length) {
    const root = roots.pop();
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) roots.push(el.shadowRoot);
      if (el.matches('button, [role=button], input[type=button], input[type=submit]')
          && wanted.has(name(el))) return true;
    }
  }
  return false;
}"""


async def _click_consent(page: Page, budget_s: float) -> str | None:
    deadline = time.monotonic() + budget_s
    for label in CONSENT_LABELS:
        if time.monotonic() >= deadline:
            return None
        buttons = page.get_by_role("button", name=label, exact=True)
        # count() does not wait: a page without the banner is not slowed down.
        for index in range(min(await buttons.count(), 3)):
            button = buttons.nth(index)
            if not await button.is_visible():
                continue
            with contextlib.suppress(PlaywrightError):
                await button.click(timeout=max(100, (deadline - time.monotonic()) * 1000))
                return label
    return None


async def human_pause() -> None:
    """Sleep a random time within :data:`PACE`."""
    low, high = PACE
    await asyncio.sleep(random.uniform(low, high))


class _Deadline:
    """The time budget for reading beyond the first page: the target's timeout."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def over(self) -> bool:
        return self.left() <= 0


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
    await dismiss_consent(page)
    deadline = _Deadline(request.timeout_s)
    html = await _content(page)
    posts = adapter.extract(html, final_url, datetime.now(UTC))
    # A login wall or a ban page is not scrolled or paged: that only wastes the session.
    blocked = adapter.detect_block(html, final_url, request.url, posts, None) is not None
    if not blocked:
        await _grow_in_page(page, request, adapter, final_url, posts, deadline)
        await expand_see_more(page, adapter, deadline)
        html = await _content(page)
        posts = adapter.extract(html, final_url, datetime.now(UTC))
    post = adapter.recipe.post
    screenshot, layout = await screenshot_on_pixels(page, post.plain_css if post else None)
    unchanged = hashlib.sha256(html.encode("utf-8")).hexdigest() == request.previous_html
    mhtml = None if unchanged or not request.mhtml else await mhtml_snapshot(page)
    htmls = [html]
    if not blocked and not request.load_more:
        more_htmls, posts = await _follow_pages(
            page, request, adapter, final_url, html, posts, deadline
        )
        htmls += more_htmls
    snapshot = PageSnapshot(
        requested_url=request.url,
        final_url=final_url,
        http_status=status,
        html_pages=tuple(htmls),
        screenshot=screenshot,
        user_agent=user_agent,
        browser_version=version,
        mhtml=mhtml,
        screenshot_layout=layout,
    )
    return snapshot, posts[: request.max_posts]


async def check_page(
    context: BrowserContext, request: PageRequest, adapter: Adapter, user_agent: str, version: str
) -> tuple[PageSnapshot, list[Post]]:
    """A light look at the target's first page for a check: open it, expand "see more", read
    the HTML and its posts. No screenshot, MHTML or reading on; in the checks' browser the
    page's images are not even fetched. A reused context's blank page is navigated (see
    ``Browser(reuse_contexts=True)``)."""
    page = context.pages[0] if context.pages else await context.new_page()
    page.set_default_timeout(request.timeout_s * 1000)
    status, final_url = await _open(page, request.url, request.timeout_s)
    await dismiss_consent(page)
    await expand_see_more(page, adapter, _Deadline(request.timeout_s))
    html = await _content(page)
    snapshot = PageSnapshot(
        requested_url=request.url,
        final_url=final_url,
        http_status=status,
        html_pages=(html,),
        screenshot=None,
        user_agent=user_agent,
        browser_version=version,
    )
    return snapshot, adapter.extract(html, final_url, datetime.now(UTC))[: request.max_posts]


# -- reading on: next pages ------------------------------------------------------------------
async def _follow_pages(
    page: Page,
    request: PageRequest,
    adapter: Adapter,
    url: str,
    html: str,
    posts: list[Post],
    deadline: _Deadline,
) -> tuple[list[str], list[Post]]:
    """Older pages by ``next_page`` link or the adapter's URL rule, up to ``pages`` in all."""
    htmls: list[str] = []
    visited = {url}
    for _ in range(request.pages - 1):
        if _should_stop(request, posts, deadline):
            break
        following = _next_url(request, adapter, url, html, posts)
        if following is None or following in visited:
            break
        visited.add(following)
        if request.next_page:  # a logged-in site; Telegram's public preview needs no pause
            await human_pause()
        await _open(page, following, max(1.0, min(request.timeout_s, deadline.left() or 1.0)))
        await expand_see_more(page, adapter, deadline)
        html = await _content(page)
        known = {p.post_id for p in posts}
        fresh = [
            p for p in adapter.extract(html, following, datetime.now(UTC)) if p.post_id not in known
        ]
        if not fresh:
            break
        htmls.append(html)
        posts = fresh + posts if adapter.oldest_first else posts + fresh
        url = following
    return htmls, posts


def _next_url(
    request: PageRequest, adapter: Adapter, url: str, html: str, posts: list[Post]
) -> str | None:
    """Where the next (older) page is: the ``next_page`` link, or the adapter's rule."""
    if request.next_page:
        return next_link(html, request.next_page, url)
    return adapter.older_page_url(url, posts)


def next_link(html: str, selector_text: str, base_url: str) -> str | None:
    """The absolute http(s) URL of the first ``selector_text`` link in ``html``, or None."""
    selector = Selector.parse(selector_text)
    tree = LexborHTMLParser(html)
    for part in selector.parts():
        node = tree.css_first(part.css) if part.css else None
        if node is not None:
            return absolute_url(node.attributes.get(part.attr or "href"), base_url)
    return None


def _should_stop(request: PageRequest, posts: list[Post], deadline: _Deadline) -> bool:
    """Stop reading on: posts already known are reached, the cap is hit, time is up."""
    if request.known_ids and any(p.post_id in request.known_ids for p in posts):
        return True
    if len(posts) >= request.max_posts:
        return True
    if deadline.over():
        log.info("stopped reading on: the target's time (%gs) is up", request.timeout_s)
        return True
    return False


# -- reading on: in the page (load more, infinite scroll) ----------------------------------
async def _grow_in_page(
    page: Page,
    request: PageRequest,
    adapter: Adapter,
    url: str,
    posts: list[Post],
    deadline: _Deadline,
) -> None:
    """Click "load more" or scroll down until there is enough, nothing new, or no time."""
    if request.load_more:
        steps, step = request.pages - 1, _click_load_more
    else:
        steps = request.scroll or (request.pages - 1 if adapter.infinite_scroll else 0)
        step = _scroll_down
    stalls = 0
    for _ in range(steps):
        if _should_stop(request, posts, deadline):
            return
        before = await _count_posts(page, adapter)
        if not await step(page, request):
            return
        await human_pause()
        if await _wait_growth(page, adapter, before, deadline):
            stalls = 0
        else:
            stalls += 1
            # A "load more" that brings nothing, or a feed that stopped growing, has ended.
            if request.load_more or stalls >= STALLS_TO_STOP:
                return
        posts = adapter.extract(await _content(page), url, datetime.now(UTC))


async def _click_load_more(page: Page, request: PageRequest) -> bool:
    """Click the first visible "load more" button; False when there is none."""
    assert request.load_more
    selector = Selector.parse(request.load_more)
    button = page.locator(selector.plain_css or "").first
    try:
        if not await button.count() or not await button.is_visible():
            return False
        await button.click(timeout=5_000)
    except PlaywrightError as exc:
        log.info("load-more button could not be clicked: %s", _short(exc))
        return False
    return True


async def _scroll_down(page: Page, request: PageRequest) -> bool:
    """Scroll to the bottom of the page."""
    try:
        await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        await page.mouse.wheel(0, 600)  # some feeds listen for wheel events, not scroll
    except PlaywrightError as exc:
        log.info("could not scroll: %s", _short(exc))
        return False
    return True


async def _count_posts(page: Page, adapter: Adapter) -> tuple[int, int]:
    """(post elements, page height): what grows when a feed loads more."""
    css = adapter.recipe.post.plain_css if adapter.recipe.post else None
    script = "(css) => [css ? document.querySelectorAll(css).length : 0, " + (
        "document.documentElement.scrollHeight]"
    )
    try:
        count, height = await page.evaluate(script, css)
        return int(count), int(height)
    except PlaywrightError:
        return 0, 0


async def _wait_growth(
    page: Page, adapter: Adapter, before: tuple[int, int], deadline: _Deadline
) -> bool:
    """Wait (within :data:`GROWTH_WAIT_S` and the deadline) for more posts or a taller page."""
    end = time.monotonic() + min(GROWTH_WAIT_S, deadline.left())
    while True:
        now = await _count_posts(page, adapter)
        if now[0] > before[0] or (now[1] > before[1] and now[0] >= before[0]):
            return True
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(0.1)


async def expand_see_more(page: Page, adapter: Adapter, deadline: _Deadline | None = None) -> int:
    """Click each "See more" button (the recipe's ``see_more``) once; how many were clicked.

    Bounded by :data:`MAX_SEE_MORE` and the deadline. Each button is clicked once, so a
    button that does not go away cannot loop.
    """
    selector = adapter.recipe.see_more
    if selector is None or not selector.plain_css:
        return 0
    try:
        handles = await page.locator(selector.plain_css).element_handles()
    except PlaywrightError as exc:
        log.info("see-more buttons not found: %s", _short(exc))
        return 0
    clicked = 0
    for handle in handles[:MAX_SEE_MORE]:
        if deadline is not None and deadline.over():
            break
        try:
            await handle.click(timeout=2_000)
            clicked += 1
        except PlaywrightError:
            continue  # gone or hidden since: the text is read as it is
    if clicked:
        await page.wait_for_timeout(300)  # the expanded text is swapped in by script
    return clicked


# -- detail pages ---------------------------------------------------------------------------
async def capture_details(
    context: BrowserContext, posts: list[Post], limit: int = 20, timeout_s: float = 30.0
) -> dict[str, tuple[str, bytes | None]]:
    """Open each post's permalink (up to ``limit``) and keep its HTML and screenshot.

    For new listings, whose own page often holds more photos and the full description. A
    page that fails is logged and skipped: the listing itself is already captured.
    """
    results: dict[str, tuple[str, bytes | None]] = {}
    for post in [p for p in posts if p.permalink][:limit]:
        assert post.permalink
        if results:
            await human_pause()
        page = await context.new_page()
        try:
            await _open(page, post.permalink, timeout_s)
            results[post.post_id] = (await _content(page), await take_screenshot(page))
        except CaptureError as exc:
            log.warning("detail page of %s not kept: %s", post.post_id, exc)
        finally:
            await _close(page)
    return results


async def _close(page: Page) -> None:
    with contextlib.suppress(PlaywrightError):  # already closed with a crashed browser
        await page.close()


async def take_screenshot(page: Page) -> bytes | None:
    """Full-page PNG, cut at :data:`MAX_SCREENSHOT_HEIGHT` and :data:`MAX_SCREENSHOT_WIDTH`
    (see :func:`screenshot_size`), drawn on whole pixels (see :func:`screenshot_on_pixels`);
    None if the page cannot paint."""
    png, _layout = await screenshot_on_pixels(page)
    return png


async def screenshot_on_pixels(
    page: Page, posts_css: str | None = None
) -> tuple[bytes | None, ShotLayout]:
    """The full-page PNG (None if the page cannot paint) and what its layout was given.

    Chromium resamples a photo at its position's fraction of a pixel. A post whose height is
    not a whole number of pixels (text line heights seldom are) comes or goes, every post
    below it moves by that fraction, and their photos come out a few levels different in
    every row: the next capture could share none of the screenshot's strips with the last
    (2.20 of 3.30 MiB per changed capture, ``benchmarks/RESULTS.md``). So, for the shot only:
    each post box (``posts_css``, the recipe's ``post``) is made a whole number of pixels high
    (less than a pixel of space at its foot), and the page is drawn lower by less than a pixel
    so that the first post (else the page's bottom) starts on a whole pixel. The posts' text,
    photos and order are untouched; it is a style sheet of watcher's, outside the page's HTML,
    taken away again after the shot, and recorded in the capture's metadata
    (``screenshot_layout``). A page where it would move anything by a pixel or more keeps
    its own layout.
    """
    layout = ShotLayout()
    try:
        layout = await _on_whole_pixels(page, posts_css)
        # evaluate has no timeout of its own: a hung renderer must not hold the capture.
        height = await asyncio.wait_for(
            page.evaluate("Math.max(document.body ? document.body.scrollHeight : 0, 1)"),
            SCREENSHOT_EVAL_TIMEOUT_S,
        )
        if height > MAX_SCREENSHOT_HEIGHT:
            return await _top_of_tall_page(page), layout
        png = await asyncio.wait_for(_fast_png(page, full_page=True), SCREENSHOT_TIMEOUT_S)
        return png, layout
    except (PlaywrightError, TimeoutError):
        return None, ShotLayout()
    finally:
        if layout != ShotLayout():
            await _unpad(page)


# Run in the page's own world, so a hostile page can answer nonsense: whatever is not the
# expected shape leaves the page as it is. The style sheet is adopted, so the page's HTML
# and attributes are never touched (an inline style put back is not always the same
# attribute). ``calc-size`` rounds an automatic height up (Chromium 129+); a post box whose
# height the page fixed, or that grows by a pixel or more (beyond what the post boxes inside
# it add), is not left rounded.
_ON_WHOLE_PIXELS = """([css, most]) => {
    const root = document.documentElement;
    if (!root || !document.adoptedStyleSheets) return [0, 0];
    const marker = ':root:not(#watcher-whole-pixels)';
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(marker + ' {}');
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    let posts = [];
    if (css) {
        try { posts = Array.from(document.querySelectorAll(css)).slice(0, most); }
        catch (e) { posts = []; }
    }
    let rounded = 0;
    if (posts.length) {
        const before = posts.map((p) => p.getBoundingClientRect().height);
        try {
            sheet.insertRule(css + ' { height: calc-size(auto, round(up, size, 1px)) }', 1);
        } catch (e) { posts = []; }
        const grew = posts.map((p, i) => p.getBoundingClientRect().height - before[i]);
        const inside = (i) => posts[i].querySelectorAll(css).length;
        if (grew.every((g, i) => g >= 0 && (g < 1 || g < 1 + inside(i)))) {
            rounded = grew.filter((g) => g > 0).length;
        } else {
            sheet.deleteRule(1);
            posts = [];
        }
    }
    const y = posts.length
        ? posts[0].getBoundingClientRect().top + window.scrollY
        : root.getBoundingClientRect().height;
    const offset = Math.ceil(y) - y;
    if (offset > 0 && offset < 1) {
        const padding = parseFloat(getComputedStyle(root).paddingTop) || 0;
        sheet.insertRule(':root { padding-top: ' + (padding + offset) + 'px !important }', 1);
        const moved = posts.length
            ? posts[0].getBoundingClientRect().top + window.scrollY
            : root.getBoundingClientRect().height;
        if (Math.abs(moved - Math.ceil(y)) > 1 / 64) { sheet.deleteRule(1); return [0, rounded]; }
        return [offset, rounded];
    }
    return [0, rounded];
}"""
_UNPAD = """() => {
    const marker = ':root:not(#watcher-whole-pixels)';
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter(
        (sheet) => !(sheet.cssRules.length && sheet.cssRules[0].selectorText === marker));
}"""
# Post boxes measured for rounding, at most (a feed ends at MAX_POSTS anyway).
_MOST_ROUNDED = MAX_POSTS


async def _on_whole_pixels(page: Page, posts_css: str | None) -> ShotLayout:
    """Give the page's posts whole-pixel heights and its top a sub-pixel offset (see
    :func:`screenshot_on_pixels`); what was done, nothing left added if nothing was."""
    try:
        answer = await asyncio.wait_for(
            page.evaluate(_ON_WHOLE_PIXELS, [posts_css, _MOST_ROUNDED]),
            SCREENSHOT_EVAL_TIMEOUT_S,
        )
        offset, rounded = answer
        if isinstance(offset, int | float) and 0.0 <= offset < 1.0 and isinstance(rounded, int):
            layout = ShotLayout(float(offset), max(0, rounded))
            if layout != ShotLayout():
                return layout
    except (PlaywrightError, TypeError, ValueError):
        # A page that breaks this is screenshot as it is: the offset only saves disk. One that
        # does not answer in time is hung: its TimeoutError ends the screenshot at once, as
        # the first call of a screenshot always has (a hung renderer costs one bound, not four).
        pass
    await _unpad(page)
    return ShotLayout()


async def _unpad(page: Page) -> None:
    with contextlib.suppress(PlaywrightError, TimeoutError):
        await asyncio.wait_for(page.evaluate(_UNPAD), SCREENSHOT_EVAL_TIMEOUT_S)


async def _fast_png(page: Page, full_page: bool) -> bytes:
    """A lossless PNG of the viewport or the whole page, encoded for speed.

    Playwright asks Chromium for its smallest PNG: on a page of 200 photos that encoding is
    half a full-page screenshot's CPU time. ``optimizeForSpeed`` gives the same pixels in a
    file ~5 % larger. Through Playwright if Chromium's DevTools session is not available.
    """
    try:
        session = await page.context.new_cdp_session(page)
    except PlaywrightError:
        return await page.screenshot(full_page=full_page, type="png")
    try:
        params: dict[str, object] = {"format": "png", "optimizeForSpeed": True}
        if full_page:
            size = await session.send("Page.getLayoutMetrics")
            content = size["cssContentSize"]
            width, height = screenshot_size(content["width"], content["height"])
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        result = await session.send("Page.captureScreenshot", params)
        return base64.b64decode(result["data"])
    finally:
        # Also reached when a hung renderer timed the screenshot out: do not hang here either.
        with contextlib.suppress(PlaywrightError, TimeoutError):
            await asyncio.wait_for(session.detach(), SCREENSHOT_EVAL_TIMEOUT_S)


def screenshot_size(width: float, height: float) -> tuple[int, int]:
    """The part of a page a full-page screenshot keeps: from the top left, at most
    :data:`MAX_SCREENSHOT_WIDTH` wide and :data:`MAX_SCREENSHOT_PIXELS` in all."""
    keep_w = max(1, min(math.ceil(width), MAX_SCREENSHOT_WIDTH))
    keep_h = max(1, min(math.ceil(height), MAX_SCREENSHOT_HEIGHT, MAX_SCREENSHOT_PIXELS // keep_w))
    if (keep_w, keep_h) != (math.ceil(width), math.ceil(height)):
        log.warning(
            "page is %d x %d px: its screenshot keeps the top left %d x %d px",
            math.ceil(width),
            math.ceil(height),
            keep_w,
            keep_h,
        )
    return keep_w, keep_h


async def _top_of_tall_page(page: Page) -> bytes:
    """The top :data:`MAX_SCREENSHOT_HEIGHT` pixels of a page taller than that.

    A clipped full-page screenshot has Chromium lay out and paint the whole page first (58 s
    for a 50 MB page of text); a viewport as tall as the cut paints only what is kept, with
    the same pixels.
    """
    size = page.viewport_size or {"width": 1280, "height": 900}
    await asyncio.wait_for(page.evaluate("window.scrollTo(0, 0)"), SCREENSHOT_EVAL_TIMEOUT_S)
    await page.set_viewport_size({"width": size["width"], "height": MAX_SCREENSHOT_HEIGHT})
    try:
        return await asyncio.wait_for(_fast_png(page, full_page=False), SCREENSHOT_TIMEOUT_S)
    finally:
        await page.set_viewport_size(size)


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
    if response is not None and status in (429, 503):
        # Too many requests, or overloaded for a said time: the host's gate keeps away.
        retry = retry_after_seconds(await response.header_value("retry-after"))
        if is_rate_limit(status, retry):
            raise RateLimited(page.url or url, status, retry)
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
