"""Platforms through the real browser: feeds, pagination to depth, "See more", details, probe.

Pages are served by the loopback fixture site; no real platform is ever contacted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from watcher.capture import page as page_module
from watcher.capture.adapters import adapter_for
from watcher.capture.page import PageRequest, capture_details, load_pages, next_link
from watcher.models import Post

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def fast_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Human pacing is for real platforms; the loopback site needs none."""
    monkeypatch.setattr(page_module, "PACE", (0.0, 0.05))
    monkeypatch.setattr(page_module, "GROWTH_WAIT_S", 1.0)


async def _load(browser, request: PageRequest, platform: str, selectors=None):
    adapter = adapter_for(platform, selectors)
    async with browser.context() as context:
        return await load_pages(context, request, adapter, "ua", "1")


# -- feed pages ------------------------------------------------------------------------------
def _article(n: int) -> str:
    return (
        f'<div role="article" style="height:420px"><h2><a href="https://www.facebook.com/d" '
        f'role="link"><strong>Dealer</strong></a></h2><a role="link" '
        f'href="https://www.facebook.com/d/posts/{n}" aria-label="March 1, 2024 at 8:00 AM">'
        f'1 Mar</a><div data-ad-preview="message"><div dir="auto">item {n}</div></div></div>'
    )


def _scroll_feed(batches: int | None) -> str:
    """A feed that adds 5 posts each time it is scrolled to the bottom, ``batches`` times
    (None: for ever)."""
    limit = "Infinity" if batches is None else str(batches)
    first = "".join(_article(n) for n in range(1, 6))
    return f"""<!DOCTYPE html><html><body><div role="feed" id="feed">{first}</div>
<script>
var next = 6, added = 0, limit = {limit};
function article(n) {{
  var d = document.createElement('div'); d.setAttribute('role', 'article');
  d.style.height = '420px';
  d.innerHTML = '<a href="https://www.facebook.com/d/posts/' + n + '">t</a>' +
    '<div data-ad-preview="message"><div dir="auto">item ' + n + '</div></div>';
  return d;
}}
window.addEventListener('scroll', function () {{
  var bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 50;
  if (!bottom || added >= limit) return;
  added += 1;
  for (var i = 0; i < 5; i++) document.getElementById('feed').appendChild(article(next++));
}});
</script></body></html>"""


async def test_facebook_feed_extracts_posts_through_the_browser(site, browser):
    site.route("/ivorycarvingsvn", (FIXTURES / "facebook" / "page_feed.html").read_bytes())
    snapshot, posts = await _load(
        browser, PageRequest(f"{site.base_url}/ivorycarvingsvn", timeout_s=10), "facebook"
    )
    assert [p.post_id for p in posts] == [
        "pfbid02Xk7nQ3vR1sT9uW5yZ8aB4cD6eF1gH2jK3mN4pQ5rS6tU7vW8xY9zl",
        "1234567890123",
        "987654321098765",
    ]
    assert len(posts[0].image_urls) == 2  # the album, not the comment's photo
    assert snapshot.screenshot and snapshot.screenshot.startswith(b"\x89PNG")


async def test_infinite_scroll_reads_to_the_configured_depth(site, browser):
    site.route("/feed", _scroll_feed(batches=None))
    request = PageRequest(f"{site.base_url}/feed", scroll=3, timeout_s=20)
    _, posts = await _load(browser, request, "facebook")
    assert [p.post_id for p in posts] == [str(n) for n in range(1, 21)]  # 5 + 3 scrolls x 5


async def test_facebook_pages_means_screens_when_scroll_is_not_set(site, browser):
    site.route("/feed", _scroll_feed(batches=None))
    _, posts = await _load(browser, PageRequest(f"{site.base_url}/feed", pages=3), "facebook")
    assert len(posts) == 15  # first screen + 2 scrolls


async def test_scroll_stops_when_the_feed_ends(site, browser):
    site.route("/feed", _scroll_feed(batches=2))
    started = time.monotonic()
    _, posts = await _load(browser, PageRequest(f"{site.base_url}/feed", scroll=40), "facebook")
    assert len(posts) == 15
    # Two scrolls that bring nothing end it, not 40 x the growth wait.
    assert time.monotonic() - started < 15


async def test_endless_scroll_is_bounded_by_the_post_cap(site, browser):
    site.route("/feed", _scroll_feed(batches=None))
    request = PageRequest(f"{site.base_url}/feed", scroll=50, timeout_s=30, max_posts=22)
    _, posts = await _load(browser, request, "facebook")
    assert len(posts) == 22
    assert posts[-1].post_id == "22"


async def test_endless_scroll_is_bounded_by_the_target_timeout(site, browser, monkeypatch):
    monkeypatch.setattr(page_module, "PACE", (0.4, 0.5))
    site.route("/feed", _scroll_feed(batches=None))
    started = time.monotonic()
    request = PageRequest(f"{site.base_url}/feed", scroll=50, timeout_s=2)
    _, posts = await _load(browser, request, "facebook")
    elapsed = time.monotonic() - started
    assert 5 < len(posts) < 5 + 50 * 5  # it scrolled, and it stopped well before 50 screens
    assert elapsed < 12


