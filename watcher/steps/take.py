"""Take (or check): the browser's part of a capture.

A full capture loads the target's pages, extracts their posts, downloads their images (and
detail pages) and turns a block page or an empty one into a ``CaptureError``. A target with
``full_every`` is looked at lightly between full captures (:func:`take_or_check`): its first
page, compared with the last capture's posts. The check reads the HTML as the server sends
it, without a renderer (:func:`check_http`), unless the target was marked as needing the
browser because that HTML did not hold the posts the browser saw (a page built by scripts):
then the checks' browser loads it without images (:func:`check`). Every page load first
asks its host's gate (``App.hosts``, :mod:`watcher.capture.polite`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from watcher.app import App
from watcher.capture.adapters import Adapter
from watcher.capture.archive import RecordedResponse, ResponseRecorder, as_connected
from watcher.capture.blocks import BlockContext, block_for
from watcher.capture.browser import LOCALE, BrowserInfo
from watcher.capture.fetch import Identity, RateLimited, fetch_html
from watcher.capture.media import Download, ImageBudget, download_images
from watcher.capture.netguard import NetworkGuard, Refusal, RefusedAddress
from watcher.capture.page import (
    PageRequest,
    capture_details,
    check_page,
    error_screenshot,
    load_pages,
)
from watcher.capture.pool import LostAttempt, with_endpoint_retries
from watcher.capture.sessions import Session, refreshed_state
from watcher.capture.tgapi.records import AccountCapture
from watcher.detect import layout
from watcher.detect.diff import posts_fingerprint
from watcher.errors import CaptureError, WatcherError
from watcher.models import CaptureMode, PageSnapshot, Post
from watcher.store import check_modes
from watcher.store.db import CheckBaseline
from watcher.timeutil import parse_iso, to_iso
from watcher.watchlist import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Taken:
    """What the browser brought back for one capture."""

    snapshot: PageSnapshot
    posts: list[Post]
    downloads: dict[str, Download]
    details: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)
    # SHA-256 of the last capture's HTML, read once: the page skipped its MHTML against it, and
    # keep_files makes the web archive against the same value.
    previous_html: str | None = None
    mode: CaptureMode = CaptureMode.FULL
    # Requests the network guard refused (a redirect or image into a private network).
    refused: tuple[Refusal, ...] = ()
    # Cookie values of the capture's browser (the session's and any the page set): secrets
    # the web archive must not carry in request headers or bodies.
    cookie_values: frozenset[str] = frozenset()
    # Which browser took it (evidence says which machine saw the page), and the attempts
    # lost on remote browsers that died under the capture before this one.
    browser: BrowserInfo | None = None
    lost: tuple[LostAttempt, ...] = ()
    # Read through a Telegram account (steps.telegram_account), not a browser: the account,
    # the raw messages, how far back it read. None for a browser capture.
    account_capture: AccountCapture | None = None
    # What read the page: "browser", or "http" (a check without a renderer).
    read_by: str = "browser"


async def take_or_check(app: App, target: Target, full: bool = False) -> Taken:
    """A light check when one is due and the page still shows the last capture's posts;
    otherwise, or the moment anything differs, a full capture. A Telegram target with a
    session is read through its account's API instead of a browser.

    An HTTP check whose posts differ is followed by the full capture as any check is; when
    the browser then sees other posts than the HTTP answer held (or the site refuses plain
    requests), the target's checks move to the browser (``check_modes``)."""
    # Imported here: that source builds this module's Taken.
    from watcher.steps.telegram_account import reads_through_account, take_through_account

    if reads_through_account(target):
        return await take_through_account(app, target)
    baseline = None if full else check_due(app, target)
    if baseline is None:
        return await take(app, target)
    over_http = check_modes.checks_over_http(app.store, target.name)
    problem = None
    if over_http:
        checked, problem = await check_http(app, target)
    else:
        checked = await check(app, target)
    if checked is not None and posts_fingerprint(checked.posts) == baseline.fingerprint:
        return checked
    log.info("%s: the check found a difference; taking a full capture", target.name)
    taken = await take(app, target)
    if over_http:
        _judge_http(app, target, checked, problem, taken)
    return taken


# HTTP check failures that say the site will not serve the page to a plain request (and so
# every HTTP check would be wasted), as opposed to a passing network or server trouble.
_NOT_FOR_HTTP = frozenset({"http_error", "not_html", "too_large", "refused"})


