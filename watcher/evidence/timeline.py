"""An account's activity as a small inline SVG: posts per day, deletions marked. Pure.

Drawn by hand (a few rectangles, lines and labels) rather than with a plotting library: the
picture is simple, must carry no script, and must print the same in every browser.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import date, timedelta

from watcher.timeutil import parse_iso

WIDTH, HEIGHT = 680, 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 10, 14, 44  # room for the axis labels
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_BARS = 120  # past this many days, a bar is a week


def activity_svg(
    title: str, posted: list[str | None], deleted: list[str], restored: list[str] = ()
) -> str:
    """The SVG of an account: ``posted`` holds each post's time (None: unknown, left out),
    ``deleted`` and ``restored`` the times captures found posts gone and back."""
    posts = Counter(d for d in map(_day, posted) if d)
    gone = Counter(d for d in map(_day, deleted) if d)
    back = Counter(d for d in map(_day, restored) if d)
    days = set(posts) | set(gone) | set(back)
    if not days:
        return ""
    first, last = min(days), max(days)
    step = 7 if (last - first).days + 1 > MAX_BARS else 1
    if step == 7:
        first -= timedelta(days=first.weekday())  # weeks start on Monday
        posts, gone, back = (_weekly(c) for c in (posts, gone, back))
    slots = (last - first).days // step + 1
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot_w = plot_w / slots
    top = max(posts.values(), default=0) or 1
    unit = "week" if step == 7 else "day"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class=timeline width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_e(title)}: posts per {unit}, deletions marked">',
        f"<title>{_e(title)}: posts per {unit}; red marks: posts found deleted</title>",
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" y2="{_TOP + plot_h}" '
        'stroke="#444" stroke-width="1"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" class=axis>{top}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end" class=axis>0</text>',
    ]
    for slot in range(slots):
        day = first + timedelta(days=slot * step)
        x = _LEFT + slot * slot_w
        if count := posts.get(day, 0):
            h = plot_h * count / top
            parts.append(
                f'<rect x="{x + slot_w * 0.1:.1f}" y="{_TOP + plot_h - h:.1f}" '
                f'width="{max(slot_w * 0.8, 1):.1f}" height="{h:.1f}" fill="#3b6ea5">'
                f"<title>{_label(day)}: {count} post{'s' if count != 1 else ''}</title></rect>"
            )
        mid = x + slot_w / 2
        for counter, colour, word, row in (
            (gone, "#c62828", "deleted", 0),
            (back, "#2e7d32", "back", 1),
        ):
            if n := counter.get(day, 0):
                y = _TOP + plot_h + 8 + row * 11
                parts.append(
                    f'<path d="M{mid:.1f} {y - 6:.1f} l5 9 h-10 z" fill="{colour}">'
                    f"<title>{_label(day)}: {n} post{'s' if n != 1 else ''} found {word}"
                    "</title></path>"
                )
                if n > 1:
                    parts.append(f'<text x="{mid + 6:.1f}" y="{y + 3:.1f}" class=axis>{n}</text>')
    for slot in _ticks(slots):
        day = first + timedelta(days=slot * step)
        x = _LEFT + slot * slot_w + slot_w / 2
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class=axis>'
            f"{_label(day)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _day(moment: str | None) -> date | None:
    when = parse_iso(moment) if moment else None
    return when.date() if when else None


def _weekly(counter: Counter) -> Counter:
    out: Counter = Counter()
    for day, n in counter.items():
        out[day - timedelta(days=day.weekday())] += n
    return out


def _ticks(slots: int, most: int = 7) -> list[int]:
    if slots <= most:
        return list(range(slots))
    every = -(-slots // most)
    return list(range(0, slots, every))


def _label(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
