"""Take, through a Telegram account: the API source of a capture, beside the browser.

A target ``platform: telegram`` with a ``session:`` is read through that account's Telegram
API session instead of a page. The result is the same :class:`Taken` as the browser's: posts
(albums as one post), photos in the blob store, a snapshot whose HTML and screenshot are
watcher's labelled rendering of the messages, plus the raw messages as received. Keep and
record then run unchanged; the diff judges deletions only within the messages read
(``AccountCapture.covers``).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import TypeVar

from playwright.async_api import Error as PlaywrightError

from watcher.app import App
from watcher.capture.media import Download
from watcher.capture.tgapi.accounts import TelegramAccounts
from watcher.capture.tgapi.client import (
    TELETHON_VERSION,
    AccountClient,
    parse_chat_link,
)
from watcher.capture.tgapi.records import (
    RENDERING_LABEL,
    AccountCapture,
    AccountStopped,
    ApiMessage,
    ChatRef,
    EvidenceFile,
    FloodWait,
    FloodWaitRecord,
    TelegramApiError,
)
from watcher.capture.tgapi.render import render_messages
from watcher.errors import CaptureError
from watcher.models import PageSnapshot, Post
from watcher.steps.take import Taken
from watcher.store.telegram_chats import archived_photo, save_chat, stored_chat
from watcher.timeutil import utc_now
from watcher.watchlist import Target

log = logging.getLogger(__name__)

WINDOW = 50  # recent messages read again each capture, to notice edits and deletions
MAX_MESSAGES = 500  # at most this many per capture (the rest next time)
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTOS = 40  # photos downloaded per capture; the rest are marked not downloaded
ATTEMPTS = 3  # a request that met short flood waits is tried at most this often

T = TypeVar("T")


def reads_through_account(target: Target) -> bool:
    """A Telegram target with a session is read through the account's API session."""
    return target.platform == "telegram" and bool(target.session)


async def take_through_account(app: App, target: Target) -> Taken:
    """Read the target's chat through its account: the same Taken the browser gives."""
    accounts, name = app.telegram, str(target.session)
    accounts.check_usable(name)  # paused or stopped: no request at all
    session = accounts.sessions.load(name)
    waits: list[FloodWaitRecord] = []
    state = accounts.state(name)
    spent_before = state.budget.spent

    async def patient(call: Callable[[], Awaitable[T]]) -> T:
        return await _patient(accounts, name, call, waits)

    async with (
        app.session_locks.hold(name),
        AccountClient(accounts.client(session), name, state.budget.spend) as client,
    ):
        account = await patient(client.me)
        chat = await _chat(app, target, client, patient)
        last_seen = _last_seen(app, target)
        records, originals, whole = await patient(
            lambda: client.messages(chat, WINDOW, last_seen, MAX_MESSAGES)
        )
        downloads, photos = await _photos(app, chat, records, originals, client, patient)
    received_at = utc_now()
    posts = to_posts(records, chat, downloads)
    html = render_messages(chat, account, received_at, records, photos)
    screenshot = await _screenshot(app, html)
    capture = AccountCapture(
        account,
        chat,
        _raw_files(records, chat),
        # The whole history read: every stored message is judged; else only those read.
        0 if whole else min((m.id for m in records), default=None),
        WINDOW,
        tuple(waits),
        state.budget.spent - spent_before,
    )
    snapshot = PageSnapshot(
        requested_url=target.url,
        final_url=chat.address,
        http_status=None,
        html_pages=(html,),
        screenshot=screenshot,
        user_agent=f"Telethon {TELETHON_VERSION} ({RENDERING_LABEL})",
        browser_version=app.browser.version,
    )
    return Taken(snapshot, posts, downloads, account_capture=capture)


async def _patient(
    accounts: TelegramAccounts,
    name: str,
    call: Callable[[], Awaitable[T]],
    waits: list[FloodWaitRecord],
) -> T:
    """``call``, honouring short flood waits to the second (a few times, never in a tight
    loop), pausing the account on a long one, stopping it when it is out."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await call()
        except FloodWait as wait:
            if wait.seconds > accounts.flood_wait_cap_s:
                waits.append(FloodWaitRecord(wait.seconds, utc_now(), honoured=False))
                raise accounts.pause(name, wait) from wait
            waits.append(FloodWaitRecord(wait.seconds, utc_now(), honoured=True))
            log.warning("%s; waiting %ss (attempt %s)", wait, wait.seconds, attempt)
            if attempt == ATTEMPTS:
                raise
            await accounts.sleep(wait.seconds)
        except AccountStopped as stopped:
            raise accounts.stop(name, stopped) from stopped
    raise AssertionError("unreachable")  # the loop returns or raises


async def _chat(
    app: App,
    target: Target,
    client: AccountClient,
    patient: Callable[[Callable[[], Awaitable[ChatRef]]], Awaitable[ChatRef]],
) -> ChatRef:
    """The stored chat of the target's link, or the link resolved (an invite joined) once."""
    chat = stored_chat(app.store, target.name, target.url)
    if chat is not None:
        return chat
    link = parse_chat_link(target.url)
    chat = await patient(lambda: client.resolve(link))
    save_chat(app.store, target.name, target.url, chat, client.account, utc_now())
    log.info("%s: %s is chat %s (%s)", target.name, target.url, chat.chat_id, chat.title)
    return chat