def _judge_http(
    app: App, target: Target, checked: Taken | None, problem: CaptureError | None, taken: Taken
) -> None:
    """Mark ``target`` as needing the browser for its checks when the HTTP answer did not
    hold what the browser then saw."""
    if checked is None:
        if problem is None or problem.reason not in _NOT_FOR_HTTP:
            return
        reason = (
            f"a plain HTTP request is not answered as the browser is ({problem}); "
            "its checks use the browser"
        )
    elif posts_fingerprint(checked.posts) != posts_fingerprint(taken.posts):
        seen = {p.post_id for p in checked.posts}
        held = sum(1 for p in taken.posts if p.post_id in seen)
        reason = (
            f"the page as the server sends it held {held} of the {len(taken.posts)} posts the "
            "browser saw (it is built by scripts); its checks use the browser"
        )
    else:
        return  # the page really changed: the HTTP check saw it right
    log.info("%s: %s", target.name, reason)
    check_modes.set_check_mode(app.store, target.name, check_modes.BROWSER, reason)


def check_due(app: App, target: Target) -> CheckBaseline | None:
    """What a check would compare with, when the target may be checked now: it sets
    ``full_every``, reads one page (a check reads no further), its last capture succeeded
    and its last full capture is younger than ``full_every``."""
    if not target.full_every or target.pages > 1 or target.load_more or target.scroll:
        return None
    baseline = app.store.check_baseline(target.name)
    if baseline is None:
        return None
    full_at = parse_iso(baseline.full_started_at)
    # A clock that went back gives a negative age: take a full capture rather than trust it.
    if (
        full_at is None
        or not 0 <= (datetime.now(UTC) - full_at).total_seconds() < target.full_every
    ):
        return None
    return baseline


async def check(app: App, target: Target) -> Taken | None:
    """The target's first page, its HTML and posts, in the checks' browser (no images, no
    screenshot). None when the check itself failed: the full capture then finds out why."""
    session, hold = _account(app, target)
    request = PageRequest(url=target.url, timeout_s=target.timeout)
    guard = app.check_browser.guard(target.allow_private_network)
    try:
        async with hold, polite(app, target), app.check_browser.context(session, guard) as context:
            browser = app.check_browser.info_for(context)
            user_agent = session.user_agent if session else browser.user_agent
            snapshot, posts = await check_page(
                context, request, target.adapter(), user_agent, browser.version
            )
    except WatcherError as exc:
        if isinstance(exc, CaptureError) and exc.reason == "rate_limited":
            raise  # the site asked for a pause: no full capture on top
        log.info("check of %s failed (%s); taking a full capture", target.name, exc)
        return None
    return Taken(
        snapshot, posts, {}, mode=CaptureMode.CHECK, refused=_refusals(guard), browser=browser
    )


async def check_http(app: App, target: Target) -> tuple[Taken | None, CaptureError | None]:
    """The target's first page as the server sends it (no renderer) and its posts, asked as
    the target's identity (session cookies, user agent, language); the network guard judges
    every address. (None, why) when the check itself failed: the full capture then finds out
    what is wrong. A 429/503 is raised: the site asked for a pause, no full capture follows.
    """
    session, hold = _account(app, target)
    guard = app.browser.guard(target.allow_private_network)
    identity = Identity(
        user_agent=session.user_agent if session else await _anonymous_user_agent(app, target),
        locale=session.locale if session else LOCALE,
        cookies=tuple(session.cookies) if session else (),
    )
    try:
        async with hold, polite(app, target):
            page = await fetch_html(target.url, guard, identity, target.timeout)
    except CaptureError as exc:
        if exc.reason == "rate_limited":
            raise
        log.info("HTTP check of %s failed (%s); taking a full capture", target.name, exc)
        return None, exc
    except RefusedAddress as exc:
        log.info("HTTP check of %s refused (%s); taking a full capture", target.name, exc)
        return None, CaptureError("refused", str(exc))
    snapshot = PageSnapshot(
        requested_url=page.requested_url,
        final_url=page.final_url,
        http_status=page.status,
        html_pages=(page.html,),
        screenshot=None,
        user_agent=identity.user_agent,
        browser_version=HTTP_READER,
    )
    posts = target.adapter().extract(page.html, page.final_url, datetime.now(UTC))
    taken = Taken(
        snapshot, posts, {}, mode=CaptureMode.CHECK, refused=_refusals(guard), read_by="http"
    )
    return taken, None


# What the capture record names as the "browser" of an HTTP check: none, and the client.
HTTP_READER = f"none: HTTP request (httpx {httpx.__version__})"


async def _anonymous_user_agent(app: App, target: Target) -> str:
    """The user agent the target was last seen with (its baseline capture's browser), so the
    site sees the same visitor; the browser's when there is none."""
    last = app.store.last_capture(target.name)
    if last is not None and last.user_agent:
        return last.user_agent
    if not app.browser.user_agent:
        await app.browser.start()
    return app.browser.user_agent


