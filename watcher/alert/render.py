"""What an alert says: Telegram HTML text and the stored files to attach. Pure.

Telegram refuses a whole message for one unbalanced tag or for one character over its limit,
and counts that limit on the visible text after parsing, in UTF-16 code units. So every cut
here is made by :func:`fit_html`, which measures the way Telegram does and closes what it
opened; the header and the evidence line are never what gets cut.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from watcher.alert.markup import e as _e
from watcher.models import Event

TEXT_LIMIT = 4096  # Telegram's limit for one message
CAPTION_LIMIT = 1024  # and for a photo's caption
EXCERPT = 1200
MAX_PHOTOS = 10  # one media group
# The buttons under an alert: (code, label). Callback data is "<code>:<event id>"; the bot
# never trusts it, it checks the press came from the message this event was sent as.
ALERT_ACTIONS = (
    ("ev", "Evidence"),
    ("mu", "Mute target 24h"),
    ("rv", "Mark reviewed"),
    ("dl", "Dealer"),  # only under alerts that link accounts (Payload.links_accounts)
)


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


def render_alert(
    event: Event,
    platform: str | None,
    screenshot_sha: str | None,
    now: datetime | None = None,
    unattached: Mapping[str, str] | None = None,
) -> AlertMessage:
    """Text and attachments for one event.

    ``now`` is when the alert goes out (times then say "3 h ago"); ``unattached`` maps the
    SHA-256 of each photo that must not be attached to why (``not a valid image``): it is
    left out and the alert says so.
    """
    head = f"<b>{event.payload.title}</b> · <b>{_e(event.target)}</b>"
    if platform:
        head += f" ({_e(platform)})"
    skipped = unattached or {}
    photos = tuple(s for s in photo_shas(event) if s not in skipped)
    tail = [_unattached_note(event, skipped)] if skipped else []
    if event.capture_id:
        tail.append(f"Evidence: capture #{event.capture_id} (/evidence {event.capture_id})")
    shot = screenshot_sha if not photos and event.payload.shows_page else None
    full = _compose(head, event.payload.telegram(event, EXCERPT, now), tail, TEXT_LIMIT)
    short = _compose(head, event.payload.telegram(event, 300, now), tail, CAPTION_LIMIT)
    return AlertMessage(full, short, photos, shot, alert_buttons(event))


def plain_text(message_html: str, limit: int = TEXT_LIMIT) -> str:
    """The alert as plain text (tags dropped, entities decoded), within ``limit`` as Telegram
    counts it: the last resort when Telegram refuses the formatted alert."""
    text = html.unescape(re.sub(r"<[^>]*>", "", message_html))
    if _utf16_len(text) <= limit:
        return text
    return _cut_text(text, limit - 1) + "…"


def alert_buttons(event: Event) -> tuple[tuple[str, str], ...]:
    """(label, callback data) of the buttons under ``event``'s alert; none before it is stored."""
    if event.id is None or not event.payload.actionable:
        return ()
    actions = [
        (code, label)
        for code, label in ALERT_ACTIONS
        if (code != "ev" or event.capture_id) and (code != "dl" or event.payload.links_accounts)
    ]
    return tuple((label, f"{code}:{event.id}") for code, label in actions)


def render_digest(events: list[Event]) -> str:
    """One message standing for a burst of alerts to the same chat."""
    head = f"<b>📦 {len(events)} alerts at once</b> (folded to respect Telegram's limits)"
    lines = [head]
    for event in events:
        title = event.payload.title
        post = f" {_e(event.post_id)}" if event.post_id else ""
        text = _excerpt(event.payload.excerpt(), 90)
        link = event.payload.link()
        item = f"• {title} · {_e(event.target)}{post}"
        if link:
            item += f' <a href="{_e(link)}">link</a>'
        if event.capture_id:
            item += f" #{event.capture_id}"
        lines.append(item + (f"\n  {_e(text)}" if text else ""))
    return fit_html("\n".join(lines), TEXT_LIMIT)


