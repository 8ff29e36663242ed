"""Perceptual hashes of the demo photos and the near-duplicate image index."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from watcher.demo.images import big_photo_bytes, encode, make_photo, variant
from watcher.detect import known as known_module
from watcher.detect.images import (
    DHASH_CONFIRM_DISTANCE,
    MAX_PIXELS,
    SAME_PHOTO_DISTANCE,
    ImageDecodeError,
    ImageIndex,
    hamming,
    perceptual_hashes,
)
from watcher.detect.known import known_match_details, load_known_images, match_known

REPOSTS = {
    "resized": {"scale": 0.6},
    "recompressed": {"quality": 70},
    "cropped": {"crop": 0.03},
    "watermarked": {"watermark": "@lucky_charms_store"},
    "all_at_once": {"scale": 0.6, "quality": 70, "crop": 0.03, "watermark": "t.me/ivory_kh"},
    "png": {"fmt": "PNG", "scale": 0.6},
}


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, format="PNG")
    return buffer.getvalue()


# -- perceptual_hashes ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 7, 42])
@pytest.mark.parametrize("kind", sorted(REPOSTS))
def test_repost_variants_stay_within_same_photo_distance(seed: int, kind: str):
    original = perceptual_hashes(encode(make_photo(seed)))
    repost = perceptual_hashes(variant(seed, **REPOSTS[kind]))
    assert hamming(original.phash, repost.phash) <= SAME_PHOTO_DISTANCE


def test_unrelated_photos_are_far_apart():
    seeds = [1, 2, 3, 7, 42, 1000]
    hashes = {s: perceptual_hashes(encode(make_photo(s))).phash for s in seeds}
    for a in seeds:
        for b in seeds:
            if a < b:
                assert hamming(hashes[a], hashes[b]) > SAME_PHOTO_DISTANCE, (a, b)
    # ... and a repost of one photo is not mistaken for another photo.
    repost = perceptual_hashes(variant(7, **REPOSTS["all_at_once"])).phash
    assert all(hamming(repost, hashes[s]) > SAME_PHOTO_DISTANCE for s in seeds if s != 7)


def test_hashes_are_deterministic_and_report_size():
    data = encode(make_photo(5, size=(320, 200)))
    first, second = perceptual_hashes(data), perceptual_hashes(data)
    assert first == second
    assert (first.width, first.height) == (320, 200)
    assert 0 <= first.phash < 2**64 and 0 <= first.dhash < 2**64
    assert perceptual_hashes(variant(5, scale=0.5)).width == 320


def test_truncated_jpeg_raises():
    data = encode(make_photo(3))
    with pytest.raises(ImageDecodeError, match="not a readable image"):
        perceptual_hashes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="not a readable image"):
        perceptual_hashes(data[:10])


@pytest.mark.parametrize(
    "data",
    [b"", random.Random(1).randbytes(4096), b"<html>not an image</html>"],
    ids=["empty", "random", "html"],
)
def test_non_image_bytes_raise(data: bytes):
    with pytest.raises(ImageDecodeError) as info:
        perceptual_hashes(data)
    assert "not a readable image" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_image_over_max_pixels_is_refused_as_too_large():
    width, height = 9000, 9000  # 81 MP: over MAX_PIXELS, under Pillow's own bomb limit
    assert width * height > MAX_PIXELS
    with pytest.raises(ImageDecodeError, match="too large") as info:
        perceptual_hashes(_png((width, height)))
    assert "9000x9000" in str(info.value)


def test_huge_header_is_refused_as_too_large():
    with pytest.raises(ImageDecodeError, match="too large"):
        perceptual_hashes(_png((10_000, 9_000)))


def test_huge_header_is_refused_somehow():
    # Whatever the message, a 90 MP or 400 MP header never gets decoded.
    for size in ((10_000, 9_000), (20_000, 20_000)):
        with pytest.raises(ImageDecodeError):
            perceptual_hashes(_png(size))


def test_twenty_megabyte_image_hashes():
    data = big_photo_bytes(20_000_000)
    assert len(data) >= 20_000_000
    hashes = perceptual_hashes(data)
    assert hashes.width * hashes.height < MAX_PIXELS
    assert hashes.width > 2000


# -- ImageIndex ----------------------------------------------------------------------------


def _brute_force(entries: list[tuple[str, int]], query: int, max_distance: int):
    first: dict[str, tuple[int, int]] = {}
    for order, (sha, phash) in enumerate(entries):
        first.setdefault(sha, (order, phash))
    hits = [
        (order, sha, (phash ^ query).bit_count())
        for sha, (order, phash) in first.items()
        if (phash ^ query).bit_count() <= max_distance
    ]
    hits.sort(key=lambda hit: (hit[2], hit[0]))
    return [(sha, distance) for _, sha, distance in hits]


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


def test_near_matches_brute_force_scan():
    rng = random.Random(20240301)
    hashes = [rng.getrandbits(64) for _ in range(4_000)]
    # Clusters around a few centres so queries have many hits at small distances ...
    centres = [rng.getrandbits(64) for _ in range(10)]
    hashes += [_flip(rng.choice(centres), rng.randint(0, 6), rng) for _ in range(900)]
    # ... exact duplicate hashes under different SHA-256s, and the extremes.
    hashes += [rng.choice(hashes) for _ in range(98)] + [0, 2**64 - 1]
    entries = [(f"{i:064x}", h) for i, h in enumerate(hashes)]
    assert len(entries) == 5_000
    index = ImageIndex(entries)
    assert len(index) == 5_000

    queries = [_flip(rng.choice(centres + hashes), rng.randint(0, 8), rng) for _ in range(150)] + [
        rng.getrandbits(64) for _ in range(50)
    ]
    total_hits = 0
    for query in queries:
        for max_distance in range(13):
            expected = _brute_force(entries, query, max_distance)
            assert index.near(query, max_distance) == expected, (hex(query), max_distance)
            total_hits += len(expected)
    assert total_hits > 1_000  # the comparison exercised real matches, not just empty lists


def test_near_orders_closest_first_and_keeps_duplicates():
    index = ImageIndex([("far", 0b111), ("exact", 0), ("dup", 0), ("one", 0b1000)])
    assert index.near(0, 3) == [("exact", 0), ("dup", 0), ("one", 1), ("far", 3)]
    assert index.near(0, 0) == [("exact", 0), ("dup", 0)]
    assert index.near(0) == index.near(0, SAME_PHOTO_DISTANCE)
    assert index.near(2**64 - 1, 10) == []


def test_empty_index():
    index = ImageIndex()
    assert len(index) == 0
    assert index.near(12345, 64) == []


def test_adding_the_same_sha_twice_is_ignored():
    index = ImageIndex()
    index.add("a" * 64, 0)
    index.add("a" * 64, 2**64 - 1)  # same SHA-256, different hash: the first one stays
    assert len(index) == 1
    assert index.near(0, 0) == [("a" * 64, 0)]
    assert index.near(2**64 - 1, 10) == []


def test_growth_past_initial_capacity():
    index = ImageIndex()
    for i in range(3_000):
        index.add(f"{i:064x}", i)
    assert len(index) == 3_000
    for value in (0, 1023, 1024, 1025, 2047, 2048, 2999):
        assert index.near(value, 0) == [(f"{value:064x}", 0)]
    high = 2**64 - 2
    index.add("f" * 64, high)
    assert index.near(high, 0) == [("f" * 64, 0)]
    assert len(index) == 3_001


def test_index_finds_real_reposts():
    photos = {seed: perceptual_hashes(encode(make_photo(seed))).phash for seed in (1, 2, 3, 4)}
    index = ImageIndex([(f"sha-{seed}", phash) for seed, phash in photos.items()])
    repost = perceptual_hashes(variant(3, **REPOSTS["all_at_once"])).phash
    hits = index.near(repost)
    assert [sha for sha, _ in hits] == ["sha-3"]


# -- hard reposts, false positives, dHash confirmation ---------------------------------------

HARD_REPOST = {"scale": 0.5, "quality": 60, "crop": 0.05, "watermark": "repost"}


@pytest.mark.parametrize("seed", [1, 7, 42, 1000])
def test_hard_repost_is_matched_by_the_index(seed: int):
    original = perceptual_hashes(encode(make_photo(seed)))
    repost = perceptual_hashes(variant(seed, **HARD_REPOST))
    assert hamming(original.phash, repost.phash) <= SAME_PHOTO_DISTANCE
    # dHash moves more under a crop, but stays inside the veto distance.
    assert hamming(original.dhash, repost.dhash) <= DHASH_CONFIRM_DISTANCE
    index = ImageIndex()
    index.add("original", original.phash, original.dhash)
    confirmed = index.near(
        repost.phash, dhash=repost.dhash, max_dhash_distance=DHASH_CONFIRM_DISTANCE
    )
    assert [sha for sha, _ in confirmed] == ["original"]


def test_fifty_unrelated_photos_give_no_false_positive():
    seeds = range(100, 150)
    archive = {s: perceptual_hashes(encode(make_photo(s))) for s in seeds}
    index = ImageIndex([(f"seed-{s}", h.phash) for s, h in archive.items()])
    false_positives = 0
    for seed in seeds:
        repost = perceptual_hashes(variant(seed, **HARD_REPOST))
        hits = [sha for sha, _ in index.near(repost.phash)]
        assert f"seed-{seed}" in hits  # the repost finds its own original ...
        false_positives += len([h for h in hits if h != f"seed-{seed}"])  # ... and nothing else
    assert false_positives == 0


# -- known reference photos ------------------------------------------------------------------


def test_known_reference_photos_are_loaded_recursively_and_matched(tmp_path):
    refs = tmp_path / "cases" / "seized-2023"
    (refs / "box-2").mkdir(parents=True)
    (refs / "tusk-01.jpg").write_bytes(encode(make_photo(11)))
    (refs / "box-2" / "bangle.PNG").write_bytes(encode(make_photo(12), "PNG"))
    (refs / "box-2" / "scale.webp").write_bytes(encode(make_photo(13), "WEBP"))
    (refs / "notes.txt").write_text("not a photo")
    (refs / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    problems: list[tuple[str, str]] = []

    known = load_known_images(
        ["cases/seized-2023", "missing"],
        tmp_path,
        on_problem=lambda path, why: problems.append((path.name, why)),
    )
    assert sorted(k.name for k in known) == [
        "seized-2023/box-2/bangle.PNG",
        "seized-2023/box-2/scale.webp",
        "seized-2023/tusk-01.jpg",
    ]
    assert [name for name, _ in problems] == ["broken.jpg", "missing"]
    assert "not a readable image" in problems[0][1]

    repost = perceptual_hashes(variant(12, **HARD_REPOST)).phash
    (match,) = match_known(repost, known)
    assert match[0].name == "seized-2023/box-2/bangle.PNG" and match[1] <= SAME_PHOTO_DISTANCE
    assert match_known(perceptual_hashes(encode(make_photo(14))).phash, known) == []
    details = known_match_details("abc", [match])
    assert details.reference == "seized-2023/box-2/bangle.PNG"


def test_oversized_reference_photo_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(known_module, "MAX_KNOWN_BYTES", 1000)
    (tmp_path / "big.jpg").write_bytes(encode(make_photo(1)))
    problems = []
    known = load_known_images([str(tmp_path)], Path("/"), lambda p, why: problems.append(why))
    assert known == []
    assert "over the 1000 byte limit" in problems[0]