@contextlib.asynccontextmanager
async def polite(app: App, target: Target) -> AsyncIterator[None]:
    """Hold a slot of the target's host (its spacing kept); a 429/503 inside puts the host
    on hold for its Retry-After (or the backoff)."""
    host = urlsplit(target.url).hostname or ""
    async with app.hosts.visit(host, target.platform, max_wait=target.timeout):
        try:
            yield
        except RateLimited as exc:
            until = app.hosts.rate_limited(
                urlsplit(exc.url).hostname or host, target.platform, exc.retry_after
            )
            log.warning(
                "%s: %s asked for a pause; left alone until %s", target.name, host, to_iso(until)
            )
            raise
        app.hosts.answered(host)


def _account(
    app: App, target: Target
) -> tuple[Session | None, contextlib.AbstractAsyncContextManager[None]]:
    """The target's session (None: anonymous) and the hold on its account.

    Enter the hold before a browser slot: a capture waiting for its account must not hold a
    slot other targets could use.
    """
    if not target.session:
        return None, contextlib.nullcontext()
    return app.sessions.load(target.session), app.session_locks.hold(target.session)


async def take(app: App, target: Target) -> Taken:
    """Load the target's pages, extract posts, download their images (and detail pages).

    On remote browsers, a capture whose browser dies under it is taken again on another
    (``capture.pool``); the lost attempts ride along into the capture's metadata.
    """
    taken, lost = await with_endpoint_retries(lambda: _take_once(app, target))
    return replace(taken, lost=lost) if lost else taken


async def _take_once(app: App, target: Target) -> Taken:
    known = {p.post_id for p in app.store.live_posts(target.name)}
    previous_html = app.store.last_artifact_sha(target.name, "html")
    recorder = ResponseRecorder()
    session, hold = _account(app, target)
    guard = app.browser.guard(target.allow_private_network)
    async with hold, polite(app, target), app.browser.context(session, guard) as context:
        browser = app.browser.info_for(context)
        user_agent = session.user_agent if session else browser.user_agent
        snapshot, posts = await _read(
            app, target, context, recorder, user_agent, known, previous_html, guard, browser.version
        )
        # Bodies must be read while the context is open.
        responses = as_connected(await recorder.finish(), guard)
        urls = [url for post in posts for url in post.image_urls]
        downloads = await download_images(
            context,
            urls,
            referer=snapshot.final_url,
            blobs=app.blobs,
            guard=guard,
            user_agent=user_agent,
            budget=ImageBudget.from_env(),
            prefetched=_image_bodies(responses),
        )
        cookie_values = await _cookie_values(context, session)
        details = {}
        if target.detail:
            fresh = [p for p in posts if p.post_id not in known]
            details = await capture_details(context, fresh, timeout_s=target.timeout)
        if session:
            # Only after a good capture: a logged-out state must not overwrite good cookies.
            state = await refreshed_state(context)
            await asyncio.to_thread(app.sessions.update_state, session.name, state)
    return Taken(
        replace(snapshot, responses=responses),
        posts,
        downloads,
        details,
        previous_html,
        refused=_refusals(guard),
        cookie_values=cookie_values,
        browser=browser,
    )


def _refusals(guard: NetworkGuard) -> tuple[Refusal, ...]:
    # The browser asks again for what it was refused (retries, each redirect hop): once each.
    return tuple(dict.fromkeys(guard.refused))


async def _cookie_values(context: BrowserContext, session: Session | None) -> frozenset[str]:
    """Every cookie value of the capture: the session's and those set while it ran."""
    values = (
        {c.get("value", "") for c in (session.storage_state.get("cookies") or [])}
        if session
        else set()
    )
    try:
        values |= {c["value"] for c in await context.cookies()}
    except PlaywrightError as exc:
        log.warning("could not read the capture's cookies to keep them out of the archive: %s", exc)
    return frozenset(v for v in values if v)


def _image_bodies(responses: tuple[RecordedResponse, ...]) -> dict[str, tuple[bytes, str | None]]:
    """Complete image bodies the page load received, so they are not downloaded again."""
    bodies = {}
    for r in responses:
        if r.method == "GET" and r.status == 200 and r.body and not r.truncated:
            media_type = next(
                (
                    v.split(";")[0].strip()
                    for k, v in r.response_headers
                    if k.lower() == "content-type"
                ),
                None,
            )
            if media_type and media_type.startswith("image/"):
                bodies[r.url] = (r.body, media_type)
    return bodies


