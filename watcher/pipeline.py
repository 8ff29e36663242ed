"""The orchestrator: one capture of one target, through every step, readable on one screen.

    take or check (browser) -> keep files (blob store, image hashes) -> record (one
    transaction: capture, posts, diff, events)

A target with ``full_every`` is looked at lightly between full captures: a check loads its
first page without images and compares its posts with the last capture's; the moment they
differ (or ``full_every`` has passed, or the last capture failed) a full capture is taken.

A failure of any step is recorded as a failed capture and reported; it never stops other
targets. This is the per-target boundary: the only place with a broad ``except``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from watcher import __version__
from watcher.alert.routing import routes_for
from watcher.app import App
from watcher.capture.adapters import Adapter
from watcher.capture.archive import RecordedResponse, ResponseRecorder, WaczSigner
from watcher.capture.blocks import REASONS as BLOCK_REASONS
from watcher.capture.blocks import BlockContext, block_for
from watcher.capture.dedup import (
    KnownPayloads,
    WebArchive,
    known_payloads,
    record_payloads,
    web_archive,
)
from watcher.capture.environment import collection_metadata
from watcher.capture.media import Download, ImageBudget, download_images
from watcher.capture.netguard import NetworkGuard, Refusal, RefusedAddress
from watcher.capture.page import (
    PageRequest,
    capture_details,
    check_page,
    error_screenshot,
    load_pages,
)
from watcher.capture.sessions import Session, refreshed_state
from watcher.detect import events as ev
from watcher.detect import layout
from watcher.detect.contacts import extract_contacts
from watcher.detect.diff import PostDiff, diff_posts, posts_fingerprint
from watcher.detect.images import ImageDecodeError, perceptual_hashes
from watcher.detect.keywords import KeywordMatch, KeywordMatcher
from watcher.detect.known import known_match_details, match_known
from watcher.errors import CaptureError, StoreError, WatcherError
from watcher.models import (
    Artifact,
    CapturedPost,
    CaptureMode,
    CaptureStatus,
    CaptureSummary,
    Event,
    ImageRecord,
    PageSnapshot,
    Post,
)
from watcher.store.blobs import BlobStore, sha256_hex
from watcher.store.db import CaptureRow, CheckBaseline
from watcher.store.links import contact_seen_before, record_contacts
from watcher.timeutil import parse_iso, utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)

# Detection (keywords, contacts) reads this much of each post and keeps this many matches.
# Posts are stored and searchable whole; a real listing is a few thousand characters at most
# (Telegram allows 4,096), while a hostile page of 50 MB of "posts" held the event loop for
# minutes. A post cut here says so in the log.
DETECT_CHARS = 20_000
DETECT_MATCHES = 100


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


@dataclass(frozen=True, slots=True)
class Kept:
    """The capture's files, now in the blob store."""

    artifacts: list[Artifact]
    images: dict[str, ImageRecord]  # by source URL
    archive: WebArchive | None = None  # the WACZ, when this capture made one


async def run_capture(app: App, target: Target, full: bool = False) -> CaptureSummary:
    """Capture ``target`` once, store it, diff it and record its events (``full``: no light
    check, whatever ``full_every`` says)."""
    started = utc_now()
    try:
        app.store.upsert_target(target.name, target.platform, target.url, started)
        taken = await _bounded(take_or_check(app, target, full), target)
        kept = await keep(app, target, taken, started)
        return record_success(app, target, started, taken, kept)
    except WatcherError as exc:
        return record_failure(app, target, started, exc)
    except Exception as exc:  # per-target boundary: record it, let the other targets go on
        log.exception("capture of %s failed unexpectedly", target.name)
        return record_failure(app, target, started, exc)


async def _bounded(work: Awaitable[Taken], target: Target) -> Taken:
    # Each browser call has its own limit, but a page can chain many slow ones: bound the whole.
    limit = target.timeout * 3 + 60
    try:
        return await asyncio.wait_for(work, limit)
    except TimeoutError as exc:
        raise CaptureError(
            "timeout", f"the capture took longer than {limit:.0f}s and was stopped"
        ) from exc


