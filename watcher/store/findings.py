"""What the bundle's report tells a prosecutor, read from the database: each post with every
version, every time a capture saw it, every deletion and return, its keyword matches (in its
text, and read in its photos); the photos also seen elsewhere; the contacts shared with other
accounts.

SQL reads only. Functions take a :class:`Store` first; ``translated`` turns SQLite errors
into ``StoreError`` as for the Store's own methods.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from watcher.kinds import ImageSeenBefore, KeywordHit, PhotoTextFound
from watcher.store.db import VERSION_FIELDS, Store, VisibilityChange, from_row, translated
from watcher.store.links import ContactLink, shared_contacts

_CHUNK = 500  # ids per IN (...) list, under SQLite's bound-variable limit
# version_id first: the keyword hits are looked up by it.
_REPORT_VERSION = {
    **VERSION_FIELDS,
    "capture_id": "v.capture_id",
    "seen_at": "v.seen_at",
    "author": "v.author",
}


@dataclass(frozen=True, slots=True)
class ReportVersion:
    """One version of a post as a capture first saw it."""

    version_id: int
    version: int
    capture_id: int
    seen_at: str
    text: str
    author: str | None
    posted_at: str | None
    permalink: str | None
    image_shas: tuple[str, ...]
    keywords: tuple[KeywordHit, ...] = ()


@dataclass(frozen=True, slots=True)
class Sighting:
    """A capture that saw the post: which version, where on the page (0 = first post)."""

    capture_id: int
    at: str
    version_id: int
    position: int


@dataclass(frozen=True, slots=True)
class ReportPost:
    """A post with its whole history."""

    row_id: int
    target: str
    post_id: str
    first_seen_at: str
    last_seen_at: str
    deleted_at: str | None
    versions: tuple[ReportVersion, ...]
    sightings: tuple[Sighting, ...]
    visibility: tuple[VisibilityChange, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.post_id)

    @property
    def latest(self) -> ReportVersion:
        return self.versions[-1]

    def version_at(self, capture_id: int) -> ReportVersion:
        """The version current when capture ``capture_id`` was taken."""
        earlier = [v for v in self.versions if v.capture_id <= capture_id]
        return earlier[-1] if earlier else self.versions[0]

    def last_sighting_before(self, capture_id: int) -> Sighting | None:
        """The last capture before ``capture_id`` that saw the post."""
        earlier = [s for s in self.sightings if s.capture_id < capture_id]
        return earlier[-1] if earlier else None


@dataclass(frozen=True, slots=True)
class PhotoSeenBefore:
    """A photo of ``later`` near one archived earlier from ``first`` (``image_seen_before``)."""

    later: tuple[str, str]  # (target, post_id)
    later_sha: str
    later_seen_at: str | None
    first: tuple[str, str]
    first_sha: str
    first_seen_at: str | None
    distance: int

    @property
    def other_account(self) -> bool:
        return self.later[0] != self.first[0]


@dataclass(frozen=True, slots=True)
class PhotoKeywords:
    """Keywords read in a photo of a post (its ``photo_text`` event): the hits' offsets are
    in ``text``, what was read in the photo, not in the post's text."""

    post: tuple[str, str]  # (target, post_id)
    image_sha256: str
    text: str
    keywords: tuple[KeywordHit, ...]
    read_at: str
    event_id: int


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the archive recorded about one image file."""

    sha256: str
    size: int | None
    media_type: str | None
    width: int | None
    height: int | None
    phash: str | None
    dhash: str | None


@dataclass(slots=True)
class Findings:
    """Everything the report needs beyond the capture records."""

    posts: list[ReportPost] = field(default_factory=list)
    photos_seen_before: list[PhotoSeenBefore] = field(default_factory=list)
    photo_keywords: list[PhotoKeywords] = field(default_factory=list)
    contacts: list[ContactLink] = field(default_factory=list)
    images: dict[str, ImageFacts] = field(default_factory=dict)
    posts_per_capture: dict[int, int] = field(default_factory=dict)


@translated
def report_findings(store: Store, capture_ids: list[int]) -> Findings:
    """The posts seen in ``capture_ids`` with their histories, and what links them elsewhere."""
    found = Findings()
    if not capture_ids:
        return found
    rows: list[tuple] = []
    for chunk in _chunks(capture_ids):
        rows += store.db.execute(
            "SELECT DISTINCT p.id, p.target, p.post_id, p.first_seen_at, p.last_seen_at,"
            " p.deleted_at FROM posts p JOIN capture_posts cp ON cp.post_row = p.id"
            f" WHERE cp.capture_id IN ({_marks(chunk)})",
            chunk,
        ).fetchall()
    rows = sorted(set(rows))
    row_ids = [r[0] for r in rows]
    versions = _versions(store, row_ids)
    sightings = _sightings(store, row_ids)
    changes = _visibility(store, row_ids)
    found.posts = [
        ReportPost(
            row_id=r[0],
            target=r[1],
            post_id=r[2],
            first_seen_at=r[3],
            last_seen_at=r[4],
            deleted_at=r[5],
            versions=tuple(versions[r[0]]),
            sightings=tuple(sightings[r[0]]),
            visibility=tuple(changes[r[0]]),
        )
        for r in rows
    ]
    keys = {p.key for p in found.posts}
    found.photos_seen_before = _photos_seen_before(store, keys)
    found.photo_keywords = _photo_keywords(store, keys)
    found.contacts = [
        link
        for link in shared_contacts(store)
        if any((target, post_id) in keys for target, post_id, _ in link.posts)
    ]
    shas = {s for p in found.posts for v in p.versions for s in v.image_shas if s}
    shas |= {s for m in found.photos_seen_before for s in (m.first_sha, m.later_sha)}
    found.images = _images(store, shas)
    for chunk in _chunks(capture_ids):
        for capture_id, count in store.db.execute(
            "SELECT capture_id, COUNT(*) FROM capture_posts"
            f" WHERE capture_id IN ({_marks(chunk)}) GROUP BY capture_id",
            chunk,
        ).fetchall():
            found.posts_per_capture[capture_id] = count
    return found


def _versions(store: Store, row_ids: list[int]) -> dict[int, list[ReportVersion]]:
    hits: dict[int, list[KeywordHit]] = defaultdict(list)
    out: dict[int, list[tuple]] = defaultdict(list)
    for chunk in _chunks(row_ids):
        for row in store.db.execute(
            f"SELECT v.post_row, {', '.join(_REPORT_VERSION.values())} FROM post_versions v"
            f" WHERE v.post_row IN ({_marks(chunk)}) ORDER BY v.post_row, v.version",
            chunk,
        ).fetchall():
            out[row[0]].append(row[1:])
        for version_id, grp, term, start, end, text in store.db.execute(
            'SELECT k.version_id, k.grp, k.term, k.start, k."end", k.text FROM keyword_matches k'
            " JOIN post_versions v ON v.id = k.version_id"
            f" WHERE v.post_row IN ({_marks(chunk)}) ORDER BY k.version_id, k.start, k.id",
            chunk,
        ).fetchall():
            hit = KeywordHit(group=grp, term=term, start=start, end=end, text=text)
            hits[version_id].append(hit)
    return {
        row_id: [
            from_row(ReportVersion, _REPORT_VERSION, r, keywords=tuple(hits.get(r[0], ())))
            for r in found
        ]
        for row_id, found in out.items()
    }


def _sightings(store: Store, row_ids: list[int]) -> dict[int, list[Sighting]]:
    out: dict[int, list[Sighting]] = defaultdict(list)
    for chunk in _chunks(row_ids):
        for row_id, capture_id, at, version_id, position in store.db.execute(
            "SELECT cp.post_row, cp.capture_id, c.started_at, cp.version_id, cp.position"
            " FROM capture_posts cp JOIN captures c ON c.id = cp.capture_id"
            f" WHERE cp.post_row IN ({_marks(chunk)}) ORDER BY cp.post_row, cp.capture_id",
            chunk,
        ).fetchall():
            out[row_id].append(Sighting(capture_id, at, version_id, position))
    return out


def _visibility(store: Store, row_ids: list[int]) -> dict[int, list[VisibilityChange]]:
    out: dict[int, list[VisibilityChange]] = defaultdict(list)
    for chunk in _chunks(row_ids):
        for row_id, change, capture_id, at in store.db.execute(
            "SELECT post_row, change, capture_id, at FROM post_visibility"
            f" WHERE post_row IN ({_marks(chunk)}) ORDER BY id",
            chunk,
        ).fetchall():
            out[row_id].append(VisibilityChange(change, capture_id, at))
    return out


def _photos_seen_before(store: Store, keys: set[tuple[str, str]]) -> list[PhotoSeenBefore]:
    """``image_seen_before`` events touching a post in ``keys``, on either side."""
    found = []
    for target, post_id, details_json, created_at in store.db.execute(
        "SELECT target, post_id, details, created_at FROM events"
        " WHERE kind = 'image_seen_before' ORDER BY id"
    ).fetchall():
        repost = ImageSeenBefore.from_json(json.loads(details_json or "{}"))
        first = repost.first_seen
        later, earlier = (target, str(post_id)), (first.target, str(first.post_id))
        if later not in keys and earlier not in keys:
            continue
        if not repost.image_sha256 or not first.image_sha256:
            continue
        found.append(
            PhotoSeenBefore(
                later=later,
                later_sha=repost.image_sha256,
                later_seen_at=created_at,
                first=(str(earlier[0]), earlier[1]),
                first_sha=first.image_sha256,
                first_seen_at=first.seen_at,
                distance=int(repost.distance or 0),
            )
        )
    return found


def _photo_keywords(store: Store, keys: set[tuple[str, str]]) -> list[PhotoKeywords]:
    """Keywords read in the photos of the posts in ``keys``.

    They live on ``photo_text`` events, not in ``keyword_matches``, whose offsets point into
    post text; a photo read on a baseline post has no event, as its text's keywords alert
    nothing either.
    """
    found = []
    targets = sorted({target for target, _ in keys})
    for chunk in _chunks(targets):
        for event_id, target, post_id, details_json, created_at in store.db.execute(
            "SELECT id, target, post_id, details, created_at FROM events"
            f" WHERE kind = 'photo_text' AND target IN ({_marks(chunk)}) ORDER BY id",
            chunk,
        ).fetchall():
            key = (target, str(post_id))
            reading = PhotoTextFound.from_json(json.loads(details_json or "{}"))
            if key not in keys or not reading.keywords:
                continue
            found.append(
                PhotoKeywords(
                    post=key,
                    image_sha256=reading.image_sha256,
                    text=reading.text,
                    keywords=reading.keywords,
                    read_at=created_at,
                    event_id=event_id,
                )
            )
    return found


def _images(store: Store, shas: set[str]) -> dict[str, ImageFacts]:
    out = {}
    wanted = sorted(shas)
    for chunk in _chunks(wanted):
        for sha, size, media_type, width, height, phash, dhash in store.db.execute(
            "SELECT sha256, size, media_type, width, height, phash, dhash FROM images"
            f" WHERE sha256 IN ({_marks(chunk)})",
            chunk,
        ).fetchall():
            out[sha] = ImageFacts(sha, size, media_type, width, height, phash, dhash)
    return out


def _chunks(values: list) -> list[list]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _marks(values: list) -> str:
    return ",".join("?" * len(values))