async def _read(
    app: App,
    target: Target,
    context: BrowserContext,
    recorder: ResponseRecorder,
    user_agent: str,
    known: set[str],
    previous_html: str | None,
    guard: NetworkGuard,
    version: str = "",
) -> tuple[PageSnapshot, list[Post]]:
    """Load and extract; a block page or an empty page is a CaptureError with a screenshot.

    A page the network guard would not open (it, or a redirect, leads into a private
    network) fails with reason ``refused`` and says where it led."""
    adapter = target.adapter()
    request = PageRequest(
        url=target.url,
        pages=target.pages,
        timeout_s=target.timeout,
        next_page=target.next_page,
        load_more=target.load_more,
        scroll=target.scroll,
        # Reading back stops at posts already seen; with one page there is nothing to save.
        known_ids=frozenset(known) if target.pages > 1 and known else None,
        previous_html=previous_html,
        mhtml=target.keep_mhtml or previous_html is None,
    )
    try:
        snapshot, posts = await load_pages(context, request, adapter, user_agent, version, recorder)
        await _check_landing(guard, target, snapshot.final_url)
        check_content(adapter, target, snapshot, posts, had_posts=bool(known))
        check_layout(app, target, snapshot, posts)
    except CaptureError as exc:
        if exc.reason == "refused":
            raise  # no screenshot: it would show the internal page
        for page in context.pages[:1]:  # a redirect inside, then an error page there
            await _check_landing(guard, target, page.url)
        exc.screenshot = exc.screenshot or await error_screenshot(context)
        # The page itself, a redirect or a meta refresh was refused: say so, not just "down".
        if exc.reason in ("network", "timeout", "no_posts") and guard.refused:
            first = guard.refused[0]
            refused = RefusedAddress(first.url, first.address, first.why)
            message = f"{exc}; {_refused_message(refused, target)}"
            raise CaptureError("refused", message, exc.screenshot) from exc
        if exc.reason == "network" and guard.unreachable:
            # Through the guard proxy the browser only says the connection ended: the
            # proxy knows why (refused, no route, timed out).
            message = f"{exc} ({guard.unreachable[0]})"
            raise CaptureError("network", message, exc.screenshot) from exc
        raise
    return snapshot, posts


async def _check_landing(guard: NetworkGuard, target: Target, final_url: str) -> None:
    """Refuse a page that an HTTP redirect took into a private network.

    Chromium follows a navigation's redirects without passing them through the context's
    route, so the guard sees them only here, after the fact: the capture is refused and
    nothing of the page (not even a screenshot) is kept.
    """
    if not final_url.startswith(("http:", "https:")):
        return  # about:blank, an error page: nothing was reached
    try:
        await guard.check_url(final_url)
    except RefusedAddress as exc:
        raise CaptureError("refused", _refused_message(exc, target)) from exc


def _refused_message(exc: RefusedAddress, target: Target) -> str:
    where = f"{exc.why} ({exc.address})" if exc.address else exc.why
    return (
        f"the network guard refused {exc.url}: it leads to {where}. If this page really is "
        f"on your own network, set `allow_private_network: true` on target {target.name} "
        "in the watchlist"
    )


def check_content(
    adapter: Adapter, target: Target, snapshot: PageSnapshot, posts: list[Post], had_posts: bool
) -> None:
    """Raise when the page is not the real content: a block, or no posts at all.

    Nothing is marked deleted from such a capture: it is recorded as blocked or failed.
    """
    block = adapter.detect_block(
        snapshot.html_pages[0], snapshot.final_url, snapshot.requested_url, posts, target.session
    )
    if block is None and not posts and had_posts:
        where = BlockContext(
            adapter.label, target.session, adapter.login_url or target.url, target.url
        )
        block = block_for("empty_after_posts", where)
    if block is not None:
        raise CaptureError(block.reason, block.message, snapshot.screenshot)
    if not posts:
        raise CaptureError("no_posts", _no_posts_message(target), snapshot.screenshot)


def check_layout(app: App, target: Target, snapshot: PageSnapshot, posts: list[Post]) -> None:
    """Raise ``layout_changed`` when the recipe has started to miss (detect/layout.py), so
    nothing is marked new or deleted from a capture the recipe no longer reads right."""
    live = app.store.live_posts(target.name)
    seen = layout.Seen(
        frozenset(p.post_id for p in live),
        tuple(p.text for p in live),
        tuple(p.posted_at for p in live),
        app.store.recent_post_counts(target.name),
    )
    change = layout.detect_layout_change(posts, seen)
    if change is not None:
        message = layout.layout_message(change, target.name)
        raise CaptureError("layout_changed", message, snapshot.screenshot)


def _no_posts_message(target: Target) -> str:
    selector = target.adapter().recipe.post
    return (
        f"the page loaded but no posts were found with the selector `{selector}`. If the page "
        f"changed its layout, fix `selectors: post:` for target {target.name!r} in the watchlist"
    )