async def take_or_check(app: App, target: Target, full: bool = False) -> Taken:
    """A light check when one is due and the page still shows the last capture's posts;
    otherwise, or the moment anything differs, a full capture."""
    baseline = None if full else check_due(app, target)
    if baseline is not None:
        checked = await check(app, target)
        if checked is not None and posts_fingerprint(checked.posts) == baseline.fingerprint:
            return checked
        log.info("%s: the check found a difference; taking a full capture", target.name)
    return await take(app, target)


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
        async with hold, app.check_browser.context(session, guard) as context:
            user_agent = session.user_agent if session else app.check_browser.user_agent
            snapshot, posts = await check_page(
                context, request, target.adapter(), user_agent, app.check_browser.version
            )
    except WatcherError as exc:
        log.info("check of %s failed (%s); taking a full capture", target.name, exc)
        return None
    return Taken(snapshot, posts, {}, mode=CaptureMode.CHECK, refused=_refusals(guard))


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
    """Load the target's pages, extract posts, download their images (and detail pages)."""
    known = {p.post_id for p in app.store.live_posts(target.name)}
    previous_html = app.store.last_artifact_sha(target.name, "html")
    recorder = ResponseRecorder()
    session, hold = _account(app, target)
    guard = app.browser.guard(target.allow_private_network)
    async with hold, app.browser.context(session, guard) as context:
        user_agent = session.user_agent if session else app.browser.user_agent
        snapshot, posts = await _read(
            app, target, context, recorder, user_agent, known, previous_html, guard
        )
        # Bodies must be read while the context is open.
        responses = tuple(await recorder.finish())
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
    )
    try:
        snapshot, posts = await load_pages(
            context, request, adapter, user_agent, app.browser.version, recorder
        )
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


async def keep(app: App, target: Target, taken: Taken, started: str) -> Kept:
    """Put the capture's files in the blob store (off the event loop: hashing and gzip are
    CPU work), reusing what the archive already knows about the page and its images."""
    meta = _metadata(app, target, taken, started)
    known = app.store.stored_images({d.sha256 for d in taken.downloads.values() if d.sha256})
    payloads = await known_payloads(app.store, taken.snapshot, taken.mode == CaptureMode.FULL)
    return await asyncio.to_thread(
        keep_files,
        app.blobs,
        taken,
        meta,
        taken.previous_html,
        known,
        payloads,
        app.wacz_key,
    )


def keep_files(
    blobs: BlobStore,
    taken: Taken,
    meta: dict[str, object],
    previous_html: str | None = None,
    known_images: dict[str, ImageRecord] | None = None,
    payloads: KnownPayloads | None = None,
    signer: WaczSigner | None = None,
) -> Kept:
    """Write metadata, screenshot, HTML, posts JSON, web archive and images to the blob
    store; hash the images.

    The web archive (WACZ) is made when the page differs from the last capture's: an
    unchanged page is proven by the same HTML hash, without a second copy of everything.
    Images in ``known_images`` (by SHA-256) keep their stored hashes: the same bytes always
    give the same hashes, and decoding 200 photos again is most of an unchanged capture.
    Payloads the archive already holds go into the WACZ as revisit records (``dedup``).
    """
    snap = taken.snapshot
    files = _capture_files(taken, meta)
    html_sha = sha256_hex(snap.html_pages[0].encode("utf-8")) if snap.html_pages else None
    archive = None
    if taken.mode == CaptureMode.FULL and html_sha != previous_html:
        known = payloads or KnownPayloads()
        archive = web_archive(snap, meta, taken.cookie_values, known, taken.downloads, signer)
        files.append(_File("wacz", archive.wacz, "application/wacz", snap.final_url))
    shas = blobs.put_many([f.data for f in files])
    artifacts = [
        Artifact(f.kind, sha, len(f.data), f.media_type, f.source)
        for f, sha in zip(files, shas, strict=True)
    ]
    # Images were streamed into the store as they downloaded (see media.download_images).
    artifacts += [
        Artifact("image", d.sha256, d.size, d.media_type or "", url)
        for url, d in taken.downloads.items()
        if d.sha256 is not None
    ]
    known_images = known_images or {}
    images = {
        url: _image_record(blobs, download, known_images.get(download.sha256 or ""))
        for url, download in taken.downloads.items()
    }
    return Kept(artifacts, images, archive)


@dataclass(frozen=True, slots=True)
class _File:
    """One evidence file of a capture, before it goes into the blob store."""

    kind: str
    data: bytes
    media_type: str
    source: str | None = None


