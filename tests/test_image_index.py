"""The multi-index near-duplicate index answers exactly like a brute-force scan."""

from __future__ import annotations

import numpy as np
import pytest

from watcher.detect import image_index
from watcher.detect.image_index import CHUNKS, MultiIndexHash, chunk_radii
from watcher.detect.images import ImageIndex


def _brute_force(shas: list[str], hashes: np.ndarray, query: int, radius: int):
    """Reference answer: first occurrence of each SHA, by (distance, insertion order).

    Plain Python integers on purpose: nothing shared with the index under test.
    """
    first: dict[str, int] = {}
    for position, sha in enumerate(shas):
        first.setdefault(sha, position)
    hits = []
    for sha, position in first.items():
        distance = (int(hashes[position]) ^ query).bit_count()
        if distance <= radius:
            hits.append((distance, position, sha))
    return [(sha, distance) for distance, _, sha in sorted(hits)]


def _brute_force_radii(shas, hashes, query: int, radii) -> dict[int, list[tuple[str, int]]]:
    """_brute_force at each radius, from one pass over the archive."""
    widest = _brute_force(shas, hashes, query, max(radii))
    return {r: [(sha, d) for sha, d in widest if d <= r] for r in radii}


def _flip(rng: np.random.Generator, value: int, bits: int) -> int:
    for bit in rng.choice(64, size=bits, replace=False):
        value ^= 1 << int(bit)
    return value


