"""Where else was this seen: shared contacts, reposted photos, similar archived images.

The one implementation behind the CLI's ``watcher links`` / ``watcher similar`` and the
bot's ``/links`` / ``/similar``, and the capture's record of the contacts in post text.
Functions take a :class:`Store` first and return records; ``translated`` turns SQLite errors
into ``StoreError`` as for the Store's own methods.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from watcher.detect.contacts import Contact
from watcher.detect.images import SAME_PHOTO_DISTANCE, ImageIndex
from watcher.detect.known import KnownImage, match_known
from watcher.kinds import ImageSeenBefore, Sighting
from watcher.models import EventKind, ImageSighting
from watcher.store.db import Store, translated

# Phone-like values (E.164) link accounts whatever the messenger they were given for: the
# number on one shop's WhatsApp link is the number in another's "call 0...".
_PHONE_KINDS = ("phone", "whatsapp", "zalo", "wechat")
MAX_EXAMPLES = 5
_LOAD_BATCH = 200_000


@dataclass(frozen=True, slots=True)
class ContactLink:
    """A contact seen on several targets, with every post that carried it."""

    kind: str
    value: str
    targets: list[str]
    posts: list[tuple[str, str, str]]  # (target, post_id, first seen_at)
    kinds: list[str] = field(default_factory=list)  # as written: phone, whatsapp, ...


@dataclass(frozen=True, slots=True)
class ContactSighting:
    """A contact of a new post that another target gave first (see contact_seen_before)."""

    kind: str  # phone-like kinds are "phone"
    value: str
    raw: str  # as this post wrote it
    first_seen: Sighting  # the first post of another target that gave it
    targets: list[str]  # every other target that gave it


@dataclass(frozen=True, slots=True)
class PhotoLink:
    """Two targets that posted the same photo: how often, who had it first, a few examples."""

    target_a: str
    target_b: str
    count: int
    examples: list[tuple[str, str, int]]  # (post of target_a, post of target_b, pHash distance)
    a_first: int = 0  # photos target_a had first (target_b reposted them)
    b_first: int = 0  # photos target_b had first
    last_at: str = ""  # when the latest repost was found

    def other(self, name: str) -> str:
        """The target at the other end of the link from ``name``."""
        return self.target_b if name == self.target_a else self.target_a

    def reposted_from(self, name: str) -> int:
        """Photos ``name`` posted that the other target had first."""
        return self.b_first if name == self.target_a else self.a_first

    def reposted_by(self, name: str) -> int:
        """Photos the other target posted that ``name`` had first."""
        return self.a_first if name == self.target_a else self.b_first


@dataclass(frozen=True, slots=True)
class SimilarImage:
    """An archived image near a query, with the posts that carried it (first sighting each)."""

    sha256: str
    distance: int
    posts: list[ImageSighting]


@dataclass(frozen=True, slots=True)
class Similar:
    """Where a photo was seen: archived images near it and the team's reference photos."""

    archived: list[SimilarImage]
    references: list[tuple[KnownImage, int]]  # (reference photo, pHash distance), closest first


def _sql(store: Store, sql: str, params: Iterable[object] = ()) -> list[tuple]:
    return store.db.execute(sql, list(params)).fetchall()


# -- contacts -----------------------------------------------------------------------------


