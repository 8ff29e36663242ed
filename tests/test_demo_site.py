"""The demo / fixture site: its pages, its controls, and that our adapters read it right."""

from __future__ import annotations

import io
import itertools
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import imagehash
import pytest
from PIL import Image

from watcher.capture.adapters import adapter_for
from watcher.demo import images
from watcher.demo.scenario import CHANNEL, SHOP, DemoScenario, build_demo_site
from watcher.demo.site import DemoSite

SHOP_SELECTORS = {
    "post": ".listing",
    "id": "@data-id",
    "text": ".desc",
    "time": "time@datetime",
    "images": ".photos img@src",
    "link": "a.permalink@href",
    "author": ".seller",
}


@pytest.fixture
def demo() -> Iterator[DemoSite]:
    """A running site with an empty channel ``chan`` and an empty shop ``store``."""
    with DemoSite() as site:
        site.channel("chan", "Chan Title")
        site.shop("store", "Store Title")
        yield site


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET, without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def page(site: DemoSite, path: str) -> str:
    status, _, body = fetch(site.base_url + path)
    assert status == 200
    return body.decode("utf-8")


def channel_posts(site: DemoSite, query: str = "", name: str = "chan"):
    url = f"{site.base_url}/s/{name}{query}"
    return adapter_for("telegram").extract(page(site, f"/s/{name}{query}"), url)


def shop_posts(site: DemoSite, name: str = "store"):
    url = f"{site.base_url}/shop/{name}"
    return adapter_for("generic", SHOP_SELECTORS).extract(page(site, f"/shop/{name}"), url)


def phash(data: bytes | Image.Image) -> imagehash.ImageHash:
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return imagehash.phash(img)


# -- serving -------------------------------------------------------------------------------------
def test_pages_serve_html_with_no_store(demo: DemoSite) -> None:
    for path in ("/", "/s/chan", "/shop/store"):
        status, headers, body = fetch(demo.base_url + path)
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert headers["Cache-Control"] == "no-store"
        assert body.startswith(b"<!DOCTYPE html>")


def test_channel_page_has_telegram_structure(demo: DemoSite) -> None:
    demo.add_post("chan", "hello")
    html = page(demo, "/s/chan")
    assert "tgme_channel_info" in html
    assert '<section class="tgme_channel_history js-message_history">' in html
    assert 'data-post="chan/1"' in html
    assert "Chan Title" in html


@pytest.mark.parametrize(
    "path", ["/nope", "/s/missing", "/shop/missing", "/img/missing", "/shop/store/item/L9999"]
)
def test_unknown_paths_404(demo: DemoSite, path: str) -> None:
    assert fetch(demo.base_url + path)[0] == 404


def test_shop_is_not_a_channel(demo: DemoSite) -> None:
    assert fetch(demo.base_url + "/s/store")[0] == 404
    assert fetch(demo.base_url + "/shop/chan")[0] == 404


def test_busy_port_raises_clear_oserror(demo: DemoSite) -> None:
    with pytest.raises(OSError, match="already in use"):
        DemoSite(port=demo.port).start()


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DemoSite(host="0.0.0.0")


def test_stop_frees_the_port() -> None:
    site = DemoSite().start()
    port = site.port
    site.stop()
    site.stop()  # twice is fine
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_requests_are_recorded(demo: DemoSite) -> None:
    fetch(demo.base_url + "/s/chan?before=5")
    fetch(demo.base_url + "/img/x")
    assert demo.requests == ["/s/chan?before=5", "/img/x"]