async def test_see_more_is_expanded_before_reading(site, browser):
    site.route("/ivorycarvingsvn", (FIXTURES / "facebook" / "see_more.html").read_bytes())
    _, posts = await _load(browser, PageRequest(f"{site.base_url}/ivorycarvingsvn"), "facebook")
    by_id = {p.post_id: p for p in posts}
    long = by_id["pfbid0SeeMoreLong1"].text
    assert long.endswith("Price 45 million, ship via Moc Bai border. Zalo 0912 000 111")
    assert "See more" not in long
    assert by_id["pfbid0ShortPost2"].text == "Short post, nothing to expand"


async def test_see_more_override_for_another_language(site, browser):
    html = (FIXTURES / "facebook" / "see_more.html").read_text(encoding="utf-8")
    site.route("/vn", html.replace(">See more<", ">Xem thêm<"))
    url = f"{site.base_url}/vn"
    _, default = await _load(browser, PageRequest(url), "facebook")
    assert "Zalo" not in default[0].text  # the English recipe finds no button
    override = {"see_more": '[role="article"] [role="button"]:text-is("Xem thêm")'}
    _, fixed = await _load(browser, PageRequest(url), "facebook", override)
    assert "Zalo 0912 000 111" in fixed[0].text


# -- generic pagination ----------------------------------------------------------------------
SHOP = {"post": ".listing", "id": "@data-id", "text": ".desc"}


def _listing(n: int) -> str:
    return f'<div class="listing" data-id="L{n}"><p class="desc">item {n}</p></div>'


def _numbered_page(page: int, last: int) -> str:
    items = "".join(_listing(page * 10 + i) for i in range(3))
    link = f'<a class="next" href="/shop?page={page + 1}">Older</a>' if page < last else ""
    return f"<html><body><main>{items}</main>{link}</body></html>"


async def test_next_page_link_followed_up_to_pages(site, browser):
    site.route("/shop", _numbered_page(1, last=5))
    for n in range(2, 6):
        site.route(f"/shop?page={n}", _numbered_page(n, last=5))
    request = PageRequest(f"{site.base_url}/shop", pages=3, next_page="a.next@href")
    snapshot, posts = await _load(browser, request, "generic", SHOP)
    assert [p.post_id for p in posts] == [f"L{n}" for n in (10, 11, 12, 20, 21, 22, 30, 31, 32)]
    assert len(snapshot.html_pages) == 3
    assert "/shop?page=4" not in site.requests


async def test_next_page_stops_at_the_last_page(site, browser):
    site.route("/shop", _numbered_page(1, last=2))
    site.route("/shop?page=2", _numbered_page(2, last=2))
    request = PageRequest(f"{site.base_url}/shop", pages=10, next_page="a.next")
    snapshot, posts = await _load(browser, request, "generic", SHOP)
    assert len(posts) == 6 and len(snapshot.html_pages) == 2


def test_next_link_reads_href_and_ignores_unsafe_links():
    html = '<a class="next" href="?page=2">n</a><a class="js" href="javascript:x()">j</a>'
    assert next_link(html, "a.next", "https://s.example/list") == "https://s.example/list?page=2"
    assert next_link(html, "a.js", "https://s.example/list") is None
    assert next_link(html, "a.missing", "https://s.example/list") is None


LOAD_MORE = """<!DOCTYPE html><html><body><main id="list">{first}</main>
<button id="more" onclick="more()">Load more</button>
<script>
var next = 4, clicks = 0;
function more() {{
  clicks += 1;
  setTimeout(function () {{
    for (var i = 0; i < 3; i++) {{
      var d = document.createElement('div'); d.className = 'listing';
      d.dataset.id = 'L' + next; d.innerHTML = '<p class="desc">item ' + (next++) + '</p>';
      document.getElementById('list').appendChild(d);
    }}
    if (clicks >= {clicks}) document.getElementById('more').remove();
  }}, 150);
}}
</script></body></html>"""


async def test_load_more_clicked_up_to_pages(site, browser):
    first = "".join(_listing(n) for n in range(1, 4))
    site.route("/list", LOAD_MORE.format(first=first, clicks=10))
    request = PageRequest(f"{site.base_url}/list", pages=3, load_more="#more")
    _, posts = await _load(browser, request, "generic", SHOP)
    assert [p.post_id for p in posts] == [f"L{n}" for n in range(1, 10)]  # 3 + 2 clicks x 3


async def test_load_more_stops_when_the_button_goes(site, browser):
    first = "".join(_listing(n) for n in range(1, 4))
    site.route("/list", LOAD_MORE.format(first=first, clicks=1))
    request = PageRequest(f"{site.base_url}/list", pages=8, load_more="#more")
    _, posts = await _load(browser, request, "generic", SHOP)
    assert len(posts) == 6


