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

from watcher.alert.textdiff import changed, word_diff
from watcher.models import Event, EventKind
from watcher.timeutil import human_time

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
    head = f"<b>{_title(event)}</b> · <b>{_e(event.target)}</b>"
    if platform:
        head += f" ({_e(platform)})"
    skipped = unattached or {}
    photos = tuple(s for s in photo_shas(event) if s not in skipped)
    tail = [_unattached_note(event, skipped)] if skipped else []
    if event.capture_id:
        tail.append(f"Evidence: capture #{event.capture_id} (/evidence {event.capture_id})")
    shot = screenshot_sha if not photos and event.kind in _POST_KINDS else None
    full = _compose(head, _body(event, EXCERPT, now), tail, TEXT_LIMIT)
    short = _compose(head, _body(event, 300, now), tail, CAPTION_LIMIT)
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
    if event.id is None or event.kind == EventKind.WATCHLIST_INVALID:
        return ()
    actions = [(code, label) for code, label in ALERT_ACTIONS if code != "ev" or event.capture_id]
    return tuple((label, f"{code}:{event.id}") for code, label in actions)


def _title(event: Event) -> str:
    # A layout change is a failure the team fixes in the watchlist, not at the site.
    if event.kind == EventKind.CAPTURE_FAILED and event.details.get("reason") == LAYOUT_CHANGED:
        return "🧩 Layout changed"
    return _TITLES.get(event.kind, str(event.kind))


LAYOUT_CHANGED = "layout_changed"


def render_digest(events: list[Event]) -> str:
    """One message standing for a burst of alerts to the same chat."""
    head = f"<b>📦 {len(events)} alerts at once</b> (folded to respect Telegram's limits)"
    lines = [head]
    for event in events:
        title = _title(event)
        post = f" {_e(event.post_id)}" if event.post_id else ""
        text = _excerpt(event.details.get("text") or event.details.get("message") or "", 90)
        link = event.details.get("permalink")
        item = f"• {title} · {_e(event.target)}{post}"
        if link:
            item += f' <a href="{_e(link)}">link</a>'
        if event.capture_id:
            item += f" #{event.capture_id}"
        lines.append(item + (f"\n  {_e(text)}" if text else ""))
    return fit_html("\n".join(lines), TEXT_LIMIT)


_POST_KINDS = {
    EventKind.NEW_POST,
    EventKind.EDITED_POST,
    EventKind.DELETED_POST,
    EventKind.RESTORED_POST,
}


def _body(event: Event, excerpt: int, now: datetime | None) -> list[str]:
    d = event.details

    def when(value: object) -> str:
        return _e(human_time(value if isinstance(value, str) else None, now))

    if event.kind == EventKind.IMAGE_SEEN_BEFORE:
        first = d.get("first_seen", {})
        where = _e(first.get("target", "?"))
        link = first.get("permalink")
        post = _e(first.get("post_id", "?"))
        post = f'<a href="{_e(link)}">{post}</a>' if link else post
        return [
            f"Post {_e(event.post_id or '?')} shows a photo first seen on <b>{where}</b>"
            f" post {post}"
            f" on {when(first.get('seen_at'))} (distance {d.get('distance')}).",
            *_post_link(d),
        ]
    if event.kind == EventKind.CONTACT_SEEN_BEFORE:
        first = d.get("first_seen", {})
        others = ", ".join(_e(t) for t in d.get("targets", []))
        contact = f"{_e(d.get('kind'))} <b>{_e(d.get('value'))}</b>"
        where = f"<b>{_e(first.get('target', '?'))}</b> post {_e(first.get('post_id', '?'))}"
        return [
            f"Post {_e(event.post_id or '?')} gives {contact}, first seen on {where}"
            f" ({when(first.get('seen_at'))}). Also on: {others}.",
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
    edit = _edit_lines(d) if event.kind == EventKind.EDITED_POST else []
    if edit and edit[0].startswith("<b>Edited:"):
        lines += edit  # the change is the news: the whole new text would bury it
    else:
        text = _highlighted(d.get("text", ""), d.get("keywords", []), excerpt)
        lines += [text or "<i>(no text)</i>", *edit]
    if d.get("keywords"):
        lines.append(f"<b>Why:</b> {_why(d['keywords'])}")
    if d.get("posted_at"):
        lines.append(f"Posted: {when(d['posted_at'])}")
    if event.kind == EventKind.DELETED_POST:
        lines.append(
            f"First seen {when(d.get('first_seen_at'))}, last seen "
            f"{when(d.get('last_seen_at'))}. Attached: the last stored copy."
        )
    if event.kind == EventKind.RESTORED_POST:
        changed = " Its text or photos changed while hidden (see the edit alert)."
        lines.append(
            f"Hidden from {when(d.get('last_seen_at'))} (last seen) to "
            f"{when(event.created_at)}; found deleted {when(d.get('deleted_at'))}."
            + (changed if d.get("changed_while_hidden") else "")
        )
    return lines + _post_link(d)


def _edit_lines(d: dict) -> list[str]:
    """What an edit changed: removed words struck, added words underlined, a little context."""
    lines = []
    if d.get("text_changed"):
        segments = word_diff(d.get("previous_text", ""), d.get("text", ""))
        if changed(segments):
            marks = {"del": ("<s>", "</s>"), "ins": ("<u>", "</u>")}
            shown = [
                f"{marks[s.op][0]}{_e(s.text)}{marks[s.op][1]}" if s.op in marks else _e(s.text)
                for s in segments
            ]
            lines.append("<b>Edited:</b> " + " ".join(shown))
    added, removed = len(d.get("images_added", [])), len(d.get("images_removed", []))
    if added or removed:
        lines.append(f"<b>Photos:</b> {added} added, {removed} removed")
    return lines


def _unattached_note(event: Event, skipped: Mapping[str, str]) -> str:
    # Counted per reason, only over this event's photos: "1 photo not attached (not a valid
    # image)". The photo stays in the evidence; only Telegram would not take it.
    reasons = Counter(skipped[s] for s in photo_shas(event) if s in skipped)
    parts = [f"{n} photo{'s' if n > 1 else ''} not attached ({_e(r)})" for r, n in reasons.items()]
    return "<i>" + "; ".join(parts) + "</i>"


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


def photo_shas(event: Event) -> tuple[str, ...]:
    """The stored photos (SHA-256) an alert for ``event`` would attach, at most one group."""
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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