# -- telegram channel ----------------------------------------------------------------------------
def test_telegram_adapter_reads_posts(demo: DemoSite) -> None:
    first = demo.put_image("one.jpg", images.variant(1))
    demo.add_photo("two.jpg", 2)
    demo.add_photo("three.png", 3, fmt="PNG")
    demo.add_post(
        "chan",
        "White gold bangle\nDM <only> & fast",
        images=["one.jpg"],
        posted_at="2026-11-23T00:30:40+00:00",
    )
    demo.add_post(
        "chan",
        "象牙 手镯 see https://example.org/a",
        images=["two.jpg", "three.png"],
        posted_at="2026-11-23T01:00:00Z",
        author="Dara",
    )
    demo.add_post("chan", "no photo", links=["https://example.net/x"])
    posts = channel_posts(demo)
    base = demo.base_url
    assert first == "/img/one.jpg"
    assert [p.post_id for p in posts] == ["chan/1", "chan/2", "chan/3"]
    assert posts[0].text == "White gold bangle\nDM <only> & fast"
    assert posts[0].image_urls == (f"{base}/img/one.jpg",)
    assert posts[0].posted_at == "2026-11-23T00:30:40.000Z"
    assert posts[0].permalink == f"{base}/chan/1"
    assert posts[0].author == "Chan Title"
    assert posts[1].text == "象牙 手镯 see https://example.org/a"
    assert posts[1].image_urls == (f"{base}/img/two.jpg", f"{base}/img/three.png")
    assert posts[1].links == ("https://example.org/a",)
    assert posts[1].posted_at == "2026-11-23T01:00:00.000Z"
    assert posts[2].image_urls == ()
    assert posts[2].links == ("https://example.net/x",)
    assert posts[2].posted_at is not None


def test_grouped_album_markup(demo: DemoSite) -> None:
    demo.add_post("chan", "album", images=["a", "b"])
    html = page(demo, "/s/chan")
    assert "tgme_widget_message_grouped_wrap js-message_grouped_wrap" in html
    assert html.count("tgme_widget_message_photo_wrap grouped_media_wrap") == 2


def test_add_edit_delete_are_reflected(demo: DemoSite) -> None:
    ids = [demo.add_post("chan", f"post {n}") for n in range(3)]
    assert ids == [1, 2, 3]
    demo.edit_post("chan", 2, text="post 1, now SOLD", images=["new"])
    demo.delete_post("chan", 1)
    posts = channel_posts(demo)
    assert [p.post_id for p in posts] == ["chan/2", "chan/3"]
    assert posts[0].text == "post 1, now SOLD"
    assert posts[0].image_urls == (f"{demo.base_url}/img/new",)
    html = page(demo, "/s/chan")
    assert html.count('<span class="tgme_widget_message_meta">edited </span>') == 1
    held = demo.posts("chan")
    assert [(p.id, p.edited) for p in held] == [(2, True), (3, False)]
    assert demo.add_post("chan", "after delete") == 4  # ids are never reused


def _jpeg(photo: Image.Image) -> bytes:
    out = io.BytesIO()
    photo.save(out, "JPEG")
    return out.getvalue()


def test_every_change_is_served_after_the_page_was_cached(demo: DemoSite) -> None:
    # The site keeps rendered pages; each kind of change must still show at once.
    demo.add_post("chan", "first")
    assert [p.text for p in channel_posts(demo)] == ["first"]
    first = demo.respond("/s/chan")
    assert demo.respond("/s/chan") is first  # unchanged: served as rendered
    demo.add_post("chan", "second")
    assert [p.text for p in channel_posts(demo)] == ["first", "second"]
    demo.edit_post("chan", 1, text="first, edited")
    assert channel_posts(demo)[0].text == "first, edited"
    gone = demo.posts("chan")[1]
    demo.delete_post("chan", 2)
    assert [p.post_id for p in channel_posts(demo)] == ["chan/1"]
    demo.show_post("chan", gone)
    assert [p.post_id for p in channel_posts(demo)] == ["chan/1", "chan/2"]
    demo.channel("chan", "New Title")
    assert "New Title" in page(demo, "/s/chan")
    demo.put_image("wide", _jpeg(images.make_photo(1, size=(800, 200))))
    demo.edit_post("chan", 1, images=["wide"])
    before = page(demo, "/s/chan")
    demo.put_image("wide", _jpeg(images.make_photo(1, size=(400, 400))))  # same key, new size
    assert page(demo, "/s/chan") != before


def test_edit_or_delete_missing_post_raises(demo: DemoSite) -> None:
    with pytest.raises(KeyError):
        demo.edit_post("chan", 99, text="x")
    with pytest.raises(KeyError):
        demo.delete_post("chan", 99)
    with pytest.raises(KeyError):
        demo.add_post("nobody", "x")


