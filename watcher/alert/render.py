"""What an alert says: Telegram HTML text and the stored files to attach. Pure."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from watcher.models import Event, EventKind

TEXT_LIMIT = 4096  # Telegram's limit for one message
CAPTION_LIMIT = 1024  # and for a photo's caption
EXCERPT = 1200
MAX_PHOTOS = 10  # one media group

_TITLES = {
    EventKind.NEW_POST: "🆕 New post",
    EventKind.EDITED_POST: "✏️ Post edited",
    EventKind.DELETED_POST: "🗑 Post deleted",
    EventKind.IMAGE_SEEN_BEFORE: "🔁 Photo seen before",
    EventKind.KEYWORD: "🔑 Keyword match",
    EventKind.CAPTURE_FAILED: "⚠️ Capture failing",
    EventKind.CAPTURE_RECOVERED: "✅ Capture recovered",
    EventKind.WATCHLIST_INVALID: "⚠️ Watchlist edit rejected",
}


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A rendered alert: HTML text, photo blobs (SHA-256) and an optional page screenshot."""

    html: str
    caption: str  # the same, short enough to caption a photo (1024 characters)
    photo_shas: tuple[str, ...] = ()
    screenshot_sha: str | None = None

    @property
    def has_attachments(self) -> bool:
        """True when the alert carries photos or a screenshot."""
        return bool(self.photo_shas or self.screenshot_sha)


def render_alert(event: Event, platform: str | None, screenshot_sha: str | None) -> AlertMessage:
    """Text and attachments for one event."""
    lines = [f"<b>{_TITLES.get(event.kind, str(event.kind))}</b> · <b>{_e(event.target)}</b>"]
    if platform:
        lines[0] += f" ({_e(platform)})"
    evidence = []
    if event.capture_id:
        evidence.append(f"Evidence: capture #{event.capture_id} (/evidence {event.capture_id})")
    photos = _photos(event)
    shot = screenshot_sha if not photos and event.kind in _POST_KINDS else None
    full = _fit("\n".join([*lines, *_body(event, EXCERPT), *evidence]), TEXT_LIMIT)
    short = _fit("\n".join([*lines, *_body(event, 300), *evidence]), CAPTION_LIMIT)
    return AlertMessage(full, short, photos, shot)


def render_digest(events: list[Event]) -> str:
    """One message standing for a burst of alerts to the same chat."""
    head = f"<b>📦 {len(events)} alerts at once</b> (folded to respect Telegram's limits)"
    lines = [head]
    for event in events:
        title = _TITLES.get(event.kind, str(event.kind))
        post = f" {_e(event.post_id)}" if event.post_id else ""
        text = _excerpt(event.details.get("text") or event.details.get("message") or "", 90)
        link = event.details.get("permalink")
        item = f"• {title} · {_e(event.target)}{post}"
        if link:
            item += f' <a href="{_e(link)}">link</a>'
        if event.capture_id:
            item += f" #{event.capture_id}"
        lines.append(item + (f"\n  {_e(text)}" if text else ""))
    return _fit("\n".join(lines), TEXT_LIMIT)


_POST_KINDS = {EventKind.NEW_POST, EventKind.EDITED_POST, EventKind.DELETED_POST}


def _body(event: Event, excerpt: int) -> list[str]:
    d = event.details
    if event.kind == EventKind.IMAGE_SEEN_BEFORE:
        first = d.get("first_seen", {})
        where = _e(first.get("target", "?"))
        link = first.get("permalink")
        post = _e(first.get("post_id", "?"))
        post = f'<a href="{_e(link)}">{post}</a>' if link else post
        return [
            f"Post {_e(event.post_id or '?')} shows a photo first seen on <b>{where}</b>"
            f" post {post}"
            f" at {_e(first.get('seen_at', '?'))} (distance {d.get('distance')}).",
            *_post_link(d),
        ]
    if event.kind in (EventKind.CAPTURE_FAILED, EventKind.WATCHLIST_INVALID):
        return [_e(d.get("message", ""))]
    if event.kind == EventKind.CAPTURE_RECOVERED:
        return [f"Capturing again after {d.get('failures')} failed attempt(s)."]
    lines = []
    if event.kind == EventKind.EDITED_POST and d.get("text_changed"):
        lines.append(f"<i>Before:</i> {_e(_excerpt(d.get('previous_text', ''), excerpt // 3))}")
    lines.append(_e(_excerpt(d.get("text", ""), excerpt)) or "<i>(no text)</i>")
    if d.get("posted_at"):
        lines.append(f"Posted: {_e(d['posted_at'])}")
    if event.kind == EventKind.DELETED_POST:
        lines.append(
            f"First seen {_e(d.get('first_seen_at', '?'))}, last seen "
            f"{_e(d.get('last_seen_at', '?'))}. Attached: the last stored copy."
        )
    return lines + _post_link(d)


def _post_link(details: dict) -> list[str]:
    link = details.get("permalink")
    return [f'<a href="{_e(link)}">Open post</a>'] if link else []


def _photos(event: Event) -> tuple[str, ...]:
    d = event.details
    if event.kind == EventKind.IMAGE_SEEN_BEFORE:
        shas = [d.get("image_sha256"), d.get("first_seen", {}).get("image_sha256")]
    else:
        shas = list(d.get("image_shas", []))
    return tuple(dict.fromkeys(s for s in shas if s))[:MAX_PHOTOS]


def _excerpt(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(text: str, limit: int) -> str:
    # Cutting HTML could split a tag or an entity: cut at a line break that leaves them whole,
    # or else fall back to plain text.
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 2)
    if cut > limit // 2:
        return text[:cut] + "\n…"
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    return _e(plain[: limit // 6]) + "…"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
