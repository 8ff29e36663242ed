"""Whether a target's recipe has started to miss: the site changed its markup under a watch.

A recipe that no longer fits rarely fails outright; it reads something wrong, and a diff
then reports nonsense: every post "edited" to an empty text, or every post "new" and every
old one "deleted" because the ids now come from a link that changes each time. This module
compares a capture's posts with what the target's recent captures saw and names the field
that stopped working, so the capture is recorded as ``layout_changed`` instead of being
diffed. Pure: posts and history in, a :class:`LayoutChange` (or None) out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from watcher.models import Post

# Recent captures must have read the field on most posts before its loss means anything.
_USUALLY = 0.6
# "Far fewer": at most this share of what recent captures read, when they read this many.
_FEWER_SHARE = 0.25
_FEWER_FLOOR = 8
# The same posts under new ids: this share of the capture's texts already seen.
_SAME_TEXTS = 0.5
_MIN_POSTS = 2


@dataclass(frozen=True, slots=True)
class Seen:
    """What the target's recent captures saw: its live posts (id, text, time) and how many
    posts each of its last successful captures read, newest first."""

    post_ids: frozenset[str]
    texts: tuple[str, ...]
    times: tuple[str | None, ...]
    recent_counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LayoutChange:
    """The recipe field that stopped working (``text``, ``time``, ``id`` or ``post``) and,
    in words, what differs from the recent captures."""

    field: str
    details: str


def detect_layout_change(posts: Sequence[Post], seen: Seen) -> LayoutChange | None:
    """The first sign that the recipe misses, or None (also on a target's first capture)."""
    if not seen.texts and not seen.recent_counts:
        return None  # nothing to compare with: the baseline
    return (
        _fewer(posts, seen)
        or _emptied(posts, seen, "text", [p.text for p in posts], seen.texts)
        or _emptied(posts, seen, "time", [p.posted_at for p in posts], seen.times)
        or _new_ids(posts, seen)
    )


def _fewer(posts: Sequence[Post], seen: Seen) -> LayoutChange | None:
    if not posts or len(seen.recent_counts) < 2:
        return None
    usual = median(seen.recent_counts)
    if usual >= _FEWER_FLOOR and len(posts) <= usual * _FEWER_SHARE:
        return LayoutChange(
            "post",
            f"{len(posts)} post(s) read where the last {len(seen.recent_counts)} captures "
            f"read about {usual:g}",
        )
    return None


def _emptied(
    posts: Sequence[Post],
    seen: Seen,
    field: str,
    now: Sequence[str | None],
    before: Sequence[str | None],
) -> LayoutChange | None:
    if len(posts) < _MIN_POSTS or any(now) or not before:
        return None
    share = sum(1 for value in before if value) / len(before)
    if share < _USUALLY:
        return None  # the target's posts seldom have one: an empty one is no news
    return LayoutChange(
        field,
        f"every one of the {len(posts)} posts read has an empty {field}, where "
        f"{share:.0%} of the posts seen before had one",
    )


def _new_ids(posts: Sequence[Post], seen: Seen) -> LayoutChange | None:
    if len(posts) < _MIN_POSTS or len(seen.post_ids) < _MIN_POSTS:
        return None
    if any(p.post_id in seen.post_ids for p in posts):
        return None
    known_texts = {t for t in seen.texts if t}
    texts = [p.text for p in posts if p.text]
    again = sum(1 for t in texts if t in known_texts)
    if not texts or again / len(texts) < _SAME_TEXTS:
        return None  # really all new posts (a page that turned over), not new ids
    return LayoutChange(
        "id",
        f"none of the {len(posts)} post ids read was seen before, yet {again} of their texts "
        "were: the same posts under new ids",
    )


def layout_message(change: LayoutChange, target: str) -> str:
    """What the team reads: the field, what differs, and the command that shows the page."""
    return (
        f"the page of {target} seems to have changed its layout: the recipe's `{change.field}` "
        f"no longer reads right ({change.details}). Nothing was marked new or deleted from "
        f"this capture. Run `watcher probe --target {target}` to see what it reads now, and "
        f"fix the target's `selectors: {change.field}:` (try one with `--selector "
        f"{change.field}=CSS`). If you changed that selector on purpose, give the target a "
        "new name to start a new baseline"
    )
