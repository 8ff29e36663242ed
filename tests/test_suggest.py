"""``watcher probe URL --suggest``: a recipe for an unknown listing page, measured on real
pages, and written into the watchlist with its comments kept."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from urllib.parse import urljoin

from watcher.capture.adapters import adapter_for
from watcher.capture.suggest import suggest_recipe
from watcher.commands.probe import ProbeSettings, _cmd_suggest
from watcher.watchlist import load_watchlist

REAL = Path(__file__).parent / "fixtures" / "real"
# Listing pages: the regional marketplaces' cards and Facebook Marketplace's search page.
LISTINGS = sorted((REAL / "generic").glob("*.html")) + sorted(
    (REAL / "facebook").glob("marketplace_*.html")
)
# Feeds of the platforms: not listings, but a person could point --suggest at them too.
FEEDS = sorted(
    p
    for d in ("telegram", "facebook", "vk")
    for p in (REAL / d).glob("*.html")
    if not p.stem.startswith("marketplace_")
)


def suggestion_misses(html_path: Path) -> list[str]:
    """How the suggested recipe's reading differs from the page's hand-written expectation."""
    spec = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    html = html_path.read_text(encoding="utf-8")
    suggestion = suggest_recipe(html)
    if suggestion is None:
        return [] if spec["count"] == 0 else ["no suggestion"]
    posts = adapter_for("generic", suggestion.selectors).extract(html, spec["base_url"])
    misses = []
    if len(posts) != spec["count"]:
        misses.append(f"{len(posts)} items, expected {spec['count']}")
    wanted = spec.get("items") or [spec["posts"][i] for i in spec.get("ids", [])]
    for post, want in zip(posts, wanted, strict=False):
        if "link" in want and post.permalink != urljoin(spec["base_url"], want["link"]):
            misses.append(f"link {post.permalink} != {want['link']}")
        if "text_starts" in want and not post.text.startswith(want["text_starts"]):
            misses.append(f"text {post.text[:50]!r} does not start {want['text_starts']!r}")
        if "photos" in want and len(post.image_urls) != want["photos"]:
            misses.append(f"{len(post.image_urls)} photos, expected {want['photos']}")
    return misses


def hit_rate(pages: list[Path]) -> tuple[int, int]:
    return sum(not suggestion_misses(p) for p in pages), len(pages)


def test_suggest_reads_the_real_listing_pages_without_a_hand_edit():
    hits, total = hit_rate(LISTINGS)
    assert total == 7
    misses = {p.stem: suggestion_misses(p) for p in LISTINGS if suggestion_misses(p)}
    assert hits == total, misses


def test_suggest_on_feeds_is_measured_not_trusted():
    # Feeds have their own adapters; the figure is reported, and an empty page is no feed.
    hits, total = hit_rate(FEEDS)
    assert total == len(FEEDS) >= 13 and hits >= 1  # the unrendered page: no suggestion, rightly


def test_suggest_signs_cards_by_class_not_by_the_role_every_link_has():
    # Facebook marks every <a> role="link": the cards are told apart by their classes.
    html = (REAL / "facebook" / "marketplace_2025_search.html").read_text(encoding="utf-8")
    suggestion = suggest_recipe(html)
    assert suggestion is not None and suggestion.items == 21
    assert "role" not in suggestion.selectors["post"]


def test_suggest_prefers_cards_over_bare_links_and_skips_linkless_cards():
    html = (REAL / "generic" / "olx_2026.html").read_text(encoding="utf-8")
    suggestion = suggest_recipe(html)
    assert suggestion is not None
    assert suggestion.selectors["post"] == 'div[data-cy="l-card"]:has(a[href])'
    assert suggestion.selectors["text"] == ":scope"


def test_suggest_leaves_out_icons_and_repeated_avatars():
    html = (REAL / "generic" / "krisha_kz_2024.html").read_text(encoding="utf-8")
    suggestion = suggest_recipe(html)
    assert suggestion is not None and suggestion.selectors["images"] == "picture > img@src"
    assert suggest_recipe("<html><body><p>nothing repeats here</p></body></html>") is None


WATCHLIST = """\
# the desk's watchlist: keep this comment
operator: "FA desk"
targets:
  - name: dealer   # a Telegram dealer
    platform: telegram
    url: https://t.me/s/somechannel
"""


def test_probe_suggest_write_adds_a_working_target_keeping_comments(site, tmp_path, capsys):
    page = (REAL / "generic" / "krisha_kz_2024.html").read_text(encoding="utf-8")
    site.route("/arenda/almaty", f"<html><body>{page}</body></html>")
    url = f"{site.base_url}/arenda/almaty"
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    args = argparse.Namespace(
        watchlist=str(watchlist), data=str(tmp_path / "data"), json=False, write="krisha-almaty"
    )
    settings = ProbeSettings(url, "generic", {}, allow_private_network=True)
    assert _cmd_suggest(args, settings) == 0
    shown = capsys.readouterr().out
    assert "suggested recipe" in shown and "2 post(s)" in shown
    text = watchlist.read_text(encoding="utf-8")
    assert "# the desk's watchlist: keep this comment" in text
    assert "# a Telegram dealer" in text
    target = load_watchlist(watchlist).target("krisha-almaty")
    assert target.platform == "generic" and target.url == url
    posts = target.adapter().extract(page, url)
    assert [p.permalink for p in posts] == [
        f"{site.base_url}/a/show/1014626088",
        f"{site.base_url}/a/show/789012",
    ]


def test_suggested_ids_survive_a_new_page_load_of_marketplace():
    # Each load of the search page tags every listing link with a new tracking id: the
    # listings' ids must not change with it, or every capture would see all of them as new.
    html = (REAL / "facebook" / "marketplace_2025_search.html").read_text(encoding="utf-8")
    reloaded = html.replace(
        "fbc35d9f-9d12-44f1-ba61-71b50dbe36fe", "00000000-1111-2222-3333-444444444444"
    )
    assert reloaded != html
    suggestion = suggest_recipe(html)
    assert suggestion is not None
    adapter = adapter_for("generic", suggestion.selectors)
    url = "https://www.facebook.com/marketplace/houston/search/?query=dji"
    ids = [p.post_id for p in adapter.extract(html, url)]
    assert ids[0] == "/marketplace/item/628088039705732/"
    assert ids == [p.post_id for p in adapter.extract(reloaded, url)]