def _unattached_note(event: Event, skipped: Mapping[str, str]) -> str:
    # Counted per reason, only over this event's photos: "1 photo not attached (not a valid
    # image)". The photo stays in the evidence; only Telegram would not take it.
    reasons = Counter(skipped[s] for s in photo_shas(event) if s in skipped)
    parts = [f"{n} photo{'s' if n > 1 else ''} not attached ({_e(r)})" for r, n in reasons.items()]
    return "<i>" + "; ".join(parts) + "</i>"


def photo_shas(event: Event) -> tuple[str, ...]:
    """The stored photos (SHA-256) an alert for ``event`` would attach, at most one group."""
    return tuple(dict.fromkeys(s for s in event.payload.photos() if s))[:MAX_PHOTOS]


def _excerpt(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compose(head: str, body: list[str], tail: list[str], limit: int) -> str:
    # The header and the evidence line must survive any cut: only the body gives way.
    budget = limit - visible_length("\n".join([head, "", *tail]))  # "" stands for the body
    parts = [head, fit_html("\n".join(body), max(budget, 0)), *tail]
    return fit_html("\n".join(parts), limit)


# One token of our HTML: a tag, an entity, or a run of text.
_TOKEN = re.compile(r"<[^>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z]+);|[^<&]+|[<&]")


def visible_length(markup: str) -> int:
    """Characters Telegram counts in ``markup``: text after entity parsing, in UTF-16 units."""
    total = 0
    for token in _TOKEN.findall(markup):
        if token.startswith("<") and len(token) > 1:
            continue
        total += _utf16_len(html.unescape(token))
    return total


def fit_html(markup: str, limit: int) -> str:
    """``markup`` cut to at most ``limit`` visible UTF-16 units, ending in "…" when cut.

    Cuts fall between tokens or inside a run of text (never inside a tag or an entity, nor
    between a letter and its combining marks), and every tag still open is closed, so the
    result parses wherever ``markup`` did.
    """
    if visible_length(markup) <= limit:
        return markup
    if limit < 1:
        return ""
    budget = limit - 1  # room for the "…"
    out: list[str] = []
    open_tags: list[str] = []
    for token in _TOKEN.findall(markup):
        if token.startswith("<") and len(token) > 1:
            name = re.match(r"</?\s*([A-Za-z0-9-]*)", token)
            tag = name.group(1).lower() if name else ""
            if token.startswith("</"):
                if open_tags:
                    open_tags.pop()
            elif not token.endswith("/>"):
                open_tags.append(tag)
            out.append(token)
            continue
        text = html.unescape(token)
        size = _utf16_len(text)
        if size <= budget:
            out.append(token)
            budget -= size
            continue
        if not token.startswith("&"):  # an entity is one character: whole or not at all
            out.append(html.escape(_cut_text(text, budget), quote=False))
        break
    closing = "".join(f"</{tag}>" for tag in reversed(open_tags))
    return "".join(out).rstrip() + "…" + closing


def _cut_text(text: str, budget: int) -> str:
    """The longest start of ``text`` within ``budget`` UTF-16 units that does not split a
    character from the marks that follow it, preferring a word break near the end."""
    used, end = 0, 0
    for index, char in enumerate(text):
        used += _utf16_len(char)
        if used > budget:
            break
        end = index + 1
    while 0 < end < len(text) and (_joins(text[end]) or text[end - 1] == "\u200d"):
        end -= 1  # the next character belongs to the one before (or a joiner would dangle)
    space = text.rfind(" ", 0, end)
    if end < len(text) and space > end - 24 and space > 0:
        end = space
    return text[:end]


def _joins(char: str) -> bool:
    # Combining marks, joiners, variation selectors and skin tones attach to what precedes them.
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc", "Cf")
        or "\U0001f3fb" <= char <= "\U0001f3ff"
    )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