def _capture_files(taken: Taken, meta: dict[str, object]) -> list[_File]:
    """Metadata, screenshot, HTML pages, posts JSON and detail pages of a capture."""
    snap = taken.snapshot
    meta_json = json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True)
    files = [_File("metadata", meta_json.encode("utf-8"), "application/json")]
    if snap.screenshot:
        files.append(_File("screenshot", snap.screenshot, "image/png"))
    for html in snap.html_pages:
        files.append(_File("html", html.encode("utf-8"), "text/html", snap.final_url))
    posts_json = json.dumps([p.to_json() for p in taken.posts], ensure_ascii=False, indent=1)
    files.append(_File("posts", posts_json.encode("utf-8"), "application/json"))
    for post in taken.posts:
        if post.post_id in taken.details:
            html, shot = taken.details[post.post_id]
            files.append(_File("detail_html", html.encode(), "text/html", post.permalink))
            if shot:
                files.append(_File("detail_screenshot", shot, "image/png", post.permalink))
    return files


def record_success(
    app: App, target: Target, started: str, taken: Taken, kept: Kept
) -> CaptureSummary:
    """Store the capture, its posts and their diff against the last capture, in one transaction."""
    store, now = app.store, utc_now()
    captured = [_with_shas(post, kept.images) for post in taken.posts]
    with app.custody.transaction():
        baseline = not store.has_ok_capture(target.name)
        failures = store.failure_streak(target.name)
        diff = diff_posts(store.live_posts(target.name), captured, store.hidden_posts(target.name))
        capture_id = store.insert_capture(_capture_row(target, started, now, taken, baseline))
        for artifact in kept.artifacts:
            store.insert_artifact(capture_id, artifact, now)
        record_payloads(store, capture_id, kept.archive, now)
        fresh = [i for i in kept.images.values() if i.sha256 and store.insert_image(i, now)]
        errors = {url: i.error for url, i in kept.images.items() if i.error}
        rows = _store_posts(app, target.name, diff, capture_id, captured, now, errors)
        hits = keyword_hits(app.keywords, diff)
        store.insert_keyword_matches(target.name, rows, capture_id, hits, now)
        events = ev.post_events(target.name, diff, baseline, hits)
        events += ev.keyword_events(target.name, diff, hits, baseline)
        events += _contacts(app, target.name, diff, rows, capture_id, now)
        added = ev.new_images(diff, kept.images)
        candidates = [(n, rows[n.post.post.post_id][0]) for n in added]
        events += ev.repost_events(target.name, candidates, app.images, store.first_sighting)
        events += _known_images(app, target.name, added)
        if failures:
            events.append(ev.capture_recovered(target.name, failures))
        _log_custody(app, capture_id, target, CaptureStatus.OK, kept.artifacts, taken.mode)
        stored = record_events(app, [_stamp(e, capture_id, now) for e in events])
    for image in fresh:
        if image.phash is not None and image.sha256:
            app.images.add(image.sha256, image.phash, image.dhash)
    return CaptureSummary(
        target.name,
        capture_id,
        CaptureStatus.OK,
        None,
        started,
        now,
        len(captured),
        baseline,
        tuple(stored),
        new_images=len(added),
        mode=taken.mode,
    )


def record_failure(app: App, target: Target, started: str, exc: Exception) -> CaptureSummary:
    """Record a failed capture with its reason; alert only on the first failure of a streak."""
    now = utc_now()
    reason = exc.reason if isinstance(exc, CaptureError) else type(exc).__name__
    message = str(exc) or reason
    if isinstance(exc, StoreError) and exc.bug:
        # Not the site's doing: this target is blind until it is fixed, so say it loudly.
        log.error("storing a capture of %s failed (a bug)", target.name, exc_info=exc)
        reason, message = STORE_BUG, store_bug_message(target.name, message)
    # Blocked: the platform hid the content from us (login wall, ban...): the session needs care.
    status = CaptureStatus.BLOCKED if reason in BLOCK_REASONS else CaptureStatus.FAILED
    try:
        with app.custody.transaction():
            streak = app.store.failure_streak(target.name) + 1
            row = CaptureRow(
                target.name,
                status,
                started,
                now,
                target.url,
                reason=reason,
                message=message,
                watcher_version=__version__,
            )
            capture_id = app.store.insert_capture(row)
            shot = exc.screenshot if isinstance(exc, CaptureError) else None
            kept = [_put(app.blobs, "error_screenshot", shot, "image/png")] if shot else []
            for artifact in kept:
                app.store.insert_artifact(capture_id, artifact, now)
            _log_custody(app, capture_id, target, status, kept)
            event = _stamp(ev.capture_failed(target.name, reason, message, streak), capture_id, now)
            if streak == 1:
                (event,) = record_events(app, [event])
    except WatcherError as store_exc:
        # The store itself failed (disk full?): nothing to record into; say so loudly.
        log.error("could not record the failed capture of %s: %s", target.name, store_exc)
        capture_id, event = (
            None,
            ev.capture_failed(target.name, reason, f"{message}; {store_exc}", 0),
        )
    return CaptureSummary(target.name, capture_id, status, reason, started, now, 0, False, (event,))


