"""Near-duplicate lookups at 100k, 1M and 10M stored hashes: the multi-index (MultiIndexHash)
against a numpy popcount scan and, at 100k only, a scan of imagehash ImageHash objects.

Each query is a stored hash with 0-10 random bits flipped, searched at SAME_PHOTO_DISTANCE.
Hashes are uniform random (numpy, seeded): the case where chunks spread evenly over buckets;
real pHashes cluster more, which makes some buckets fuller. Every multi-index answer is
checked against the numpy scan.

Run: .venv/bin/python benchmarks/bench_image_index.py [--sizes 100000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import imagehash
import numpy as np

from watcher.detect.image_index import SAME_PHOTO_DISTANCE, MultiIndexHash

QUERIES = 300
OBJECT_QUERIES = 20  # the ImageHash scan takes ~1 s per query at 100k
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def random_shas(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random 64-character hex names as an S64 array (no Python string per name)."""
    nibbles = rng.integers(0, 16, size=(n, 64), dtype=np.uint8)
    return np.ascontiguousarray(HEX[nibbles]).view("S64").reshape(n)


def near_duplicates(rng: np.random.Generator, hashes: np.ndarray, count: int) -> list[int]:
    """Stored hashes with 0..SAME_PHOTO_DISTANCE random bits flipped."""
    out = []
    for value in hashes[rng.integers(0, len(hashes), size=count)]:
        flips = rng.choice(64, size=rng.integers(0, SAME_PHOTO_DISTANCE + 1), replace=False)
        out.append(int(value) ^ sum(1 << int(b) for b in flips))
    return out


def scan(hashes: np.ndarray, query: int, radius: int) -> np.ndarray:
    """The numpy baseline: XOR and popcount over every stored hash."""
    distances = np.bitwise_count(hashes ^ np.uint64(query))
    return np.flatnonzero(distances <= radius)


def timed(fn, queries: list[int]) -> tuple[list[float], list]:
    times, results = [], []
    for query in queries:
        start = time.perf_counter()
        results.append(fn(query))
        times.append((time.perf_counter() - start) * 1000)
    return times, results


def percentiles(times: list[float]) -> str:
    p50, p95 = np.percentile(times, [50, 95])
    return f"p50 {p50:8.3f} ms  p95 {p95:8.3f} ms"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=size, dtype=np.uint64)
    shas = random_shas(rng, size)
    start = time.perf_counter()
    index = MultiIndexHash()
    index.add_many(shas, hashes)
    load_s = time.perf_counter() - start
    queries = near_duplicates(rng, hashes, QUERIES)

    mih_times, mih_hits = timed(lambda q: index.near(q, SAME_PHOTO_DISTANCE), queries)
    scan_times, scan_hits = timed(lambda q: scan(hashes, q, SAME_PHOTO_DISTANCE), queries)
    for got, expected in zip(mih_hits, scan_hits, strict=True):
        assert sorted(s for s, _ in got) == sorted(shas[expected].astype(str).tolist())
    assert all(got for got in mih_hits), "every query is a near-duplicate of a stored hash"

    print(f"\n{size:>10,} hashes  (bulk load {load_s:.1f} s)")
    print(f"  multi-index       {percentiles(mih_times)}")
    print(f"  numpy scan        {percentiles(scan_times)}")
    if size <= 100_000:
        objects = [imagehash.ImageHash(_bits(int(h))) for h in hashes]
        obj_queries = [imagehash.ImageHash(_bits(q)) for q in queries[:OBJECT_QUERIES]]
        obj_times, _ = timed(
            lambda q: [i for i, h in enumerate(objects) if q - h <= SAME_PHOTO_DISTANCE],
            obj_queries,
        )
        p50 = float(np.percentile(obj_times, 50))
        print(f"  ImageHash scan    {percentiles(obj_times)}  ({OBJECT_QUERIES} queries)")
        print(
            f"    extrapolated (linear): ~{p50 * 10 / 1000:.0f} s at 1M, "
            f"~{p50 * 100 / 1000:.0f} s at 10M per query (not run)"
        )
        del objects
    table_bytes = index.nbytes()
    sha_bytes = table_bytes - index.nbytes(include_shas=False)
    print(
        f"  memory: {table_bytes / size:.1f} bytes per stored hash with its SHA-256 "
        f"({(table_bytes - sha_bytes) / size:.1f} without), growable-array slack included; "
        f"peak RSS so far {peak_rss_mib():,.0f} MiB"
    )


def _bits(value: int) -> np.ndarray:
    return np.array([(value >> (63 - i)) & 1 for i in range(64)], dtype=bool).reshape(8, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=20240301)
    args = parser.parse_args()
    print(f"radius {SAME_PHOTO_DISTANCE}, {QUERIES} near-duplicate queries per size")
    for size in args.sizes:
        bench(size, args.seed)


if __name__ == "__main__":
    main()
