"""Compare a capture's posts with the stored live posts of the same target. Pure functions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from watcher.models import CapturedPost, Post, StoredPost

# Counters that move on every visit: a post is not different because more people saw it.
_VOLATILE_FIELDS = frozenset({"views"})


@dataclass(frozen=True, slots=True)
class Edit:
    """A post whose text or images changed since its stored version."""

    before: StoredPost
    after: CapturedPost

    @property
    def text_changed(self) -> bool:
        """True when the wording changed, not only the images."""
        return _norm(self.before.text) != _norm(self.after.post.text)


@dataclass(slots=True)
class PostDiff:
    """What one capture changed: posts are sorted into exactly one bucket each."""

    new: list[CapturedPost] = field(default_factory=list)
    edited: list[Edit] = field(default_factory=list)
    unchanged: list[tuple[StoredPost, CapturedPost]] = field(default_factory=list)
    deleted: list[StoredPost] = field(default_factory=list)


def diff_posts(previous: list[StoredPost], current: list[CapturedPost]) -> PostDiff:
    """Sort ``current`` into new / edited / unchanged and find deleted ``previous`` posts.

    ``previous`` is in the order the last captures saw it; ``current`` in page order.
    """
    result = PostDiff()
    stored = {p.post_id: p for p in previous}
    for captured in current:
        before = stored.get(captured.post.post_id)
        if before is None:
            result.new.append(captured)
        elif is_edited(before, captured):
            result.edited.append(Edit(before, captured))
        else:
            result.unchanged.append((before, captured))
    present = {c.post.post_id for c in current}
    result.deleted = [
        p
        for p in previous
        if p.post_id not in present and _bracketed(p, previous, current, present)
    ]
    return result


def is_edited(before: StoredPost, after: CapturedPost) -> bool:
    """Same post, different text or images.

    An image that failed to download this time (or last time) is not counted as changed:
    a flaky CDN must not look like an edit.
    """
    if _norm(before.text) != _norm(after.post.text):
        return True
    if len(before.image_shas) != len(after.image_shas):
        return True
    return any(a and b and a != b for a, b in zip(before.image_shas, after.image_shas, strict=True))


def _bracketed(
    post: StoredPost, previous: list[StoredPost], current: list[CapturedPost], present: set[str]
) -> bool:
    # A post counts as deleted only when the capture shows posts older AND newer than it:
    # otherwise it may simply have scrolled out of the window the capture read. "Older and
    # newer" by posting time where the page gives times, else by the last capture's order.
    return _bracketed_in_time(post, current) or _bracketed_in_order(post, previous, present)


def _bracketed_in_time(post: StoredPost, current: list[CapturedPost]) -> bool:
    times = [c.post.posted_at for c in current if c.post.posted_at]
    if not post.posted_at or not times:
        return False
    return any(t < post.posted_at for t in times) and any(t > post.posted_at for t in times)


def _bracketed_in_order(post: StoredPost, previous: list[StoredPost], present: set[str]) -> bool:
    index = previous.index(post)
    before = any(p.post_id in present for p in previous[:index])
    after = any(p.post_id in present for p in previous[index + 1 :])
    return before and after


def _norm(text: str) -> str:
    return " ".join(text.split())


def posts_fingerprint(posts: list[Post]) -> str:
    """SHA-256 hex of what a capture saw of its posts, in page order (all but view counts).

    Two captures with the same fingerprint saw the same posts, wording, photos' addresses,
    links and times: a light check that matches the last capture has nothing to diff.
    """
    canonical = [
        {k: v for k, v in post.to_json().items() if k not in _VOLATILE_FIELDS} for post in posts
    ]
    text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