@translated
def record_contacts(
    store: Store,
    target: str,
    post_id: str,
    version_id: int,
    capture_id: int,
    contacts: list[Contact],
    now: str,
    image_sha256: str | None = None,
) -> int:
    """Store the contacts of one post version (each kind and value once); returns how many.

    Call inside the capture's transaction, for new posts and new versions of edited ones;
    with ``image_sha256`` for the contacts read in one of its photos (``source = 'photo'``).
    """
    first: dict[tuple[str, str], Contact] = {}
    for contact in contacts:
        first.setdefault((contact.kind, contact.value), contact)
    source = "photo" if image_sha256 else "text"
    rows = [
        (c.kind, c.value, target, post_id, version_id, capture_id, c.raw, now, source, image_sha256)
        for c in first.values()
    ]
    store.db.conn.executemany(
        "INSERT INTO contacts (kind, value, target, post_id, version_id, capture_id, raw,"
        " seen_at, source, image_sha256) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    return len(rows)


@translated
def contact_seen_before(
    store: Store, target: str, contacts: list[Contact]
) -> list[ContactSighting]:
    """Each distinct contact of ``contacts`` first seen on *another* target.

    Call before :func:`record_contacts` for the same post. Phone-like values match across
    kinds (a phone here, the same number as a WhatsApp there).
    """
    found, done = [], set()
    for contact in contacts:
        key = _link_key(contact.kind, contact.value)
        if key in done:
            continue
        done.add(key)
        kinds = _PHONE_KINDS if key[0] == "phone" else (contact.kind,)
        marks = ",".join("?" * len(kinds))
        rows = _sql(
            store,
            f"SELECT target, post_id, seen_at, capture_id FROM contacts WHERE value = ? "
            f"AND kind IN ({marks}) AND target != ? ORDER BY id",
            [contact.value, *kinds, target],
        )
        if rows:
            target_0, post_id, seen_at, capture_id = rows[0]
            first = Sighting(
                target=target_0, post_id=post_id, seen_at=seen_at, capture_id=capture_id
            )
            targets = sorted({r[0] for r in rows})
            found.append(ContactSighting(key[0], contact.value, contact.raw, first, targets))
    return found


def _link_key(kind: str, value: str) -> tuple[str, str]:
    return ("phone", value) if kind in _PHONE_KINDS and value.startswith("+") else (kind, value)


@translated
def shared_contacts(store: Store, target: str | None = None) -> list[ContactLink]:
    """Contacts seen on two or more targets (only those involving ``target`` if given).

    A phone number counts as one contact whether it was written as a phone, a WhatsApp,
    Zalo or WeChat number. Most-shared first, then by kind and value.
    """
    rows = _sql(
        store,
        "SELECT kind, value, target, post_id, MIN(seen_at) FROM contacts "
        "WHERE value IN (SELECT value FROM contacts GROUP BY value "
        "HAVING COUNT(DISTINCT target) > 1) "
        "GROUP BY kind, value, target, post_id ORDER BY MIN(seen_at), target, post_id",
    )
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in rows:
        groups[_link_key(row[0], row[1])].append(row)
    links = []
    for (kind, value), members in groups.items():
        targets = sorted({m[2] for m in members})
        if len(targets) < 2 or (target and target not in targets):
            continue
        posts = list(dict.fromkeys((m[2], m[3], m[4]) for m in members))
        kinds = sorted({m[0] for m in members})
        links.append(ContactLink(kind, value, targets, posts, kinds))
    return sorted(links, key=lambda link: (-len(link.targets), link.kind, link.value))


# -- photos -------------------------------------------------------------------------------


@translated
def photo_links(
    store: Store, target: str | None = None, examples: int | None = MAX_EXAMPLES
) -> list[PhotoLink]:
    """Pairs of targets that posted the same photo, from ``image_seen_before`` events
    (only pairs involving ``target`` when given).

    Targets in a pair are in name order; the most-linked pairs first. Each link carries its
    first ``examples`` pairs of posts (every one when None).
    """
    rows = _sql(
        store,
        "SELECT target, post_id, details, created_at FROM events WHERE kind = ? ORDER BY id",
        [str(EventKind.IMAGE_SEEN_BEFORE)],
    )
    pairs: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    firsts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    last: dict[tuple[str, str], str] = defaultdict(str)
    for repost_target, repost_post, details_json, at in rows:
        repost = ImageSeenBefore.from_json(json.loads(details_json or "{}"))
        first_target = repost.first_seen.target
        if not first_target or first_target == repost_target:
            continue  # the same account reposting itself is not a link
        if target and target not in (first_target, repost_target):
            continue
        a, b = sorted((first_target, repost_target))
        posts = (repost.first_seen.post_id, repost_post)
        post_a, post_b = posts if a == first_target else posts[::-1]
        pairs[(a, b)].append((str(post_a), str(post_b), int(repost.distance or 0)))
        firsts[(a, b)][0 if a == first_target else 1] += 1
        last[(a, b)] = max(last[(a, b)], at or "")
    links = [
        PhotoLink(a, b, len(found), found[:examples], *firsts[(a, b)], last[(a, b)])
        for (a, b), found in pairs.items()
    ]
    return sorted(links, key=lambda link: (-link.count, link.target_a, link.target_b))


# -- similar images -----------------------------------------------------------------------


@translated
def load_image_index(store: Store) -> ImageIndex:
    """The near-duplicate index of every decodable stored image, with pHash and dHash.

    Read in batches into numpy arrays and bulk-loaded once: no Python object per image
    outlives the load.
    """
    shas, phashes, dhashes, known = [], [], [], []
    cursor = store.db.execute("SELECT sha256, phash, dhash FROM images WHERE phash IS NOT NULL")
    while batch := cursor.fetchmany(_LOAD_BATCH):
        shas.append(np.array([r[0] for r in batch], dtype="S64"))
        phashes.append(np.array([int(r[1], 16) for r in batch], dtype=np.uint64))
        dhashes.append(np.array([int(r[2] or "0", 16) for r in batch], dtype=np.uint64))
        known.append(np.array([r[2] is not None for r in batch], dtype=bool))
    index = ImageIndex()
    if shas:
        has_dhash = np.concatenate(known)
        sha_array, phash_array = np.concatenate(shas), np.concatenate(phashes)
        # Images without a dHash (none today) go in separately so they are never vetoed.
        index.add_many(
            sha_array[has_dhash], phash_array[has_dhash], np.concatenate(dhashes)[has_dhash]
        )
        index.add_many(sha_array[~has_dhash], phash_array[~has_dhash])
    return index


@translated
def similar_images(
    store: Store,
    index: ImageIndex,
    phash: int,
    limit: int | None = 10,
    max_distance: int = SAME_PHOTO_DISTANCE,
) -> list[SimilarImage]:
    """The ``limit`` archived images closest to ``phash`` (every one within ``max_distance``
    when None) with the posts that carried them."""
    return [
        SimilarImage(sha, distance, image_posts(store, sha))
        for sha, distance in index.near(phash, max_distance)[:limit]
    ]


def where_seen(
    store: Store,
    index: ImageIndex,
    known: list[KnownImage],
    phash: int,
    limit: int | None = 10,
    max_distance: int = SAME_PHOTO_DISTANCE,
) -> Similar:
    """The archived images (with their posts) and the reference photos near ``phash``."""
    return Similar(
        similar_images(store, index, phash, limit, max_distance),
        match_known(phash, known, max_distance),
    )


@translated
def image_posts(store: Store, sha256: str) -> list[ImageSighting]:
    """Every post that carried the image (its first sighting), oldest first."""
    rows = _sql(
        store,
        "SELECT pi.sha256, p.target, p.post_id, v.permalink, MIN(v.seen_at), MIN(v.capture_id),"
        " p.deleted_at IS NOT NULL FROM post_images pi JOIN post_versions v ON v.id = pi.version_id"
        " JOIN posts p ON p.id = v.post_row WHERE pi.sha256 = ? GROUP BY p.id ORDER BY MIN(v.id)",
        [sha256],
    )
    return [ImageSighting(*r[:6], deleted=bool(r[6])) for r in rows]
