"""Links between accounts (shared contacts, reposted photos) and `watcher similar` / `links`,
on real SQLite files built with Store calls."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import watcher
from watcher.demo.images import encode, make_photo, variant
from watcher.detect import events as ev
from watcher.detect.contacts import extract_contacts
from watcher.detect.images import ImageIndex, perceptual_hashes
from watcher.models import CapturedPost, CaptureStatus, Event, ImageRecord, Post
from watcher.store.db import CaptureRow, Store
from watcher.store.links import (
    contact_seen_before,
    load_image_index,
    photo_links,
    record_contacts,
    shared_contacts,
    similar_images,
)

NOW = "2026-11-01T10:00:00Z"


class Archive:
    """A data folder filled the way a capture fills it, one post at a time."""

    def __init__(self, data_dir: Path) -> None:
        self.store = Store(data_dir / "watcher.db")
        self.index = ImageIndex()
        self.minute = 0

    def post(self, target: str, post_id: str, text: str = "", photos: tuple[bytes, ...] = ()):
        """Store one post (own capture) with its photos and contacts; return its events."""
        store, now = self.store, self._tick()
        records = [self._image(data) for data in photos]
        post = Post(
            post_id,
            text,
            permalink=f"https://t.me/{target}/{post_id}",
            image_urls=tuple(r.url for r in records),
        )
        captured = CapturedPost(post, tuple(r.sha256 for r in records))
        with store.transaction():
            store.upsert_target(target, "telegram", f"https://t.me/s/{target}", now)
            capture_id = store.insert_capture(
                CaptureRow(target, CaptureStatus.OK, now, now, f"https://t.me/s/{target}")
            )
            fresh = [r for r in records if store.insert_image(r, now)]
            row, version = store.insert_post(target, captured, capture_id, 0, now)
            record_contacts(
                store, target, post_id, version, capture_id, extract_contacts(text), now
            )
            new = [(ev.NewImage(captured, r), row) for r in records]
            events = ev.repost_events(target, new, self.index, store.first_sighting)
            stored = [
                store.insert_event(Event(e.kind, e.target, e.post_id, e.details, capture_id, now))
                for e in events
            ]
        for r in fresh:
            self.index.add(r.sha256, r.phash, r.dhash)
        return stored

    def _image(self, data: bytes) -> ImageRecord:
        hashes = perceptual_hashes(data)
        sha = hashlib.sha256(data).hexdigest()
        return ImageRecord(
            f"https://cdn.example/{sha[:12]}.jpg",
            sha,
            len(data),
            "image/jpeg",
            hashes.phash,
            hashes.dhash,
            hashes.width,
            hashes.height,
        )

    def _tick(self) -> str:
        self.minute += 1
        return f"2026-11-01T10:{self.minute:02d}:00Z"


@pytest.fixture
def archive(tmp_path: Path):
    made = Archive(tmp_path / "data")
    yield made
    made.store.close()


REPOST = {"scale": 0.5, "quality": 60, "crop": 0.05, "watermark": "repost"}


def _linked_archive(archive: Archive) -> None:
    """dealer posts photos and a phone; two front men repost and share contacts."""
    archive.post("dealer", "1", "Ivory bangle, call 012 345 678", (encode(make_photo(1)),))
    archive.post("dealer", "2", "tusk, tg @ivory_kh", (encode(make_photo(2)),))
    archive.post("frontman", "10", "new stock ☎ +855 12 345 678", (variant(1, **REPOST),))
    archive.post("frontman", "11", "unrelated photo", (encode(make_photo(77)),))
    archive.post("shop", "20", "WhatsApp +855 12 345 678, t.me/ivory_kh", (variant(2, **REPOST),))
    archive.post("bystander", "30", "call 097 123 4567", (encode(make_photo(78)),))


def test_contacts_are_recorded_once_per_version(archive: Archive):
    archive.post("dealer", "1", "012 345 678 or 012-345-678, tg @ivory_kh")
    rows = archive.store.db.execute(
        "SELECT kind, value, target, post_id, raw FROM contacts ORDER BY id"
    ).fetchall()
    assert rows == [
        ("phone", "+85512345678", "dealer", "1", "012 345 678"),
        ("telegram", "ivory_kh", "dealer", "1", "ivory_kh"),
    ]


def test_shared_contacts_link_targets_across_formats(archive: Archive):
    _linked_archive(archive)
    links = shared_contacts(archive.store)
    by_value = {link.value: link for link in links}
    phone = by_value["+85512345678"]
    assert phone.kind == "phone"
    assert phone.targets == ["dealer", "frontman", "shop"]
    assert phone.kinds == ["phone", "whatsapp"]  # the shop gave it as its WhatsApp
    assert [(t, p) for t, p, _ in phone.posts] == [
        ("dealer", "1"),
        ("frontman", "10"),
        ("shop", "20"),
    ]
    assert by_value["ivory_kh"].targets == ["dealer", "shop"]
    assert "+855971234567" not in by_value  # seen on one target only: no link
    # Filtered to one target: only links that involve it.
    assert [link.value for link in shared_contacts(archive.store, "frontman")] == ["+85512345678"]
    assert shared_contacts(archive.store, "bystander") == []


def test_reposts_become_photo_links_with_their_evidence(archive: Archive):
    _linked_archive(archive)
    links = photo_links(archive.store)
    pairs = {(link.target_a, link.target_b): link for link in links}
    assert set(pairs) == {("dealer", "frontman"), ("dealer", "shop")}
    (post_a, post_b, distance) = pairs[("dealer", "frontman")].examples[0]
    assert (post_a, post_b) == ("1", "10") and 0 <= distance <= 10
    assert pairs[("dealer", "shop")].examples[0][:2] == ("2", "20")
    assert [(x.target_a, x.target_b) for x in photo_links(archive.store, "shop")] == [
        ("dealer", "shop")
    ]
    assert photo_links(archive.store, "bystander") == []


def test_photo_links_skip_same_target_reposts_and_count_pairs(archive: Archive):
    archive.post("dealer", "1", "", (encode(make_photo(5)),))
    archive.post("dealer", "2", "again", (variant(5, scale=0.7),))  # same account: no link
    archive.post("copycat", "9", "", (variant(5, quality=50),))
    archive.post("copycat", "10", "", (variant(5, crop=0.04),))
    (link,) = photo_links(archive.store)
    assert (link.target_a, link.target_b, link.count) == ("copycat", "dealer", 2)
    # Targets are in name order, and so are each example's posts: copycat's first.
    assert [(a, b) for a, b, _ in link.examples] == [("9", "1"), ("10", "1")]


def test_similar_images_lists_posts_of_each_match(archive: Archive):
    _linked_archive(archive)
    index = load_image_index(archive.store)
    assert len(index) == 6
    query = perceptual_hashes(variant(1, scale=0.8, watermark="x")).phash
    found = similar_images(archive.store, index, query, limit=5)
    # The original on the dealer and its repost on the front man; nothing else is that close.
    assert sorted(s.posts[0].target for s in found) == ["dealer", "frontman"]
    assert all(len(s.posts) == 1 for s in found)
    assert all(s.distance <= 10 for s in found)
    dealer = next(s for s in found if s.posts[0].target == "dealer")
    assert [(p.target, p.post_id, p.permalink, p.seen_at) for p in dealer.posts] == [
        ("dealer", "1", "https://t.me/dealer/1", "2026-11-01T10:01:00Z")
    ]
    assert similar_images(archive.store, index, query, limit=1)[0] == found[0]


def test_loaded_index_vetoes_by_dhash(archive: Archive):
    archive.post("dealer", "1", "", (encode(make_photo(3)),))
    index = load_image_index(archive.store)
    hashes = perceptual_hashes(variant(3, **REPOST))
    assert index.near(hashes.phash, dhash=hashes.dhash, max_dhash_distance=24)
    assert index.near(hashes.phash, dhash=hashes.dhash ^ (2**64 - 1), max_dhash_distance=24) == []


# -- the commands, as a user runs them -----------------------------------------------------


def test_similar_command_lists_archived_images_and_known_references(tmp_path: Path, archive):
    _linked_archive(archive)
    archive.store.close()
    (tmp_path / "refs" / "seized-2023").mkdir(parents=True)
    (tmp_path / "refs" / "seized-2023" / "bangle.png").write_bytes(encode(make_photo(1), "PNG"))
    (tmp_path / "refs" / "seized-2023" / "other.jpg").write_bytes(encode(make_photo(55)))
    (tmp_path / "watchlist.yaml").write_text(
        "images:\n  known: [refs]\n"
        "targets:\n  - {name: dealer, platform: telegram, url: 'https://t.me/s/dealer'}\n"
    )
    photo = tmp_path / "query.jpg"
    photo.write_bytes(variant(1, scale=0.7, watermark="seen on fb"))

    result = watcher("similar", str(photo), "--distance", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("same photo") == 2
    assert "dealer post 1" in out and "https://t.me/dealer/1" in out
    assert "frontman post 10" in out
    assert "shop post 20" not in out  # a different photo
    assert "reference refs/seized-2023/bangle.png" in out
    assert "other.jpg" not in out

    limited = watcher("similar", str(photo), "--limit", "1", cwd=tmp_path)
    assert limited.stdout.count("image ") == 1


def test_similar_command_errors_are_plain_messages(tmp_path: Path):
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    bad = watcher("similar", "x.jpg", "--data", str(tmp_path / "data"), cwd=tmp_path)
    assert bad.returncode == 1
    assert "not a readable image" in bad.stderr and "Traceback" not in bad.stderr
    assert "no picture format" in bad.stderr and "BytesIO" not in bad.stderr
    (tmp_path / "y.jpg").write_bytes(encode(make_photo(1)))
    empty = watcher("similar", "y.jpg", "--data", str(tmp_path / "nodata"), cwd=tmp_path)
    assert empty.returncode == 1 and "no archive" in empty.stderr


def test_links_command_shows_each_link_with_its_evidence(tmp_path: Path, archive):
    _linked_archive(archive)
    archive.store.close()
    data = str(tmp_path / "data")
    result = watcher("links", "--data", data, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dealer <-> frontman: 1 reposted photo(s)" in out
    assert "dealer post 1 ~ frontman post 10" in out
    assert "phone +85512345678 (as phone, whatsapp): dealer, frontman, shop" in out
    assert "telegram ivory_kh: dealer, shop" in out
    only = watcher("links", "bystander", "--data", data, cwd=tmp_path)
    assert only.returncode == 0 and "no linked accounts involving bystander" in only.stdout


def test_links_command_unknown_target_and_all_shared_photos(tmp_path: Path, archive):
    for n in range(7):
        archive.post("dealer", str(n), "", (encode(make_photo(100 + n)),))
        archive.post("copycat", f"c{n}", "", (variant(100 + n, **REPOST),))
    archive.store.close()
    data = str(tmp_path / "data")
    unknown = watcher("links", "delaer", "--data", data, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no target named delaer; known: copycat, dealer" in unknown.stderr

    some = watcher("links", "dealer", "--data", data, cwd=tmp_path)
    assert some.returncode == 0, some.stderr
    assert "copycat <-> dealer: 7 reposted photo(s)" in some.stdout
    assert some.stdout.count(" ~ dealer post ") == 5 and "2 more (--all" in some.stdout
    every = watcher("links", "--all", "--data", data, cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert every.stdout.count(" ~ dealer post ") == 7 and "more" not in every.stdout


def test_contact_seen_before_names_the_first_other_target(archive: Archive):
    archive.post("dealer", "1", "call 012 345 678")
    archive.post("dealer", "2", "tg @ivory_kh")
    archive.post("frontman", "5", "012-345-678 again")
    new = extract_contacts("WhatsApp +855 12 345 678, tg @ivory_kh, t.me/other_one")
    found = contact_seen_before(archive.store, "shop", new)
    assert [(f.kind, f.value) for f in found] == [
        ("phone", "+85512345678"),
        ("telegram", "ivory_kh"),
    ]
    assert found[0].first_seen.target == "dealer"
    assert found[0].first_seen.post_id == "1"
    assert found[0].targets == ["dealer", "frontman"]
    # Its own earlier posts do not count.
    assert contact_seen_before(archive.store, "dealer", new) == [
        replace(
            found[0],
            first_seen=replace(
                found[0].first_seen,
                target="frontman",
                post_id="5",
                seen_at="2026-11-01T10:03:00Z",
                capture_id=3,
            ),
            targets=["frontman"],
        )
    ]


def test_first_sighting_says_when_the_original_post_was_deleted(archive: Archive):
    photo = encode(make_photo(5))
    sha = hashlib.sha256(photo).hexdigest()
    archive.post("dealer", "1", "bangle", (photo,))
    store = archive.store
    (row,) = store.db.execute("SELECT id FROM posts WHERE post_id = '1'").fetchone()
    assert store.first_sighting(sha).deleted is False
    with store.transaction():
        store.mark_deleted(row, 1, archive._tick())
    seen = store.first_sighting(sha)
    assert (seen.target, seen.post_id, seen.deleted) == ("dealer", "1", True)
