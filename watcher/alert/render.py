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
# The buttons under an alert: (code, label). Callback data is "<code>:<event id>"; the bot
# never trusts it, it checks the press came from the message this event was sent as.
ALERT_ACTIONS = (("ev", "Evidence"), ("mu", "Mute target 24h"), ("rv", "Mark reviewed"))

_TITLES = {
    EventKind.NEW_POST: "🆕 New post",
    EventKind.EDITED_POST: "✏️ Post edited",
    EventKind.DELETED_POST: "🗑 Post deleted",
    EventKind.RESTORED_POST: "↩️ Deleted post is back",
    EventKind.IMAGE_SEEN_BEFORE: "🔁 Photo seen before",
    EventKind.KEYWORD: "🔑 Keyword match",
    EventKind.CONTACT_SEEN_BEFORE: "☎️ Contact seen on another account",
    EventKind.KNOWN_IMAGE: "🧩 Matches a reference photo",
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
    buttons: tuple[tuple[str, str], ...] = ()  # (label, callback data) under the alert

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
    return AlertMessage(full, short, photos, shot, alert_buttons(event))


def alert_buttons(event: Event) -> tuple[tuple[str, str], ...]:
    """(label, callback data) of the buttons under ``event``'s alert; none before it is stored."""
    if event.id is None or event.kind == EventKind.WATCHLIST_INVALID:
        return ()
    actions = [(code, label) for code, label in ALERT_ACTIONS if code != "ev" or event.capture_id]
    return tuple((label, f"{code}:{event.id}") for code, label in actions)


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


_POST_KINDS = {
    EventKind.NEW_POST,
    EventKind.EDITED_POST,
    EventKind.DELETED_POST,
    EventKind.RESTORED_POST,
}


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
    if event.kind == EventKind.CONTACT_SEEN_BEFORE:
        first = d.get("first_seen", {})
        others = ", ".join(_e(t) for t in d.get("targets", []))
        contact = f"{_e(d.get('kind'))} <b>{_e(d.get('value'))}</b>"
        where = f"<b>{_e(first.get('target', '?'))}</b> post {_e(first.get('post_id', '?'))}"
        return [
            f"Post {_e(event.post_id or '?')} gives {contact}, first seen on {where}"
            f" ({_e(first.get('seen_at', '?'))}). Also on: {others}.",
        ]
    if event.kind == EventKind.KNOWN_IMAGE:
        return [
            f"Post {_e(event.post_id or '?')} shows reference photo <b>{_e(d.get('reference'))}</b>"
            f" (distance {_e(d.get('distance'))}).",
            *_post_link(d),
        ]
    if event.kind in (EventKind.CAPTURE_FAILED, EventKind.WATCHLIST_INVALID):
        return [_e(d.get("message", ""))]
    if event.kind == EventKind.CAPTURE_RECOVERED:
        return [f"Capturing again after {d.get('failures')} failed attempt(s)."]
    lines = []
    if event.kind == EventKind.EDITED_POST and d.get("text_changed"):
        lines.append(f"<i>Before:</i> {_e(_excerpt(d.get('previous_text', ''), excerpt // 3))}")
    lines.append(
        _highlighted(d.get("text", ""), d.get("keywords", []), excerpt) or "<i>(no text)</i>"
    )
    if d.get("keywords"):
        lines.append(f"<b>Why:</b> {_why(d['keywords'])}")
    if d.get("posted_at"):
        lines.append(f"Posted: {_e(d['posted_at'])}")
    if event.kind == EventKind.DELETED_POST:
        lines.append(
            f"First seen {_e(d.get('first_seen_at', '?'))}, last seen "
            f"{_e(d.get('last_seen_at', '?'))}. Attached: the last stored copy."
        )
    if event.kind == EventKind.RESTORED_POST:
        changed = " Its text or photos changed while hidden (see the edit alert)."
        lines.append(
            f"Hidden from {_e(d.get('last_seen_at', '?'))} (last seen) to "
            f"{_e(event.created_at or '?')}; found deleted {_e(d.get('deleted_at', '?'))}."
            + (changed if d.get("changed_while_hidden") else "")
        )
    return lines + _post_link(d)


def _highlighted(text: str, keywords: list[dict], limit: int) -> str:
    """The excerpt, HTML-escaped, with each matched term in bold (spans index ``text``)."""
    shown = text[:limit]
    spans = sorted(
        (k["start"], k["end"]) for k in keywords if 0 <= k["start"] < k["end"] <= len(shown)
    )
    parts, pos = [], 0
    for start, end in spans:
        if start < pos:
            continue  # overlapping spans: the first one is already bold
        parts += [_e(shown[pos:start]), "<b>", _e(shown[start:end]), "</b>"]
        pos = end
    parts.append(_e(shown[pos:]))
    return "".join(parts).strip() + ("…" if len(text) > limit else "")


def _why(keywords: list[dict]) -> str:
    groups: dict[str, list[str]] = {}
    for k in keywords:
        seen = groups.setdefault(k["group"], [])
        if k["text"] not in seen:
            seen.append(k["text"])
    return "; ".join(f"{_e(g)} ({', '.join(_e(t) for t in terms)})" for g, terms in groups.items())


def _post_link(details: dict) -> list[str]:
    link = details.get("permalink")
    return [f'<a href="{_e(link)}">Open post</a>'] if link else []


def _photos(event: Event) -> tuple[str, ...]:
    d = event.details
    if event.kind == EventKind.IMAGE_SEEN_BEFORE:
        shas = [d.get("image_sha256"), d.get("first_seen", {}).get("image_sha256")]
    elif event.kind == EventKind.KNOWN_IMAGE:
        shas = [d.get("image_sha256")]
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
