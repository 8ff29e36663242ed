"""Pure: the small pieces alerts are written with (Telegram HTML, and console excerpts).

Each event kind (:mod:`watcher.kinds`) writes its own lines with these; the renderer
(:mod:`watcher.alert.render`) puts them under the title and cuts them to Telegram's limits.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from watcher.timeutil import human_time


class Hit(Protocol):
    """A keyword found in a post (see :class:`watcher.kinds.KeywordHit`)."""

    group: str
    start: int
    end: int
    text: str


def e(value: object) -> str:
    """``value`` as text safe inside Telegram HTML (and its attributes)."""
    return html.escape(str(value), quote=True)


def when(value: object, now: datetime | None) -> str:
    """A stored time as a person reads it (``3 h ago`` relative to ``now``), escaped."""
    return e(human_time(value if isinstance(value, str) else None, now))


def post_link(permalink: str | None) -> list[str]:
    """The "Open post" line, when the post has an address."""
    return [f'<a href="{e(permalink)}">Open post</a>'] if permalink else []


def highlighted(text: str, hits: Iterable[Hit], limit: int) -> str:
    """The excerpt, HTML-escaped, with each matched term in bold (spans index ``text``)."""
    shown = text[:limit]
    spans = sorted((k.start, k.end) for k in hits if 0 <= k.start < k.end <= len(shown))
    parts, pos = [], 0
    for start, end in spans:
        if start < pos:
            continue  # overlapping spans: the first one is already bold
        parts += [e(shown[pos:start]), "<b>", e(shown[start:end]), "</b>"]
        pos = end
    parts.append(e(shown[pos:]))
    return "".join(parts).strip() + ("…" if len(text) > limit else "")


def why(hits: Iterable[Hit]) -> str:
    """The matched terms by group, as written in the post: ``ivory (ngà voi, 象牙)``."""
    groups: dict[str, list[str]] = {}
    for k in hits:
        seen = groups.setdefault(k.group, [])
        if k.text not in seen:
            seen.append(k.text)
    return "; ".join(f"{e(g)} ({', '.join(e(t) for t in terms)})" for g, terms in groups.items())


def flat(text: str, limit: int = 160) -> str:
    """Text on one line for the console, cut to ``limit`` characters with "…"."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
