"""Pure tests of the post diff and the events built from it."""

from __future__ import annotations

from watcher.detect.diff import diff_posts, is_edited
from watcher.detect.events import NewImage, new_images, post_events, repost_events
from watcher.detect.images import ImageIndex
from watcher.models import (
    CapturedPost,
    EventKind,
    ImageRecord,
    ImageSighting,
    Post,
    StoredPost,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def stored(
    post_id: str,
    text: str = "",
    shas: tuple[str | None, ...] = (),
    posted_at: str | None = None,
    position: int = 0,
    row_id: int | None = None,
    version: int = 1,
) -> StoredPost:
    digits = "".join(ch for ch in post_id if ch.isdigit())
    number = int(digits) if digits else 0
    return StoredPost(
        row_id=row_id if row_id is not None else number,
        post_id=post_id,
        version_id=number * 10 + version,
        version=version,
        text=text,
        image_shas=shas,
        posted_at=posted_at,
        permalink=f"https://t.me/{post_id}",
        first_seen_at="2024-03-01T00:00:00.000Z",
        last_seen_at="2024-03-02T00:00:00.000Z",
        last_capture_id=7,
        position=position,
    )


def captured(
    post_id: str,
    text: str = "",
    shas: tuple[str | None, ...] = (),
    posted_at: str | None = None,
    urls: tuple[str, ...] | None = None,
) -> CapturedPost:
    if urls is None:
        urls = tuple(f"https://cdn.example/{post_id}/{i}.jpg" for i in range(len(shas)))
    post = Post(
        post_id=post_id,
        text=text,
        permalink=f"https://t.me/{post_id}",
        posted_at=posted_at,
        image_urls=urls,
    )
    return CapturedPost(post=post, image_shas=shas)


def t(hour: int) -> str:
    return f"2024-03-01T{hour:02d}:00:00.000Z"


# -- diff_posts / is_edited -----------------------------------------------------------------


def test_everything_new_against_empty_store():
    current = [captured("c/1", "a"), captured("c/2", "b")]
    diff = diff_posts([], current)
    assert diff.new == current
    assert diff.edited == diff.unchanged == diff.deleted == []


def test_new_post_among_unchanged():
    previous = [stored("c/1", "one", posted_at=t(1)), stored("c/2", "two", posted_at=t(2))]
    current = [
        captured("c/1", "one", posted_at=t(1)),
        captured("c/2", "two", posted_at=t(2)),
        captured("c/3", "three", posted_at=t(3)),
    ]
    diff = diff_posts(previous, current)
    assert [c.post.post_id for c in diff.new] == ["c/3"]
    assert [(s.post_id, c.post.post_id) for s, c in diff.unchanged] == [
        ("c/1", "c/1"),
        ("c/2", "c/2"),
    ]
    assert diff.edited == [] and diff.deleted == []


def test_edited_text():
    before = stored("c/1", "Ivory bangle $500")
    after = captured("c/1", "Ivory bangle $450")
    assert is_edited(before, after)
    diff = diff_posts([before], [after])
    assert len(diff.edited) == 1
    assert diff.edited[0].before is before and diff.edited[0].after is after
    assert diff.edited[0].text_changed
    assert diff.unchanged == [] and diff.new == []


def test_edited_image_sha_only():
    before = stored("c/1", "same words", (SHA_A, SHA_B))
    after = captured("c/1", "same words", (SHA_A, SHA_C))
    assert is_edited(before, after)
    diff = diff_posts([before], [after])
    assert len(diff.edited) == 1
    assert not diff.edited[0].text_changed


def test_image_added_or_removed_is_an_edit():
    assert is_edited(stored("c/1", "x", (SHA_A,)), captured("c/1", "x", (SHA_A, SHA_B)))
    assert is_edited(stored("c/1", "x", (SHA_A, SHA_B)), captured("c/1", "x", (SHA_A,)))


def test_failed_image_download_is_not_an_edit():
    before = stored("c/1", "text", (SHA_A, SHA_B))
    assert not is_edited(before, captured("c/1", "text", (SHA_A, None)))
    assert not is_edited(before, captured("c/1", "text", (None, None)))
    # ... nor when it was the earlier download that failed.
    assert not is_edited(
        stored("c/1", "text", (None, SHA_B)), captured("c/1", "text", (SHA_A, SHA_B))
    )
    diff = diff_posts([before], [captured("c/1", "text", (SHA_A, None))])
    assert diff.edited == [] and len(diff.unchanged) == 1


def test_whitespace_only_change_is_not_an_edit():
    before = stored("c/1", "Giá tốt\nDM  me ")
    for text in ("Giá tốt DM me", "  Giá tốt\n\nDM me", "Giá tốt\tDM\u00a0me"):
        assert not is_edited(before, captured("c/1", text)), repr(text)
    assert is_edited(before, captured("c/1", "Giá tốt DMme"))


def test_deleted_between_older_and_newer_posts():
    previous = [
        stored("c/1", posted_at=t(1), position=0),
        stored("c/2", posted_at=t(2), position=1),
        stored("c/3", posted_at=t(3), position=2),
    ]
    current = [captured("c/1", posted_at=t(1)), captured("c/3", posted_at=t(3))]
    diff = diff_posts(previous, current)
    assert [p.post_id for p in diff.deleted] == ["c/2"]
    assert len(diff.unchanged) == 2


def test_oldest_missing_is_not_deleted_it_scrolled_out():
    previous = [
        stored("c/1", posted_at=t(1), position=0),
        stored("c/2", posted_at=t(2), position=1),
        stored("c/3", posted_at=t(3), position=2),
    ]
    # Two new posts pushed c/1 off the page: nothing in the capture is older than it.
    current = [
        captured("c/2", posted_at=t(2)),
        captured("c/3", posted_at=t(3)),
        captured("c/4", posted_at=t(4)),
        captured("c/5", posted_at=t(5)),
    ]
    diff = diff_posts(previous, current)
    assert diff.deleted == []
    assert [c.post.post_id for c in diff.new] == ["c/4", "c/5"]


def test_newest_missing_is_not_deleted():
    previous = [stored("c/1", posted_at=t(1)), stored("c/2", posted_at=t(2))]
    assert diff_posts(previous, [captured("c/1", posted_at=t(1))]).deleted == []


def test_empty_capture_deletes_nothing():
    previous = [stored("c/1", posted_at=t(1)), stored("c/2", posted_at=t(2))]
    assert diff_posts(previous, []).deleted == []
    previous_untimed = [stored("c/1"), stored("c/2"), stored("c/3")]
    assert diff_posts(previous_untimed, []).deleted == []


def test_deletion_bracketed_by_new_posts_times():
    # c/2 is missing; the capture holds a post older (c/1) and one newer (c/9, new) than it.
    previous = [stored("c/1", posted_at=t(1)), stored("c/2", posted_at=t(2))]
    current = [captured("c/1", posted_at=t(1)), captured("c/9", posted_at=t(9))]
    diff = diff_posts(previous, current)
    assert [p.post_id for p in diff.deleted] == ["c/2"]
    assert [c.post.post_id for c in diff.new] == ["c/9"]


def test_positional_fallback_without_times():
    previous = [
        stored("s/L1", position=0),
        stored("s/L2", position=1),
        stored("s/L3", position=2),
        stored("s/L4", position=3),
    ]
    # L2 vanished between L1 and L3; L4 (the end of the list) is gone too but may have
    # scrolled out of the page.
    current = [captured("s/L1"), captured("s/L3")]
    diff = diff_posts(previous, current)
    assert [p.post_id for p in diff.deleted] == ["s/L2"]


def test_positional_fallback_when_some_current_post_lacks_a_time():
    previous = [
        stored("c/1", posted_at=t(1)),
        stored("c/2", posted_at=t(2)),
        stored("c/3", posted_at=t(3)),
    ]
    # One captured post has no time, so the time window cannot be trusted: positions decide.
    current = [captured("c/1", posted_at=None), captured("c/3", posted_at=t(3))]
    assert [p.post_id for p in diff_posts(previous, current).deleted] == ["c/2"]
    current = [captured("c/2", posted_at=None), captured("c/3", posted_at=t(3))]
    assert diff_posts(previous, current).deleted == []


def test_each_post_lands_in_exactly_one_bucket():
    previous = [stored(f"c/{i}", f"text {i}", posted_at=t(i)) for i in range(1, 7)]
    current = [
        captured("c/1", "text 1", posted_at=t(1)),
        captured("c/2", "text 2 edited", posted_at=t(2)),
        captured("c/4", "text 4", posted_at=t(4)),
        captured("c/5", "text 5", posted_at=t(5)),
        captured("c/7", "text 7", posted_at=t(7)),
    ]
    diff = diff_posts(previous, current)
    assert [c.post.post_id for c in diff.new] == ["c/7"]
    assert [e.after.post.post_id for e in diff.edited] == ["c/2"]
    assert [s.post_id for s, _ in diff.unchanged] == ["c/1", "c/4", "c/5"]
    assert [p.post_id for p in diff.deleted] == ["c/3", "c/6"]  # c/6 bracketed by c/7


# -- events ---------------------------------------------------------------------------------


def _mixed_diff():
    previous = [
        stored("c/1", "old words", (SHA_A,), posted_at=t(1), version=2),
        stored("c/2", "gone", (SHA_B,), posted_at=t(2)),
        stored("c/3", "stays", posted_at=t(3)),
    ]
    current = [
        captured("c/1", "new words", (SHA_A, SHA_C), posted_at=t(1)),
        captured("c/3", "stays", posted_at=t(3)),
        captured("c/4", "fresh", (SHA_B,), posted_at=t(4)),
    ]
    return diff_posts(previous, current)


def test_post_events_kinds_and_details():
    events = post_events("dealer", _mixed_diff(), baseline=False)
    assert [(e.kind, e.post_id) for e in events] == [
        (EventKind.NEW_POST, "c/4"),
        (EventKind.EDITED_POST, "c/1"),
        (EventKind.DELETED_POST, "c/2"),
    ]
    assert all(e.target == "dealer" for e in events)
    new, edited, deleted = events
    assert new.details["text"] == "fresh"
    assert new.details["image_shas"] == [SHA_B]
    assert edited.details["previous_text"] == "old words"
    assert edited.details["text"] == "new words"
    assert edited.details["text_changed"] is True
    assert edited.details["images_added"] == [SHA_C]
    assert edited.details["images_removed"] == []
    assert edited.details["version"] == 3
    assert deleted.details["text"] == "gone"
    assert deleted.details["last_capture_id"] == 7
    assert deleted.details["image_shas"] == [SHA_B]


def test_baseline_suppresses_new_posts_only():
    diff = _mixed_diff()
    events = post_events("dealer", diff, baseline=True)
    assert [e.kind for e in events] == [EventKind.EDITED_POST, EventKind.DELETED_POST]
    assert len(post_events("dealer", diff, baseline=False)) == 3


def test_edited_event_ignores_failed_downloads_in_added_and_removed():
    before = stored("c/1", "a", (SHA_A, SHA_B))
    after = captured("c/1", "b", (None, SHA_B))
    (event,) = post_events("t", diff_posts([before], [after]), baseline=False)
    assert event.details["images_added"] == []
    assert event.details["images_removed"] == [SHA_A]
    assert event.details["image_shas"] == [SHA_B]
    assert event.details["text_changed"] is True


def _record(url: str, sha: str | None, phash: int | None) -> ImageRecord:
    return ImageRecord(url=url, sha256=sha, size=100, media_type="image/jpeg", phash=phash)


def test_new_images_only_decoded_and_only_added_by_edits():
    diff = _mixed_diff()
    edited = diff.edited[0].after
    fresh = diff.new[0]
    images = {
        edited.post.image_urls[0]: _record(edited.post.image_urls[0], SHA_A, 1),
        edited.post.image_urls[1]: _record(edited.post.image_urls[1], SHA_C, 2),
        fresh.post.image_urls[0]: _record(fresh.post.image_urls[0], SHA_B, 3),
    }
    found = new_images(diff, images)
    assert [(n.post.post.post_id, n.image.sha256) for n in found] == [
        ("c/4", SHA_B),
        ("c/1", SHA_C),
    ]
    # An undecodable image (no phash) is not a repost candidate.
    images[fresh.post.image_urls[0]] = _record(fresh.post.image_urls[0], SHA_B, None)
    assert [n.image.sha256 for n in new_images(diff, images)] == [SHA_C]


def test_repost_events_with_index_and_first_sighting():
    index = ImageIndex([("old1" + "0" * 60, 0b1111), ("old2" + "0" * 60, 0xFFFF_0000_0000_0000)])
    sightings = {
        "old1" + "0" * 60: ImageSighting(
            sha256="old1" + "0" * 60,
            target="other-shop",
            post_id="s/L9",
            permalink="https://market.example/item/L9",
            seen_at="2024-02-01T00:00:00.000Z",
            capture_id=3,
        )
    }
    calls: list[tuple[str, int]] = []

    def first_sighting(sha: str, post_row: int) -> ImageSighting | None:
        calls.append((sha, post_row))
        return sightings.get(sha)

    post = captured("c/4", "fresh", (SHA_B,))
    near = NewImage(post, _record(post.post.image_urls[0], SHA_B, 0b1111 ^ 0b1))  # distance 1
    far = NewImage(post, _record(post.post.image_urls[0], SHA_C, 0x0F0F_0F0F_0F0F_0F0F))
    events = repost_events("dealer", [(near, 42), (far, 42)], index, first_sighting)

    assert len(events) == 1
    (event,) = events
    assert event.kind == EventKind.IMAGE_SEEN_BEFORE
    assert event.target == "dealer" and event.post_id == "c/4"
    assert event.details["distance"] == 1
    assert event.details["same_target"] is False
    assert event.details["image_sha256"] == SHA_B
    assert event.details["first_seen"]["post_id"] == "s/L9"
    assert event.details["first_seen"]["capture_id"] == 3
    assert event.details["matches"] == 1
    assert calls == [("old1" + "0" * 60, 42)]  # the far image matched nothing in the index


def test_repost_events_none_when_sighting_is_the_post_itself():
    index = ImageIndex([(SHA_A, 12345)])
    post = captured("c/1", "x", (SHA_B,))
    image = NewImage(post, _record(post.post.image_urls[0], SHA_B, 12345))
    # first_sighting returns None for the post's own earlier versions.
    assert repost_events("t", [(image, 1)], index, lambda sha, row: None) == []


def test_repost_event_reports_earliest_capture_among_matches():
    index = ImageIndex([(SHA_A, 0), (SHA_C, 0b111)])

    def sighting(sha: str, capture_id: int, target: str) -> ImageSighting:
        return ImageSighting(
            sha, target, f"{target}/1", None, "2024-01-01T00:00:00.000Z", capture_id
        )

    table = {SHA_A: sighting(SHA_A, 9, "later"), SHA_C: sighting(SHA_C, 2, "dealer")}
    post = captured("c/5", "x", (SHA_B,))
    image = NewImage(post, _record(post.post.image_urls[0], SHA_B, 0b1))
    (event,) = repost_events("dealer", [(image, 5)], index, lambda sha, row: table[sha])
    assert event.details["first_seen"]["capture_id"] == 2
    assert event.details["first_seen"]["image_sha256"] == SHA_C
    assert event.details["distance"] == 2
    assert event.details["same_target"] is True
    assert event.details["matches"] == 2


def test_a_pinned_old_post_does_not_make_scrolled_off_posts_deleted():
    # Page of 4, newest first, with post 1 pinned at the top: posts 2-4 scrolled off below.
    previous = [stored(f"c/{i}", posted_at=t(i), position=8 - i) for i in range(2, 9)]
    previous.insert(0, stored("c/1", posted_at=t(1), position=0))
    current = [captured("c/1", posted_at=t(1))] + [
        captured(f"c/{i}", posted_at=t(i)) for i in (9, 8, 7)
    ]
    assert diff_posts(previous, current).deleted == []
    # Without the pin, post 5 missing between 4 and 6 is a deletion.
    current = [captured(f"c/{i}", posted_at=t(i)) for i in (6, 4, 3)]
    assert [p.post_id for p in diff_posts(previous, current).deleted] == ["c/5"]


def test_posts_sharing_a_time_fall_back_to_the_order():
    same = t(1)
    previous = [stored(f"c/{i}", posted_at=same, position=i) for i in range(3)]
    current = [captured("c/0", posted_at=same), captured("c/2", posted_at=same)]
    assert [p.post_id for p in diff_posts(previous, current).deleted] == ["c/1"]