def _random_archive(seed: int, size: int) -> tuple[list[str], np.ndarray]:
    """Uniform hashes plus tight clusters (near-duplicates) and repeated SHAs and hashes."""
    rng = np.random.default_rng(seed)
    hashes = [int(h) for h in rng.integers(0, 2**64, size=size, dtype=np.uint64)]
    centres = hashes[:20]
    hashes += [_flip(rng, centres[i % 20], int(rng.integers(0, 9))) for i in range(size // 4)]
    hashes += [hashes[int(i)] for i in rng.integers(0, len(hashes), size=50)]  # equal hashes
    shas = [f"{i:064x}" for i in range(len(hashes))]
    shas += [shas[int(i)] for i in rng.integers(0, len(shas), size=30)]  # repeated SHAs
    hashes += [int(h) for h in rng.integers(0, 2**64, size=30, dtype=np.uint64)]
    return shas, np.array(hashes, dtype=np.uint64)


def _queries(seed: int, hashes: np.ndarray, count: int) -> list[int]:
    rng = np.random.default_rng(seed)
    near = [
        _flip(rng, int(hashes[int(i)]), int(rng.integers(0, 14)))
        for i in rng.integers(0, len(hashes), size=count)
    ]
    return near + [int(h) for h in rng.integers(0, 2**64, size=count // 4, dtype=np.uint64)]


def test_image_index_is_the_multi_index():
    assert ImageIndex is MultiIndexHash


@pytest.mark.parametrize("radius", range(0, 21))
def test_chunk_radii_cover_every_split_of_the_distance(radius: int):
    radii = chunk_radii(radius)
    assert len(radii) == CHUNKS
    # Pigeonhole: any way to spread `radius` differing bits over the chunks leaves at least
    # one chunk within its probe radius (checked exhaustively for 4 chunks).
    for a in range(radius + 1):
        for b in range(radius + 1 - a):
            for c in range(radius + 1 - a - b):
                d = radius - a - b - c
                assert any(x <= r for x, r in zip((a, b, c, d), radii, strict=True))


@pytest.mark.parametrize("seed", [1, 2])
def test_bulk_loaded_index_equals_brute_force_at_many_radii(seed: int):
    shas, hashes = _random_archive(seed, 20_000)
    index = MultiIndexHash()
    index.add_many(shas, hashes)
    assert len(index) == len(set(shas))
    total = 0
    radii = (0, 1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 15, 16, 20)
    for query in _queries(seed, hashes, 60):
        for radius, expected in _brute_force_radii(shas, hashes, query, radii).items():
            assert index.near(query, radius) == expected, (hex(query), radius)
            total += len(expected)
    assert total > 2_000  # real matches were compared, not only empty answers


def test_one_by_one_adds_with_rebuilds_equal_brute_force():
    shas, hashes = _random_archive(3, 3_000)
    index = MultiIndexHash(tail_limit=500)  # tables rebuilt several times while adding
    rebuilt_at = []
    for sha, value in zip(shas, hashes, strict=True):
        before = index._indexed
        index.add(sha, int(value))
        if index._indexed != before:
            rebuilt_at.append(len(index))
    assert len(rebuilt_at) >= 3
    assert 0 < len(index) - index._indexed < 500  # a tail is left, searched by scanning
    for query in _queries(3, hashes, 40):
        for radius, expected in _brute_force_radii(shas, hashes, query, (0, 3, 6, 10, 12)).items():
            assert index.near(query, radius) == expected


def test_add_many_onto_a_loaded_index_skips_known_shas_and_keeps_order():
    index = MultiIndexHash([("a" * 64, 5), ("b" * 64, 7)])
    index.add_many(["b" * 64, "c" * 64, "c" * 64, "d" * 64], np.array([1, 5, 9, 5], np.uint64))
    assert len(index) == 4
    # "b" keeps its first hash (7), the second "c" is dropped, ties go by insertion order.
    assert index.near(5, 0) == [("a" * 64, 0), ("c" * 64, 0), ("d" * 64, 0)]
    assert index.near(7, 0) == [("b" * 64, 0)]
    with pytest.raises(ValueError, match="same length"):
        index.add_many(["e" * 64], np.array([1, 2], np.uint64))
    with pytest.raises(ValueError, match="SHA-256"):
        index.add("x" * 65, 1)


def test_duplicate_check_survives_fingerprint_collisions(monkeypatch):
    # Force every fingerprint equal: distinct SHAs must still all be indexed, repeats not.
    monkeypatch.setattr(
        image_index, "_fingerprints", lambda shas: np.zeros(len(shas), dtype=np.uint64)
    )
    index = MultiIndexHash([(f"{i:064x}", i) for i in range(50)] + [(f"{3:064x}", 99)])
    index.add(f"{7:064x}", 1234)
    index.add_many([f"{60:064x}", f"{8:064x}"], np.array([60, 8000], np.uint64))
    assert len(index) == 51
    assert index.near(3, 0) == [(f"{3:064x}", 0)]
    assert index.near(99, 0) == []
    assert index.near(60, 0) == [(f"{60:064x}", 0)]


def test_dhash_veto_drops_only_hits_whose_dhash_disagrees():
    index = MultiIndexHash()
    index.add("same" + "0" * 60, 0b1, dhash=0)
    index.add("other" + "0" * 59, 0b11, dhash=2**64 - 1)  # dHash 64 bits away
    index.add("nodhash" + "0" * 57, 0b111)  # no dHash stored: never vetoed
    assert [s[:4] for s, _ in index.near(0, 5)] == ["same", "othe", "nodh"]
    confirmed = index.near(0, 5, dhash=0, max_dhash_distance=24)
    assert [s[:4] for s, _ in confirmed] == ["same", "nodh"]


def test_large_radius_falls_back_to_a_scan_with_the_same_answer():
    shas, hashes = _random_archive(4, 5_000)
    index = MultiIndexHash(zip(shas, (int(h) for h in hashes), strict=True))
    query = int(hashes[17])
    for radius in (24, 40, 64):
        assert index.near(query, radius) == _brute_force(shas, hashes, query, radius)
    assert len(index.near(query, 64)) == len(index)


def test_memory_per_hash_stays_small():
    rng = np.random.default_rng(5)
    size = 200_000
    index = MultiIndexHash()
    index.add_many(
        np.array([f"{i:064x}".encode() for i in range(size)], dtype="S64"),
        rng.integers(0, 2**64, size=size, dtype=np.uint64),
    )
    # 8 pHash + 8 dHash + 1 flag + 4x4 bucket ids + 12 fingerprint + 64 SHA, with slack.
    assert index.nbytes() / size < 130