STORE_BUG = "store_bug"


def store_bug_message(target: str, detail: str) -> str:
    """What a store refusal means for the team, and what to do about it."""
    return (
        f"watcher could not store the capture of {target} ({detail}). This is a bug in "
        "watcher, not a problem with the site, and this target's new posts are not recorded "
        "until it is fixed: please report it with the log (run 'watcher check "
        f"{target} --debug' and attach its output)"
    )


def record_events(app: App, events: list[Event]) -> list[Event]:
    """Store events and queue their alerts; call inside a transaction so both land together."""
    stored = []
    for event in events:
        saved = app.store.insert_event(event)
        for destination in routes_for(saved, app.watchlist):
            queued_at = saved.created_at or utc_now()
            app.store.enqueue(saved.id, destination.sink, destination.chat_id, queued_at)
        stored.append(saved)
    return stored


def _log_custody(
    app: App,
    capture_id: int,
    target: Target,
    status: CaptureStatus,
    artifacts: list[Artifact],
    mode: CaptureMode = CaptureMode.FULL,
) -> None:
    # The hashes taken at collection: `watcher verify` checks exported files against these.
    app.custody.append(
        "captured",
        f"capture:{capture_id}",
        {
            "target": target.name,
            "url": target.url,
            "status": str(status),
            "mode": str(mode),
            "artifacts": [{"kind": a.kind, "sha256": a.sha256, "size": a.size} for a in artifacts],
        },
    )


def _metadata(app: App, target: Target, taken: Taken, started: str) -> dict[str, object]:
    snap = taken.snapshot
    return collection_metadata(
        target=target.name,
        platform_name=target.platform,
        requested_url=snap.requested_url,
        final_url=snap.final_url,
        http_status=snap.http_status,
        started_at=started,
        ended_at=utc_now(),
        user_agent=snap.user_agent,
        browser_version=snap.browser_version,
        operator=app.watchlist.operator,
        session=target.session,
        page_text="\n".join(post.text for post in taken.posts),
    ) | ({"network_refused": [r.to_json() for r in taken.refused]} if taken.refused else {})


def keyword_hits(matcher: KeywordMatcher, diff: PostDiff) -> dict[str, list[KeywordMatch]]:
    """Keyword matches of new posts, and the matches an edit added, by post id."""
    hits: dict[str, list[KeywordMatch]] = {}
    new_texts = [_detected_part(captured.post) for captured in diff.new]
    for captured, found in zip(diff.new, matcher.find_many(new_texts), strict=True):
        if found:
            hits[captured.post.post_id] = found[:DETECT_MATCHES]
    for edit in diff.edited:
        if not edit.text_changed:
            continue
        before = {(m.group, m.term) for m in matcher.find(edit.before.text[:DETECT_CHARS])}
        after = matcher.find(_detected_part(edit.after.post))
        if added := [m for m in after if (m.group, m.term) not in before]:
            hits[edit.after.post.post_id] = added[:DETECT_MATCHES]
    return hits


def _detected_part(post: Post) -> str:
    """The start of the post's text that detection reads (see :data:`DETECT_CHARS`)."""
    if len(post.text) > DETECT_CHARS:
        log.info(
            "post %s has %d characters: keywords and contacts are read in the first %d",
            post.post_id,
            len(post.text),
            DETECT_CHARS,
        )
    return post.text[:DETECT_CHARS]


def _contacts(
    app: App,
    target: str,
    diff: PostDiff,
    rows: dict[str, tuple[int, int]],
    capture_id: int,
    now: str,
) -> list[Event]:
    """Record the phones, handles and links of new and edited posts; a contact already seen
    on another target links the two accounts (also on a baseline: that is when a new
    front man is most useful to know about)."""
    events = []
    for captured in [*diff.new, *(e.after for e in diff.edited)]:
        post = captured.post
        text = post.text[:DETECT_CHARS]  # as for keywords (see DETECT_CHARS)
        found = extract_contacts("\n".join([text, *post.links[:DETECT_MATCHES]]))[:DETECT_MATCHES]
        if not found:
            continue
        seen = contact_seen_before(app.store, target, found)
        record_contacts(
            app.store, target, post.post_id, rows[post.post_id][1], capture_id, found, now
        )
        events += ev.contact_events(target, post.post_id, seen)
    return events


