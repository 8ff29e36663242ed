"""Post search over every stored version (store/search.py), on a real SQLite file."""

from __future__ import annotations

from watcher.models import CapturedPost, Post
from watcher.store.db import CaptureRow, Store
from watcher.store.search import search_posts
from watcher.timeutil import utc_now


def fill(store: Store, texts: list[str]) -> None:
    now = utc_now()
    store.upsert_target("dealer", "telegram", "https://t.me/s/dealer", now)
    with store.transaction():
        capture_id = store.insert_capture(
            CaptureRow("dealer", "ok", now, now, "https://t.me/s/dealer", post_count=len(texts))
        )
        for n, text in enumerate(texts):
            post = Post(f"dealer/{n}", text, f"https://t.me/dealer/{n}")
            store.insert_post("dealer", CapturedPost(post, ()), capture_id, n, now)


def test_search_counts_every_match_but_returns_only_the_newest_few(tmp_path):
    store = Store(tmp_path / "watcher.db")
    fill(store, [f"carving number {n}" for n in range(30)] + ["teak bangle"])

    hits, total = search_posts(store, "carving", limit=5)

    assert total == 30
    assert [h.post_id for h in hits] == [f"dealer/{n}" for n in (29, 28, 27, 26, 25)]
    assert search_posts(store, "bangle")[1] == 1
    assert search_posts(store, "zzznomatch") == ([], 0)
    store.close()
