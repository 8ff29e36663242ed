"""Compare a capture's posts with the stored live posts of the same target. Pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class Restore:
    """A post seen again after a capture had found it deleted (dealers hide and show posts)."""

    before: StoredPost  # its last stored version, with ``deleted_at`` set
    after: CapturedPost

    @property
    def edited(self) -> bool:
        """Its text or images changed while it was hidden: an edit as well as a return."""
        return is_edited(self.before, self.after)

    @property
    def edit(self) -> Edit:
        """The same change seen as an edit of its last stored version."""
        return Edit(self.before, self.after)


@dataclass(slots=True)
class PostDiff:
    """What one capture changed: posts are sorted into exactly one of new / edited /
    unchanged / deleted / restored, except that a restored post that changed while hidden is
    in ``edited`` too."""

    new: list[CapturedPost] = field(default_factory=list)
    edited: list[Edit] = field(default_factory=list)
    unchanged: list[tuple[StoredPost, CapturedPost]] = field(default_factory=list)
    deleted: list[StoredPost] = field(default_factory=list)
    restored: list[Restore] = field(default_factory=list)


def diff_posts(
    previous: list[StoredPost],
    current: list[CapturedPost],
    hidden: list[StoredPost] | tuple[StoredPost, ...] = (),
    covers: Callable[[str], bool] | None = None,
) -> PostDiff:
    """Sort ``current`` into new / edited / unchanged / restored and find deleted ``previous``
    posts.

    ``previous`` is in the order the last captures saw it; ``current`` in page order;
    ``hidden`` holds the target's posts already found deleted, so one that comes back is a
    return, not a new post (its row exists: inserting it again would break the store).
    A post id that a page shows twice counts once, where it first appears. ``covers``
    (a post id -> whether the capture read that far) replaces the page-window guess where
    the source knows exactly what it read (a Telegram account reads a range of messages).
    """
    result = PostDiff()
    stored = {p.post_id: p for p in previous}
    gone = {p.post_id: p for p in hidden if p.post_id not in stored}
    current = unique_posts(current)
    for captured in current:
        before = stored.get(captured.post.post_id)
        if before is None and captured.post.post_id in gone:
            back = Restore(gone[captured.post.post_id], captured)
            result.restored.append(back)
            if back.edited:
                # Changed while hidden: also an edit, so its new version, keywords, photos
                # and contacts are handled as every edit's are.
                result.edited.append(back.edit)
        elif before is None:
            result.new.append(captured)
        elif is_edited(before, captured):
            result.edited.append(Edit(before, captured))
        else:
            result.unchanged.append((before, captured))
    present = {c.post.post_id for c in current}
    result.deleted = [
        p
        for p in previous
        if p.post_id not in present
        and (covers(p.post_id) if covers else _bracketed(p, previous, current, present))
    ]
    return result


def unique_posts(current: list[CapturedPost]) -> list[CapturedPost]:
    """``current`` without the later copies of a post id (a pinned post shown twice)."""
    seen: set[str] = set()
    out = []
    for captured in current:
        if captured.post.post_id not in seen:
            seen.add(captured.post.post_id)
            out.append(captured)
    return out


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
    # newer" by posting time where the page gives every post a time, else by the last
    # captures' order.
    run = chronological_run(current)
    if post.posted_at and run is not None:
        if _bracketed_in_time(post, run):
            return True
        if post.posted_at not in run:
            return False  # outside the span the page's run covers: it scrolled off
        # Same time as a post still shown (times to the minute, or posted in one burst):
        # the times cannot tell, the order can.
    return _bracketed_in_order(post, previous, present)


def chronological_run(current: list[CapturedPost]) -> list[str] | None:
    """The times of the capture's posts that stand in the page's chronological order.

    A pinned or bumped post shown at the top out of its time's place says nothing about
    which posts the page still covers: with it, every post that scrolled off between it and
    the newest ones would look deleted. The run is the longest strictly monotone
    subsequence of the page's times, in whichever direction is longer; ``None`` when some
    post has no time (positions decide then) or neither direction is longer (too few posts
    to tell which one is out of place: the times are not used).
    """
    times = [c.post.posted_at for c in current]
    if not times or any(t is None for t in times):
        return None
    rising = _longest_monotone(times, ascending=True)  # type: ignore[arg-type]
    falling = _longest_monotone(times, ascending=False)  # type: ignore[arg-type]
    if len(rising) == len(falling) and len(times) > 1 and rising != times:
        return None
    return rising if len(rising) >= len(falling) else falling


def _longest_monotone(times: list[str], ascending: bool) -> list[str]:
    # O(n^2) dynamic programme: a page holds tens of posts, not thousands.
    best: list[list[str]] = []
    for i, t in enumerate(times):
        chain = [t]
        for j in range(i):
            earlier = best[j]
            fits = earlier[-1] < t if ascending else earlier[-1] > t
            if fits and len(earlier) + 1 > len(chain):
                chain = [*earlier, t]
        best.append(chain)
    return max(best, key=len, default=[])


def _bracketed_in_time(post: StoredPost, run: list[str]) -> bool:
    assert post.posted_at is not None
    return any(t < post.posted_at for t in run) and any(t > post.posted_at for t in run)


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
