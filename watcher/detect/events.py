"""Turn a diff and image matches into events, each with its kind's payload
(:mod:`watcher.kinds`). Pure: no database, no browser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from watcher.detect.diff import Edit, PostDiff, Restore
from watcher.detect.images import DHASH_CONFIRM_DISTANCE, ImageIndex
from watcher.detect.keywords import KeywordMatch
from watcher.kinds import (
    CaptureFailed,
    CaptureRecovered,
    ContactSeenBefore,
    Deleted,
    Edited,
    ImageSeenBefore,
    Keyword,
    KeywordHit,
    KnownImageMatch,
    NewPost,
    PhotoSighting,
    Restored,
)
from watcher.models import CapturedPost, Event, EventKind, ImageRecord, ImageSighting, StoredPost

if TYPE_CHECKING:
    from watcher.store.links import ContactSighting

EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class NewImage:
    """An image that a new or edited post carries and its earlier version did not."""

    post: CapturedPost
    image: ImageRecord


def post_events(
    target: str,
    diff: PostDiff,
    baseline: bool,
    keywords: dict[str, list[KeywordMatch]] | None = None,
) -> list[Event]:
    """new / edited / deleted events; a baseline capture reports no new posts.

    A post's keyword matches ride on its event, so its alert can say why it matters.
    """
    hits = keywords or {}
    events: list[Event] = []
    if not baseline:
        events += [_with_keywords(_new_post(target, c), hits) for c in diff.new]
    events += [_with_keywords(_edited_post(target, e), hits) for e in diff.edited]
    events += [_deleted_post(target, p) for p in diff.deleted]
    events += [_restored_post(target, r) for r in diff.restored]
    return events


def keyword_events(
    target: str, diff: PostDiff, keywords: dict[str, list[KeywordMatch]], baseline: bool
) -> list[Event]:
    """One ``keyword`` event per new or edited post with (new) keyword matches."""
    if baseline:
        return []
    posts = [(c, EventKind.NEW_POST) for c in diff.new]
    posts += [(e.after, EventKind.EDITED_POST) for e in diff.edited]
    events = []
    for captured, companion in posts:
        matches = keywords.get(captured.post.post_id)
        if matches:
            fields = _post_fields(captured) | _keyword_fields(matches)
            payload = Keyword(**fields, post_event=companion)
            events.append(Event(EventKind.KEYWORD, target, captured.post.post_id, payload))
    return events


def new_images(diff: PostDiff, images: dict[str, ImageRecord]) -> list[NewImage]:
    """Decoded images on new posts and images added by edits, in page order."""
    found: list[NewImage] = []
    for captured in diff.new:
        found += _decoded(captured, images, known=set())
    for edit in diff.edited:
        found += _decoded(edit.after, images, known=set(edit.before.image_shas))
    return found


def repost_events(
    target: str,
    candidates: list[tuple[NewImage, int]],
    index: ImageIndex,
    first_sighting: Callable[[str, int], ImageSighting | None],
) -> list[Event]:
    """``image_seen_before`` for each candidate image near one already archived.

    ``candidates`` pairs each new image with its post's row id, so the post's own earlier
    versions are not reported as "seen before".
    """
    events = []
    for new, post_row in candidates:
        assert new.image.phash is not None and new.image.sha256 is not None
        near = index.near(
            new.image.phash, dhash=new.image.dhash, max_dhash_distance=DHASH_CONFIRM_DISTANCE
        )
        sightings = [
            (sighting, distance)
            for sha, distance in near
            if (sighting := first_sighting(sha, post_row)) is not None
        ]
        if sightings:
            events.append(_seen_before(target, new, sightings))
    return events


def contact_events(target: str, post_id: str, seen: list[ContactSighting]) -> list[Event]:
    """``contact_seen_before`` for each contact of a post already seen on another target."""
    return [
        Event(
            EventKind.CONTACT_SEEN_BEFORE,
            target,
            post_id,
            ContactSeenBefore(
                contact=s.kind,
                value=s.value,
                raw=s.raw,
                first_seen=s.first_seen,
                targets=tuple(s.targets),
            ),
        )
        for s in seen
    ]


def known_image_event(target: str, new: NewImage, match: KnownImageMatch) -> Event:
    """A captured image matches a reference photo the team supplied."""
    post = new.post.post
    payload = replace(match, image_url=new.image.url, permalink=post.permalink)
    return Event(EventKind.KNOWN_IMAGE, target, post.post_id, payload)


def capture_failed(target: str, reason: str, message: str, streak: int) -> Event:
    """A capture failed (``streak`` counts failures in a row, this one included)."""
    payload = CaptureFailed(reason=reason, message=message, failure_streak=streak)
    return Event(EventKind.CAPTURE_FAILED, target, payload=payload)


def capture_recovered(target: str, failures: int) -> Event:
    """A capture succeeded after ``failures`` failed ones."""
    return Event(EventKind.CAPTURE_RECOVERED, target, payload=CaptureRecovered(failures=failures))


def _decoded(captured: CapturedPost, images: dict[str, ImageRecord], known: set) -> list[NewImage]:
    out = []
    for url, sha in zip(captured.post.image_urls, captured.image_shas, strict=True):
        image = images.get(url)
        if sha and sha not in known and image is not None and image.phash is not None:
            out.append(NewImage(captured, image))
            known.add(sha)
    return out


def _keyword_fields(matches: list[KeywordMatch]) -> dict:
    hits = tuple(
        KeywordHit(group=m.group, term=m.term, start=m.start, end=m.end, text=m.text)
        for m in matches
    )
    return {"keywords": hits, "groups": tuple(sorted({m.group for m in matches}))}


def _with_keywords(event: Event, keywords: dict[str, list[KeywordMatch]]) -> Event:
    matches = keywords.get(event.post_id or "")
    if not matches:
        return event
    return replace(event, payload=replace(event.payload, **_keyword_fields(matches)))


def _post_fields(captured: CapturedPost) -> dict:
    post = captured.post
    return {
        "text": post.text[:EXCERPT_CHARS],
        "permalink": post.permalink,
        "author": post.author,
        "posted_at": post.posted_at,
        "image_shas": tuple(s for s in captured.image_shas if s),
        "links": tuple(post.links),
    }


def _new_post(target: str, captured: CapturedPost) -> Event:
    payload = NewPost(**_post_fields(captured))
    return Event(EventKind.NEW_POST, target, captured.post.post_id, payload)


def _edited_post(target: str, edit: Edit) -> Event:
    before = set(edit.before.image_shas)
    after = set(edit.after.image_shas)
    payload = Edited(
        **_post_fields(edit.after),
        previous_text=edit.before.text[:EXCERPT_CHARS],
        text_changed=edit.text_changed,
        images_added=tuple(sorted(s for s in after - before if s)),
        images_removed=tuple(sorted(s for s in before - after if s)),
        version=edit.before.version + 1,
    )
    return Event(EventKind.EDITED_POST, target, edit.after.post.post_id, payload)


def _deleted_post(target: str, post: StoredPost) -> Event:
    payload = Deleted(
        text=post.text[:EXCERPT_CHARS],
        permalink=post.permalink,
        posted_at=post.posted_at,
        first_seen_at=post.first_seen_at,
        last_seen_at=post.last_seen_at,
        last_capture_id=post.last_capture_id,
        image_shas=tuple(s for s in post.image_shas if s),
    )
    return Event(EventKind.DELETED_POST, target, post.post_id, payload)


def _restored_post(target: str, back: Restore) -> Event:
    payload = Restored(
        **_post_fields(back.after),
        # Hidden somewhere between the last capture that saw it and the one that found it
        # gone; back by this capture (its own time is the event's).
        last_seen_at=back.before.last_seen_at,
        deleted_at=back.before.deleted_at,
        deleted_capture_id=back.before.deleted_capture_id,
        first_seen_at=back.before.first_seen_at,
        changed_while_hidden=back.edited,
    )
    return Event(EventKind.RESTORED_POST, target, back.after.post.post_id, payload)


def _seen_before(target: str, new: NewImage, sightings: list[tuple[ImageSighting, int]]) -> Event:
    first, distance = min(sightings, key=lambda pair: (pair[0].capture_id, pair[1]))
    payload = ImageSeenBefore(
        image_sha256=new.image.sha256,
        image_url=new.image.url,
        distance=distance,
        same_target=first.target == target,
        first_seen=PhotoSighting(
            target=first.target,
            post_id=first.post_id,
            permalink=first.permalink,
            seen_at=first.seen_at,
            capture_id=first.capture_id,
            image_sha256=first.sha256,
        ),
        matches=len(sightings),
    )
    return Event(EventKind.IMAGE_SEEN_BEFORE, target, new.post.post.post_id, payload)