# -- telegram: stop at known posts -------------------------------------------------------------
def _channel(site, posts: int) -> str:
    site.channel("dealer")
    for n in range(posts):
        site.add_post("dealer", f"item {n + 1}")
    return f"{site.base_url}/s/dealer"


async def test_telegram_reads_back_without_known_ids(site, browser):
    url = _channel(site, 45)
    _, posts = await _load(browser, PageRequest(url, pages=5), "telegram")
    assert len(posts) == 45  # 20 + 20 + 5: three pages, then no older one
    assert posts[0].post_id == "dealer/1" and posts[-1].post_id == "dealer/45"


async def test_telegram_stops_paging_at_a_known_post(site, browser):
    url = _channel(site, 45)
    known = frozenset({"dealer/15", "dealer/16"})
    _, posts = await _load(browser, PageRequest(url, pages=5, known_ids=known), "telegram")
    assert posts[0].post_id == "dealer/6"  # the page holding 15, and no further
    assert len(posts) == 40
    assert "/s/dealer?before=26" in site.requests
    assert "/s/dealer?before=6" not in site.requests


async def test_telegram_no_paging_when_the_first_page_has_a_known_post(site, browser):
    url = _channel(site, 45)
    known = frozenset({"dealer/44"})
    _, posts = await _load(browser, PageRequest(url, pages=5, known_ids=known), "telegram")
    assert len(posts) == 20
    assert not any("before=" in r for r in site.requests)


async def test_telegram_album_and_video_through_the_browser(site, browser):
    site.route("/s/ivory_dealer_kh", (FIXTURES / "telegram" / "channel_basic.html").read_bytes())
    _, posts = await _load(browser, PageRequest(f"{site.base_url}/s/ivory_dealer_kh"), "telegram")
    by_id = {p.post_id: p for p in posts}
    assert len(by_id["ivory_dealer_kh/103"].image_urls) == 3
    assert by_id["ivory_dealer_kh/107"].video_urls == (
        "https://cdn4.telesco.pe/file/8a1f_video.mp4?token=abc",
    )


# -- details ---------------------------------------------------------------------------------
async def test_capture_details_opens_each_permalink(site, browser):
    site.route("/item/1", "<html><body><h1>Bangle</h1><p>4 photos</p></body></html>")
    site.route("/item/2", "<html><body><h1>Horn cup</h1></body></html>")
    base = site.base_url
    posts = [
        Post("1", permalink=f"{base}/item/1"),
        Post("nolink"),
        Post("gone", permalink=f"{base}/item/404"),
        Post("2", permalink=f"{base}/item/2"),
    ]
    async with browser.context() as context:
        details = await capture_details(context, posts, limit=10, timeout_s=10)
        limited = await capture_details(context, posts, limit=1, timeout_s=10)
    assert set(details) == {"1", "2"}  # no permalink: skipped; HTTP 404: logged, skipped
    html, shot = details["1"]
    assert "<h1>Bangle</h1>" in html
    assert shot is not None and shot.startswith(b"\x89PNG")
    assert set(limited) == {"1"}


# -- probe -----------------------------------------------------------------------------------
def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The fixture site is on loopback, which probe refuses unless told.
        [sys.executable, "-m", "watcher", "probe", *args, "--allow-private-network"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_probe_prints_posts_of_a_fixture_page(site):
    site.route("/s/ivory_dealer_kh", (FIXTURES / "telegram" / "channel_basic.html").read_bytes())
    result = _probe(f"{site.base_url}/s/ivory_dealer_kh", "--platform", "telegram")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "6 post(s)" in lines
    post = next(line for line in lines if line.startswith("- ivory_dealer_kh/103 "))
    assert "2024-03-01T08:02:59.000Z" in post and "3 image(s)" in post
    assert "Ivory & Horn Antiques KH" in post


def test_probe_json_with_selector_override_and_block(site):
    html = (FIXTURES / "telegram" / "channel_text_class_changed.html").read_bytes()
    site.route("/s/ivory_dealer_kh", html)
    url = f"{site.base_url}/s/ivory_dealer_kh"
    result = _probe(url, "--platform", "telegram", "--selector", "text=.new_text_class", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["post_count"] == 3 and data["block"] is None
    assert data["posts"][0]["text"] == "Pendant, old stock\nថ្លៃពិសេស"

    site.route("/wall", (FIXTURES / "vk" / "blocks" / "login_wall.html").read_bytes())
    blocked = _probe(f"{site.base_url}/wall", "--platform", "vk", "--json")
    assert blocked.returncode == 2
    assert json.loads(blocked.stdout)["block"]["reason"] == "login_wall"


def test_probe_rejects_an_unknown_selector_name(site):
    result = _probe("http://127.0.0.1:9/", "--platform", "generic", "--selector", "txt=.desc")
    assert result.returncode == 1
    assert "unknown name 'txt'" in result.stderr and "text" in result.stderr