def test_newest_20_at_the_bottom_and_before_paging(demo: DemoSite) -> None:
    for n in range(1, 26):
        demo.add_post("chan", f"message {n}")
    latest = channel_posts(demo)
    assert [p.post_id for p in latest] == [f"chan/{n}" for n in range(6, 26)]
    older = channel_posts(demo, "?before=6")
    assert [p.post_id for p in older] == [f"chan/{n}" for n in range(1, 6)]
    middle = channel_posts(demo, "?before=22")
    assert [p.post_id for p in middle] == [f"chan/{n}" for n in range(2, 22)]
    assert channel_posts(demo, "?before=1") == []
    adapter = adapter_for("telegram")
    assert adapter.older_page_url(f"{demo.base_url}/s/chan", latest).endswith("?before=6")


# -- shop ------------------------------------------------------------------------------------
def test_generic_adapter_reads_the_shop(demo: DemoSite) -> None:
    demo.add_photo("s1", 11)
    demo.add_post(
        "store", "Lucky cat\nCeramic, 15 cm", images=["s1"], posted_at="2026-11-22T10:00:00Z"
    )
    demo.add_post("store", "Bangle", author="Mr. Tran", posted_at="2026-11-23T10:00:00Z")
    posts = shop_posts(demo)
    base = demo.base_url
    assert [p.post_id for p in posts] == ["L1002", "L1001"]  # newest first
    assert posts[1].text == "Lucky cat\nCeramic, 15 cm"
    assert posts[1].image_urls == (f"{base}/img/s1",)
    assert posts[1].permalink == f"{base}/shop/store/item/L1001"
    assert posts[1].author == "Store Title"
    assert posts[1].posted_at == "2026-11-22T10:00:00.000Z"
    assert posts[0].author == "Mr. Tran"


def test_shop_item_pages(demo: DemoSite) -> None:
    demo.add_post("store", "Jade pendant\nA-grade")
    html = page(demo, "/shop/store/item/L1001")
    assert 'data-id="L1001"' in html and "Jade pendant" in html
    demo.delete_post("store", 1)
    assert fetch(demo.base_url + "/shop/store/item/L1001")[0] == 404


# -- images and routes ---------------------------------------------------------------------------
def test_images_served_with_exact_bytes(demo: DemoSite) -> None:
    data = images.variant(5, quality=80)
    path = demo.put_image("folder/p.jpg", data)
    status, headers, body = fetch(demo.base_url + path)
    assert (status, headers["Content-Type"], body) == (200, "image/jpeg", data)
    png = demo.add_photo("p.png", 6, fmt="PNG")
    status, headers, body = fetch(demo.base_url + png)
    assert headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).format == "PNG"


def test_route_fixed_responses(demo: DemoSite) -> None:
    demo.route("/dead", "gone", status=410)
    demo.route("/login", b"<html>Log in to continue</html>", status=200)
    demo.route("/moved", status=302, headers={"Location": "/login"})
    demo.route("/data.json", '{"a": 1}', content_type="application/json")
    assert fetch(demo.base_url + "/dead")[::2] == (410, b"gone")
    assert fetch(demo.base_url + "/moved")[2] == b"<html>Log in to continue</html>"
    _, headers, body = fetch(demo.base_url + "/data.json")
    assert headers["Content-Type"] == "application/json" and body == b'{"a": 1}'
    assert "Cache-Control" not in headers


def test_route_overrides_a_channel_and_can_be_slow(demo: DemoSite) -> None:
    demo.route("/s/chan", "<html>Sign in</html>", status=403, delay=0.3)
    start = time.monotonic()
    status, headers, body = fetch(demo.base_url + "/s/chan")
    assert time.monotonic() - start >= 0.3
    assert (status, body) == (403, b"<html>Sign in</html>")
    assert headers["Cache-Control"] == "no-store"
    demo.unroute("/s/chan")
    assert fetch(demo.base_url + "/s/chan")[0] == 200


# -- photos --------------------------------------------------------------------------------------
def test_make_photo_is_deterministic() -> None:
    assert images.make_photo(3).tobytes() == images.make_photo(3).tobytes()
    assert images.make_photo(3).size == (640, 480)
    assert images.make_photo(3, (200, 100)).size == (200, 100)