def _last_seen(app: App, target: Target) -> int | None:
    ids = [
        int(p.post_id)
        for p in (*app.store.live_posts(target.name), *app.store.hidden_posts(target.name))
        if p.post_id.isdigit()
    ]
    return max(ids, default=None)


def photo_url(chat: ChatRef, message: ApiMessage) -> str:
    """The address a photo is known by: its message's link and the photo's own id."""
    assert message.photo is not None
    return f"{chat.permalink(message.id)}#photo-{message.photo.photo_id}"


async def _photos(
    app: App,
    chat: ChatRef,
    records: list[ApiMessage],
    originals: list[object],
    client: AccountClient,
    patient: Callable[[Callable[[], Awaitable[bytes]]], Awaitable[bytes]],
) -> tuple[dict[str, Download], dict[int, tuple[bytes, str]]]:
    """Each photo: the stored one when it was seen before, else downloaded (bounded in size
    and count; each download is a paced request)."""
    downloads: dict[str, Download] = {}
    shown: dict[int, tuple[bytes, str]] = {}
    fetched = 0
    for record, original in zip(records, originals, strict=True):
        if record.photo is None:
            continue
        url = photo_url(chat, record)
        known = archived_photo(app.store, url)
        if known is not None:
            sha, size, media_type = known
            downloads[url] = Download(url, sha, size, media_type)
            shown[record.id] = (app.blobs.read(sha), media_type or "image/jpeg")
            continue
        if record.photo.size and record.photo.size > MAX_PHOTO_BYTES:
            downloads[url] = Download(url, None, 0, None, f"over {MAX_PHOTO_BYTES} bytes")
            continue
        if fetched >= MAX_PHOTOS:
            downloads[url] = Download(url, None, 0, None, skipped_for_budget=True)
            continue
        fetched += 1
        try:
            data = await patient(lambda o=original: client.download_photo(o, MAX_PHOTO_BYTES))
        except TelegramApiError as exc:
            if isinstance(exc, AccountStopped) or exc.reason == "account_paused":
                raise
            downloads[url] = Download(url, None, 0, None, str(exc))
            continue
        media_type = _media_type(data)
        downloads[url] = Download(url, app.blobs.put(data), len(data), media_type)
        shown[record.id] = (data, media_type)
    return downloads, shown


def _media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"  # Telegram serves photos as JPEG


def to_posts(
    records: list[ApiMessage], chat: ChatRef, downloads: dict[str, Download]
) -> list[Post]:
    """Messages as posts, newest first; an album (one ``grouped_id``) is one post under its
    first message's id, with every photo and the caption it has. Service messages (joins,
    pins) are not posts."""
    groups: dict[object, list[ApiMessage]] = {}
    for m in sorted((m for m in records if not m.service), key=lambda m: m.id):
        groups.setdefault(("album", m.grouped_id) if m.grouped_id else m.id, []).append(m)
    posts = []
    for members in groups.values():
        first = members[0]
        text = next((m.text for m in members if m.text), "")
        posts.append(
            Post(
                post_id=str(first.id),
                text=text,
                permalink=chat.permalink(first.id),
                author=first.author,
                posted_at=first.date,
                image_urls=tuple(photo_url(chat, m) for m in members if m.photo is not None),
                links=tuple(dict.fromkeys(u for m in members for u in m.links)),
                forwarded_from=first.forwarded_from,
                views=str(first.views) if first.views is not None else None,
                edited=any(m.edit_date and not m.edit_hidden for m in members),
                link_preview=first.link_preview,
            )
        )
    posts.sort(key=lambda p: int(p.post_id), reverse=True)
    return posts


def _raw_files(records: list[ApiMessage], chat: ChatRef) -> tuple[EvidenceFile, ...]:
    """The messages as received: Telegram's serialised form (each message's bytes after a
    4-byte big-endian length, in the order received) and Telethon's JSON of each."""
    tl = b"".join(struct.pack(">I", len(m.raw)) + m.raw for m in records)
    as_json = json.dumps(
        [json.loads(m.raw_json) for m in records], ensure_ascii=False, indent=1, default=str
    )
    return (
        EvidenceFile("api_messages_tl", tl, "application/x-telegram-tl", chat.address),
        EvidenceFile(
            "api_messages_json", as_json.encode("utf-8"), "application/json", chat.address
        ),
    )


async def _screenshot(app: App, html: str) -> bytes:
    """Chromium's picture of the rendering: set as the page's content (no address, no
    network: the photos are inline), never a page of Telegram's."""
    guard = app.browser.guard(False)
    async with app.browser.context(None, guard) as context:
        page = await context.new_page()
        try:
            await page.set_content(html, wait_until="load")
            return await page.screenshot(full_page=True, type="png")
        except PlaywrightError as exc:
            raise CaptureError("rendering", f"could not screenshot the rendering: {exc}") from exc
