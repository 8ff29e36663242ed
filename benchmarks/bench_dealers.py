"""Dealers: how long grouping the whole archive into dealers takes, against the naive way.

The archive is synthetic: ``--targets`` accounts with ``--posts`` posts each; every post
gives its account's own phone, one post in five a shared handle of its dealer (dealers of
2-4 accounts), one in ten a stock photo that a fifth of all accounts use, one in twenty a
photo reposted from another account of its dealer. Timed:

* watcher: ``store.dealers.dealers`` end to end (reading contacts and photo events from
  SQLite, tying, grouping, naming), and the pure part alone (``build_ties`` + ``group``);
* naive: for every pair of accounts, intersect their sets of keys and join when they share
  any non-common key (union-find), the way one would write it first: O(accounts²).

A capture calls ``dealers`` only at a target's first capture or when a group brings a new
author (see steps/dealers.py); ordinary captures read nothing.

Run: .venv/bin/python benchmarks/bench_dealers.py [--targets 100 --posts 200]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from watcher.detect.dealers import Observation, build_ties, group
from watcher.store.db import Store
from watcher.store.dealers import dealers, observations

NOW = "2026-11-01T10:00:00Z"


def fill(store: Store, targets: int, posts: int, seed: int = 22) -> int:
    """Contacts rows and photo events as captures write them; returns the rows written."""
    rng = random.Random(seed)
    names = [f"shop{i:04d}" for i in range(targets)]
    dealer_of = {}
    i = 0
    while i < targets:
        size = rng.randint(2, 4)
        for name in names[i : i + size]:
            dealer_of[name] = i
        i += size
    members = defaultdict(list)
    for name in names:
        members[dealer_of[name]].append(name)
    contacts, events = [], []
    stock = "f" * 64
    for n, name in enumerate(names):
        for p in range(posts):
            post = f"{name}/{p}"
            contacts.append(("phone", f"+8551{n:07d}", name, post, f"0{n:08d}"))
            if p % 5 == 0:
                contacts.append(("telegram", f"dealer{dealer_of[name]}", name, post, "tg"))
            if p % 10 == 0 and n % 5 == 0:
                events.append((name, post, stock, names[0]))
            if p % 20 == 0:
                mates = [m for m in members[dealer_of[name]] if m != name]
                if mates:
                    sha = f"{dealer_of[name]:032x}{p:032x}"
                    events.append((name, post, sha, rng.choice(mates)))
    with store.transaction():
        store.db.conn.executemany(
            "INSERT INTO contacts (kind, value, target, post_id, version_id, capture_id, raw,"
            " seen_at) VALUES (?,?,?,?,0,0,?,?)",
            [(*c, NOW) for c in contacts],
        )
        store.db.conn.executemany(
            "INSERT INTO events (kind, target, post_id, capture_id, details, created_at) "
            "VALUES ('image_seen_before', ?, ?, 0, ?, ?)",
            [
                (
                    t,
                    p,
                    json.dumps(
                        {
                            "image_sha256": sha,
                            "first_seen": {
                                "target": first,
                                "post_id": "x",
                                "image_sha256": sha,
                                "seen_at": NOW,
                            },
                        }
                    ),
                    NOW,
                )
                for t, p, sha, first in events
            ],
        )
    return len(contacts) + len(events)


def naive(seen: list[Observation], common_after: int = 3) -> int:
    """Pairwise key-set intersection, then union-find; returns the number of groups."""
    keys: dict[str, set[tuple[str, str]]] = defaultdict(set)
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in seen:
        keys[s.account].add((s.kind, s.key))
        holders[(s.kind, s.key)].add(s.account)
    common = {k for k, h in holders.items() if len(h) > common_after}
    accounts = sorted(keys)
    parent = {a: a for a in accounts}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, a in enumerate(accounts):
        for b in accounts[i + 1 :]:
            if (keys[a] & keys[b]) - common:
                parent[find(a)] = find(b)
    members = defaultdict(list)
    for a in accounts:
        members[find(a)].append(a)
    return sum(len(m) > 1 for m in members.values())


def timed(work, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "watcher.db")
        rows = fill(store, args.targets, args.posts)
        whole, found = timed(lambda: dealers(store))
        read, seen = timed(lambda: observations(store))
        pure, groups = timed(lambda: group(build_ties(seen)))
        slow, count = timed(lambda: naive(seen))
        store.close()
    print(f"{args.targets} accounts x {args.posts} posts: {rows} rows, {len(seen)} observations")
    print(f"  watcher dealers() end to end: {whole * 1000:.0f} ms, {len(found)} dealers")
    print(f"    of which reading SQLite: {read * 1000:.0f} ms; ties + groups: {pure * 1000:.0f} ms")
    print(f"  naive pairwise intersection: {slow * 1000:.0f} ms, {count} groups")
    print(f"  speed-up of ties + groups over naive: {slow / pure:.1f}x")
    assert len(groups) == count, "the naive way and watcher disagree on the groups"


if __name__ == "__main__":
    main()