def test_reposted_variant_is_perceptually_the_same_photo() -> None:
    for seed in range(10):
        repost = images.variant(seed, scale=0.6, quality=70, crop=0.03, watermark="x")
        assert phash(repost) - phash(images.make_photo(seed)) <= 10
        assert Image.open(io.BytesIO(repost)).size == (361, 271)


def test_different_seeds_are_far_apart() -> None:
    hashes = [phash(images.make_photo(seed)) for seed in range(7)]
    pairs = list(itertools.combinations(hashes, 2))[:20]
    assert len(pairs) == 20
    assert all(a - b > 20 for a, b in pairs)


def test_big_photo_bytes() -> None:
    data = images.big_photo_bytes(3_000_000)
    assert len(data) >= 3_000_000
    Image.open(io.BytesIO(data)).verify()


# -- the scripted demo ---------------------------------------------------------------------------
def test_build_demo_site_and_scenario() -> None:
    site = build_demo_site(port=0)
    try:
        posts = channel_posts(site, name=CHANNEL)
        assert len(posts) >= 5 and any(p.image_urls for p in posts)
        assert any("象牙" in p.text for p in posts)
        assert len(shop_posts(site, name=SHOP)) >= 4
        lines = [DemoScenario(site).step() for _ in range(1)]
        scenario = DemoScenario(site, seed=3)
        lines += [scenario.step() for _ in range(10)]
        assert all(isinstance(line, str) and "\n" not in line for line in lines)
        assert "reposts" in lines[3] and "deleted" in lines[4]
    finally:
        site.stop()


def test_scenario_repost_matches_channel_photo() -> None:
    site = build_demo_site(port=0)
    with site:
        scenario = DemoScenario(site)
        descriptions = [scenario.step() for _ in range(5)]
        assert descriptions[0].startswith("new post")
        assert descriptions[1].startswith("edited")
        assert descriptions[2].startswith("new listing") and "reposts" in descriptions[2]
        assert descriptions[3].startswith("deleted")
        channel_photo = site.posts(CHANNEL)[-1].images[0]
        listings = site.posts(SHOP)
        repost, unrelated = listings[-2].images[0], listings[-1].images[0]
        get = lambda key: fetch(f"{site.base_url}/img/{key}")[2]  # noqa: E731
        assert phash(get(channel_photo)) - phash(get(repost)) <= 10
        assert phash(get(channel_photo)) - phash(get(unrelated)) > 20


def test_scenario_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        with DemoSite() as site:
            scenario = DemoScenario(site, seed=11)
            runs.append(([scenario.step() for _ in range(12)], site.posts(CHANNEL)))
    assert runs[0] == runs[1]


def test_the_shipped_watchlist_is_all_demo_targets_on_the_demo_port():
    # `make demo`, `watcher demo --site-only` + `watcher check` rely on the repo's
    # watchlist.yaml pointing at the demo site's pages on its default port.
    from pathlib import Path

    from watcher.demo.runner import split_targets
    from watcher.demo.scenario import DEMO_PORT
    from watcher.watchlist import load_watchlist

    shipped = load_watchlist(Path(__file__).resolve().parents[1] / "watchlist.yaml")
    demo = split_targets(shipped, DEMO_PORT)
    assert [t.name for t in demo.watched] == [t.name for t in shipped.targets]
    assert [t.url for t in demo.watched] == [t.url for t in shipped.targets]
    assert not demo.skipped and not demo.moved_from


@pytest.mark.parametrize(
    "url",
    [
        "https://t.me/s/ivory_dealer_kh",  # the real channel of the same name
        "http://127.0.0.1:8765/s/someone_else",  # not a page the demo serves
        "http://192.168.1.5:8765/s/ivory_dealer_kh",  # not this machine
        "https://127.0.0.1:8765/s/ivory_dealer_kh",  # the demo site speaks http only
    ],
)
def test_only_demo_pages_on_this_machine_are_demo_targets(url):
    from watcher.demo.runner import demo_url

    assert demo_url(url, 8765) is None
    assert demo_url("http://localhost:8765/s/ivory_dealer_kh/", 8799) == (
        "http://127.0.0.1:8799/s/ivory_dealer_kh/"
    )