def _known_images(app: App, target: str, added: list[ev.NewImage]) -> list[Event]:
    events = []
    for new in added:
        assert new.image.phash is not None and new.image.sha256 is not None
        matches = match_known(new.image.phash, app.known)
        if matches:
            details = known_match_details(new.image.sha256, matches)
            events.append(ev.known_image_event(target, new, details))
    return events


def _store_posts(
    app: App,
    target: str,
    diff: PostDiff,
    capture_id: int,
    captured: list[CapturedPost],
    now: str,
    image_errors: dict[str, str],
) -> dict[str, tuple[int, int]]:
    """Write new posts, new versions of edited ones, sightings and deletions.

    Returns (post row, version row) by post id.
    """
    store = app.store
    position: dict[str, int] = {}
    for i, c in enumerate(captured):
        position.setdefault(c.post.post_id, i)  # a post shown twice is where it first appears
    rows: dict[str, tuple[int, int]] = {}
    for c in diff.new:
        rows[c.post.post_id] = store.insert_post(
            target, c, capture_id, position[c.post.post_id], now, image_errors
        )
    for edit in diff.edited:
        post_id = edit.after.post.post_id
        version_id = store.insert_version(
            edit.before.row_id,
            edit.before.version + 1,
            edit.after,
            capture_id,
            position[post_id],
            now,
            image_errors,
        )
        rows[post_id] = (edit.before.row_id, version_id)
    for before, c in diff.unchanged:
        store.mark_seen(before.row_id, before.version_id, capture_id, position[c.post.post_id], now)
        rows[c.post.post_id] = (before.row_id, before.version_id)
    for back in diff.restored:
        # A post that changed while hidden got its new version with the edits above.
        if not back.edited:
            post_id = back.after.post.post_id
            before = back.before
            store.mark_seen(before.row_id, before.version_id, capture_id, position[post_id], now)
            rows[post_id] = (before.row_id, before.version_id)
        store.mark_restored(back.before.row_id, capture_id, now)
    for gone in diff.deleted:
        store.mark_deleted(gone.row_id, capture_id, now)
    return rows


def _with_shas(post: Post, images: dict[str, ImageRecord]) -> CapturedPost:
    return CapturedPost(
        post, tuple(images[u].sha256 if u in images else None for u in post.image_urls)
    )


def _image_record(blobs: BlobStore, download: Download, known: ImageRecord | None) -> ImageRecord:
    """The image's record: its stored hashes when the archive has these bytes, else new ones
    (read back from the store one image at a time)."""
    if download.sha256 is None:
        return ImageRecord(download.url, None, 0, None, error=download.error)
    if known is not None:
        return replace(known, url=download.url, media_type=download.media_type)
    size, sha = download.size, download.sha256
    try:
        hashes = perceptual_hashes(blobs.read(sha))
    except ImageDecodeError as exc:
        return ImageRecord(download.url, sha, size, download.media_type, error=str(exc))
    return ImageRecord(
        download.url,
        sha,
        size,
        download.media_type,
        phash=hashes.phash,
        dhash=hashes.dhash,
        width=hashes.width,
        height=hashes.height,
    )


def _put(
    blobs: BlobStore, kind: str, data: bytes, media_type: str, source: str | None = None
) -> Artifact:
    return Artifact(kind, blobs.put(data), len(data), media_type, source)


def _capture_row(
    target: Target, started: str, now: str, taken: Taken, baseline: bool
) -> CaptureRow:
    snap = taken.snapshot
    return CaptureRow(
        target=target.name,
        status=CaptureStatus.OK,
        started_at=started,
        ended_at=now,
        requested_url=snap.requested_url,
        final_url=snap.final_url,
        http_status=snap.http_status,
        user_agent=snap.user_agent,
        browser_version=snap.browser_version,
        watcher_version=__version__,
        post_count=len(taken.posts),
        baseline=baseline,
        mode=taken.mode,
        fingerprint=posts_fingerprint(taken.posts),
    )


def _stamp(event: Event, capture_id: int, now: str) -> Event:
    return replace(event, capture_id=capture_id, created_at=now)


def _no_posts_message(target: Target) -> str:
    selector = target.adapter().recipe.post
    return (
        f"the page loaded but no posts were found with the selector `{selector}`. If the page "
        f"changed its layout, fix `selectors: post:` for target {target.name!r} in the watchlist"
    )
