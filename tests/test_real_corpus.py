"""Golden tests on real markup: pages saved by other people, read by hand.

Every ``tests/fixtures/real/<platform>/<case>.html`` comes from a public repository (see
``tests/fixtures/real/SOURCES.md``); ``<case>.json`` beside it was written by reading the page,
not by running an adapter, so these tests can fail where the project's own goldens cannot.
A spec says::

    {"platform": ..., "base_url": ..., "selectors": null,
     "count": N, "ids": [...in page order...],
     "posts": {"<id>": {"text_starts": ..., "text_has": [...], "photos": n, "time": ISO,
                        "author": ...}},                      (time null: no time may be read)
     "events": [{"post_id": ..., "kind": "service", "text_starts": ...}],   (optional)
     "block": "<reason>"}                                                    (optional)

``generic/`` pages hold listing cards for ``probe --suggest`` (``items``: link, text_starts);
they are measured in tests/test_suggest.py.

``python -m tests.test_real_corpus`` prints how many pages each platform reads fully right.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcher.capture.adapters import adapter_for
from watcher.models import Post

REAL = Path(__file__).parent / "fixtures" / "real"
PLATFORMS = ("telegram", "facebook", "vk")
CASES = sorted(p for platform in PLATFORMS for p in (REAL / platform).glob("*.html"))
SERVICE_FIELDS = ("post_id", "kind", "text_starts")


def load(html_path: Path) -> tuple[dict, str]:
    spec = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    return spec, html_path.read_text(encoding="utf-8")


def mismatches(spec: dict, html: str) -> list[str]:
    """What the adapter reads differently from the hand-written expectation (empty: right)."""
    adapter = adapter_for(spec["platform"], spec.get("selectors"))
    posts = adapter.extract(html, spec["base_url"])
    problems: list[str] = []
    ids = [p.post_id for p in posts]
    if ids != spec["ids"]:
        problems.append(f"ids {ids} != {spec['ids']}")
    by_id = {p.post_id: p for p in posts}
    for post_id, want in spec["posts"].items():
        post = by_id.get(post_id)
        if post is None:
            continue  # already reported by the ids
        problems += [f"{post_id}: {p}" for p in _post_mismatches(post, want)]
    expected_block = spec.get("block")
    if expected_block is not None:
        block = adapter.detect_block(html, spec["base_url"], spec["base_url"], posts, "puppet")
        if block is None or block.reason != expected_block:
            problems.append(f"block {block and block.reason} != {expected_block}")
    events = spec.get("events")
    if events is not None:
        got = [e.to_json() for e in adapter.page_events(html, spec["base_url"])]
        for want in events:
            match = [g for g in got if g["post_id"] == want["post_id"]]
            if not match or not match[0]["text"].startswith(want.get("text_starts", "")):
                problems.append(f"event {want} not read (got {match or 'none'})")
    return problems


def _post_mismatches(post: Post, want: dict) -> list[str]:
    problems = []
    if "text_starts" in want and not post.text.startswith(want["text_starts"]):
        problems.append(f"text {post.text[:80]!r} does not start {want['text_starts']!r}")
    for part in want.get("text_has", ()):
        if part not in post.text:
            problems.append(f"text {post.text[:80]!r} lacks {part!r}")
    if "photos" in want and len(post.image_urls) != want["photos"]:
        problems.append(f"{len(post.image_urls)} photos, expected {want['photos']}")
    if "time" in want and post.posted_at != want["time"]:
        problems.append(f"time {post.posted_at} != {want['time']}")
    for name in ("author", "forwarded_from", "edited"):
        if name in want and getattr(post, name) != want[name]:
            problems.append(f"{name} {getattr(post, name)!r} != {want[name]!r}")
    return problems


def test_corpus_has_real_pages_per_platform():
    names = {p.parent.name for p in CASES}
    assert {"telegram", "facebook", "vk"} <= names
    for html in CASES:
        assert html.with_suffix(".json").exists(), f"{html} has no expectation beside it"


@pytest.mark.parametrize("html_path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_page_read_right(html_path: Path):
    spec, html = load(html_path)
    assert mismatches(spec, html) == []


def score() -> dict[str, tuple[int, int]]:
    """Per platform: (pages read fully right, pages)."""
    result: dict[str, tuple[int, int]] = {}
    for html_path in CASES:
        spec, html = load(html_path)
        try:
            right = not mismatches(spec, html)
        except Exception:  # an adapter that crashes on a real page reads it wrong
            right = False
        done, total = result.get(html_path.parent.name, (0, 0))
        result[html_path.parent.name] = (done + right, total + 1)
    return result


if __name__ == "__main__":
    for platform, (right, total) in score().items():
        print(f"{platform}: {right}/{total} pages read fully right")
    for html_path in CASES:
        spec, html = load(html_path)
        try:
            found = mismatches(spec, html)
        except Exception as exc:  # shown, not hidden: this is the report
            found = [f"crash: {exc!r}"]
        for line in found[:8]:
            print(f"  {html_path.parent.name}/{html_path.stem}: {line}")
