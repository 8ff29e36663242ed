"""Golden extraction tests: saved pages in, expected posts out.

Every ``tests/fixtures/<platform>/<case>.html`` is extracted with
``adapter_for(<platform>, selectors)`` and compared with ``<case>.json`` beside it::

    {"base_url": "https://t.me/s/chan", "selectors": null or {"post": ...}, "posts": [...]}

``posts`` holds ``[post.to_json(), ...]`` in page order.

Adding a case: save the page as ``<case>.html``, write ``<case>.json`` with ``base_url``,
``selectors`` and ``"posts": []``, then regenerate. Regenerating after a deliberate change to
extraction rewrites only the ``posts`` of every golden file::

    WATCHER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_extract.py

Review the diff of the JSON files before keeping it: the goldens are the specification.
The per-case tests further down pin the properties that matter, so a careless regeneration
cannot silently bless a regression.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from watcher.capture.adapters import adapter_for
from watcher.capture.adapters.telegram import TelegramAdapter, message_number
from watcher.models import Post

FIXTURES = Path(__file__).parent / "fixtures"
PLATFORMS = ("telegram", "generic", "facebook", "vk")
UPDATE = os.environ.get("WATCHER_UPDATE_GOLDEN") == "1"

CASES = sorted(path for platform in PLATFORMS for path in (FIXTURES / platform).glob("*.html"))


def _load(platform: str, case: str) -> tuple[dict, list[Post]]:
    html_path = FIXTURES / platform / f"{case}.html"
    spec = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    adapter = adapter_for(platform, spec["selectors"])
    return spec, adapter.extract(html_path.read_text(encoding="utf-8"), spec["base_url"])


def _posts(platform: str, case: str) -> list[Post]:
    return _load(platform, case)[1]


def _by_id(posts: list[Post]) -> dict[str, Post]:
    return {p.post_id: p for p in posts}


def test_fixture_set_is_complete():
    names = {f"{p.parent.name}/{p.stem}" for p in CASES}
    assert {
        "telegram/channel_basic",
        "telegram/channel_older_page",
        "telegram/channel_empty",
        "telegram/channel_hostile",
        "telegram/channel_text_class_changed",
        "generic/shop_listing",
        "generic/forum_threads",
    } <= names


@pytest.mark.parametrize("html_path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(html_path: Path):
    json_path = html_path.with_suffix(".json")
    if not json_path.exists():
        pytest.fail(
            f"{json_path} is missing: create it with base_url, selectors and "
            '"posts": [] and rerun with WATCHER_UPDATE_GOLDEN=1'
        )
    spec, posts = _load(html_path.parent.name, html_path.stem)
    actual = [p.to_json() for p in posts]
    if UPDATE:
        spec["posts"] = actual
        json_path.write_text(
            json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    assert actual == spec["posts"]
    # The golden form round-trips through Post.from_json.
    assert [Post.from_json(p) for p in spec["posts"]] == posts


# -- telegram: channel_basic ---------------------------------------------------------------


def test_basic_ids_in_page_order_service_message_skipped():
    posts = _posts("telegram", "channel_basic")
    assert [p.post_id for p in posts] == [
        "ivory_dealer_kh/101",
        "ivory_dealer_kh/102",
        "ivory_dealer_kh/103",
        "ivory_dealer_kh/106",
        "ivory_dealer_kh/107",
        "ivory_dealer_kh/108",
    ]
    assert all("Channel photo updated" not in p.text for p in posts)


def test_basic_text_keeps_line_breaks_emoji_and_scripts():
    posts = _by_id(_posts("telegram", "channel_basic"))
    khmer = posts["ivory_dealer_kh/101"].text
    assert khmer.splitlines()[0] == "ទំនិញថ្មី 🐘"
    assert khmer.splitlines()[1] == "ភ្លុកដំរីពិតប្រាកដ ១០០%"  # runs of spaces folded
    assert "\n\n" in khmer  # <br/><br/> is a blank line
    assert "F09F9098" not in khmer  # the emoji image URL is not text
    assert posts["ivory_dealer_kh/102"].text.startswith("Sừng tê giác chạm khắc, hàng hiếm 🔥\n")
    assert (
        posts["ivory_dealer_kh/103"].text
        == "象牙手镯 三只一套 🐘\n包邮 · 可视频验货\n微信: ivory_kh88"
    )
    assert posts["ivory_dealer_kh/107"].text == "Video: unboxing the shipment"
    assert posts["ivory_dealer_kh/108"].text == ""  # photo without caption


def test_basic_images_single_album_and_non_photos():
    posts = _by_id(_posts("telegram", "channel_basic"))
    assert posts["ivory_dealer_kh/101"].image_urls == ()
    assert posts["ivory_dealer_kh/102"].image_urls == (
        "https://cdn4.telesco.pe/file/bN7vQ1rT5k_horn_carving_front.jpg",
    )
    assert posts["ivory_dealer_kh/103"].image_urls == (
        "https://cdn4.telesco.pe/file/Qm1_bangle_a.jpg",
        "https://cdn4.telesco.pe/file/Qm2_bangle_b.jpg",
        "https://cdn4.telesco.pe/file/Qm3_bangle_c.jpg",  # url(&quot;...&quot;) form
    )
    # A link preview thumbnail is not a post photo, nor are avatars; a video's still is
    # (a reposted video still is as telling as a reposted photo).
    assert posts["ivory_dealer_kh/106"].image_urls == ()
    assert posts["ivory_dealer_kh/107"].image_urls == (
        "https://cdn4.telesco.pe/file/vt4_video_thumb.jpg",
    )
    everything = [u for p in posts.values() for u in p.image_urls]
    assert not any("avatar" in u or "lp9_" in u or "emoji" in u for u in everything)


def test_basic_times_permalinks_authors_links():
    posts = _by_id(_posts("telegram", "channel_basic"))
    assert posts["ivory_dealer_kh/101"].posted_at == "2024-03-01T08:15:02.000Z"
    assert posts["ivory_dealer_kh/103"].posted_at == "2024-03-01T08:02:59.000Z"  # +07:00
    assert posts["ivory_dealer_kh/103"].permalink == "https://t.me/ivory_dealer_kh/103"
    assert {p.author for p in posts.values()} == {"Ivory & Horn Antiques KH"}
    assert posts["ivory_dealer_kh/101"].links == ("https://t.me/ivory_dealer_kh_admin",)
    assert posts["ivory_dealer_kh/102"].links == (
        "https://shop.example.vn/p/sung-te?ref=tg",
        "https://t.me/s/ivory_dealer_kh?q=%23s%E1%BB%ABngt%C3%AA",  # hashtag, made absolute
        "https://t.me/s/ivory_dealer_kh?q=%23antique",
    )
    # The link preview card and the forwarded-from header are outside the text.
    assert posts["ivory_dealer_kh/106"].links == ("https://catalogue.example.com/2024/march",)
    assert "Forwarded from" not in posts["ivory_dealer_kh/106"].text
    assert "March 2024 stock" not in posts["ivory_dealer_kh/106"].text


# -- telegram: older page, empty, hostile, selector override -------------------------------------


def test_older_page_extracts_and_normalises_negative_offset():
    posts = _by_id(_posts("telegram", "channel_older_page"))
    assert list(posts) == ["ivory_dealer_kh/98", "ivory_dealer_kh/99", "ivory_dealer_kh/100"]
    assert posts["ivory_dealer_kh/99"].posted_at == "2024-02-28T07:00:00.000Z"  # -05:00
    assert posts["ivory_dealer_kh/98"].text == "Pendant, old stock\nថ្លៃពិសេស"


def test_empty_channel_has_no_posts():
    assert _posts("telegram", "channel_empty") == []


def test_hostile_unsafe_image_urls_are_dropped():
    post = _by_id(_posts("telegram", "channel_hostile"))["h0stile_shop/1"]
    assert post.image_urls == (
        "https://cdn4.telesco.pe/file/ok1_real_photo.jpg",  # once, though listed twice
        "https://cdn4.telesco.pe/file/ok2_protocol_relative.jpg",
    )
    assert post.links == ("https://safe.example.org/x",)


def test_hostile_invisible_and_bidi_characters_preserved():
    post = _by_id(_posts("telegram", "channel_hostile"))["h0stile_shop/1"]
    lines = post.text.split("\n")
    assert lines[0] == "Price \u202e0051$\u202c only"
    assert lines[1] == (
        "i\u200bv\u200bo\u200br\u200by and rhi\u200cno\u200d horn \u202egpj.exe\u202c"
    )
    assert lines[2].startswith("\u200e\ufeffhidden marks")


def test_hostile_ids_skipped_deduplicated_and_trimmed():
    posts = _posts("telegram", "channel_hostile")
    assert [p.post_id for p in posts] == ["h0stile_shop/1", "h0stile_shop/2", "h0stile_shop/3"]
    second = posts[1]
    assert second.text == "first copy of post 2"  # the first copy wins
    assert second.posted_at is None  # "not-a-time"
    assert second.permalink is None  # javascript: permalink
    assert posts[2].posted_at == "2024-03-05T10:00:00.000Z"


def test_hostile_time_at_calendar_edge_does_not_abort_extraction():
    html = (FIXTURES / "telegram" / "channel_older_page.html").read_text(encoding="utf-8")
    html = html.replace("2024-02-27T22:10:00+00:00", "0001-01-01T00:00:00+05:00")
    posts = adapter_for("telegram").extract(html, "https://t.me/s/ivory_dealer_kh")
    assert len(posts) == 3
    assert posts[0].posted_at is None


def test_selector_override_repairs_renamed_text_class():
    html = (FIXTURES / "telegram" / "channel_text_class_changed.html").read_text(encoding="utf-8")
    base = "https://t.me/s/ivory_dealer_kh?before=101"
    broken = adapter_for("telegram").extract(html, base)
    assert [p.post_id for p in broken] == [
        "ivory_dealer_kh/98",
        "ivory_dealer_kh/99",
        "ivory_dealer_kh/100",
    ]
    assert all(p.text == "" for p in broken)  # default recipe no longer finds the text

    fixed = adapter_for("telegram", {"text": ".new_text_class"}).extract(html, base)
    original = _posts("telegram", "channel_older_page")
    assert [p.text for p in fixed] == [p.text for p in original]
    assert fixed[0].text == "Pendant, old stock\nថ្លៃពិសេស"
    # Only text was overridden: everything else still comes from the default recipe.
    assert [p.image_urls for p in fixed] == [p.image_urls for p in original]
    assert [p.posted_at for p in fixed] == [p.posted_at for p in original]


def test_signature_preferred_over_channel_name():
    html = (FIXTURES / "telegram" / "channel_older_page.html").read_text(encoding="utf-8")
    html = html.replace(
        '<span class="tgme_widget_message_views">1.5K</span>',
        '<span class="tgme_widget_message_from_author" dir="auto">Mr. Sok</span>&nbsp;'
        '<span class="tgme_widget_message_views">1.5K</span>',
    )
    posts = _by_id(adapter_for("telegram").extract(html, "https://t.me/s/ivory_dealer_kh"))
    assert posts["ivory_dealer_kh/99"].author == "Ivory & Horn Antiques KH"
    assert posts["ivory_dealer_kh/100"].author == "Mr. Sok"


# -- telegram: paging ---------------------------------------------------------------------


def test_older_page_url_uses_smallest_message_number():
    adapter = adapter_for("telegram")
    assert isinstance(adapter, TelegramAdapter)
    posts = _posts("telegram", "channel_basic")
    assert adapter.older_page_url("https://t.me/s/ivory_dealer_kh", posts) == (
        "https://t.me/s/ivory_dealer_kh?before=101"
    )
    older = _posts("telegram", "channel_older_page")
    assert adapter.older_page_url("https://t.me/s/ivory_dealer_kh?before=101", older) == (
        "https://t.me/s/ivory_dealer_kh?before=98"
    )


def test_older_page_url_keeps_other_query_parameters():
    adapter = adapter_for("telegram")
    posts = [Post("chan/57"), Post("chan/9"), Post("chan/1000")]
    url = adapter.older_page_url("https://t.me/s/chan?q=%23ivory&before=2000&embed=1", posts)
    assert url == "https://t.me/s/chan?q=%23ivory&embed=1&before=9"


def test_older_page_url_none_without_numbered_posts():
    adapter = adapter_for("telegram")
    assert adapter.older_page_url("https://t.me/s/chan", []) is None
    assert adapter.older_page_url("https://t.me/s/chan", [Post("chan/abc"), Post("x")]) is None
    assert message_number("chan/123") == 123
    assert message_number("chan/12a") is None


def test_generic_adapter_has_no_older_page():
    posts = _posts("generic", "shop_listing")
    spec = json.loads((FIXTURES / "generic" / "shop_listing.json").read_text(encoding="utf-8"))
    assert adapter_for("generic", spec["selectors"]).older_page_url(spec["base_url"], posts) is None


# -- generic ------------------------------------------------------------------------------


def test_shop_listing_fields():
    posts = _posts("generic", "shop_listing")
    assert [p.post_id for p in posts] == ["L1004", "L1003", "L1002", "L1001"]  # ad skipped
    by_id = _by_id(posts)
    first = by_id["L1004"]
    assert first.permalink == "https://market.example/shop/lucky_charms_store/item/L1004"
    assert first.image_urls == (
        "https://market.example/img/L1004-a.jpg",
        "https://img.market.example/L1004-b.jpg?w=800",
    )
    assert first.posted_at == "2024-03-04T05:30:00.000Z"
    assert first.text.splitlines()[1] == "Vòng tay ngà voi — real, not resin"
    assert first.links == ()  # the shop recipe has no links selector
    assert by_id["L1003"].permalink == "https://market.example/shop/item/L1003"  # relative
    assert by_id["L1003"].image_urls == ("https://img.market.example/L1003.webp",)
    assert by_id["L1003"].text == "Pangolin scale amulet (穿山甲)\nBrings luck, 3 pcs left"
    assert by_id["L1002"].posted_at == "2024-03-02T00:00:00.000Z"  # date only
    assert by_id["L1002"].author == 'Guest seller "Mr. K"'
    last = by_id["L1001"]
    assert last.permalink is None
    assert last.author is None
    assert last.posted_at is None  # <time> without datetime
    assert last.image_urls == ("https://market.example/img/L1001.jpg",)


def test_forum_threads_attribute_selectors_on_post_element():
    posts = _posts("generic", "forum_threads")
    assert [p.post_id for p in posts] == ["t-9001", "t-9417", "t-9418"]
    thread = _by_id(posts)["t-9417"]
    assert thread.author == "kh_trader"  # @data-starter of the row itself
    assert thread.posted_at == "2024-03-06T13:45:10.000Z"  # @data-created, +08:00
    assert thread.permalink == "https://forum.example/showthread.php?t=9417&page=1"
    assert thread.image_urls == (
        "https://forum.example/attachments/9417/thumb1.jpg",
        "https://cdn.forum.example/a/9417_2.jpg",
    )
    assert thread.links == (
        "https://t.me/kh_trader_bot",
        "https://forum.example/go.php?u=https%3A%2F%2Fshop.example.com",
    )
    assert thread.text == "Several pieces, PM me.\nShip via t.me/kh_trader_bot or my shop"
    assert _by_id(posts)["t-9418"].posted_at == "2024-03-07T06:00:00.000Z"  # naive -> UTC


def test_text_before_a_block_element_is_not_glued_to_it():
    html = (FIXTURES / "generic" / "forum_threads.html").read_text(encoding="utf-8")
    adapter = adapter_for(
        "generic", {"post": "tr.thread", "id": "@data-thread-id", "text": "td.subject"}
    )
    first = adapter.extract(html, "https://forum.example/")[0]
    assert first.text == "Forum rules – read before posting\nNo weapons. No live animals."


def test_generic_without_selectors_extracts_nothing():
    html = (FIXTURES / "generic" / "shop_listing.html").read_text(encoding="utf-8")
    assert adapter_for("generic").extract(html, "https://market.example/") == []


# -- facebook -----------------------------------------------------------------------------


def test_facebook_set_complete_and_comment_articles_left_out():
    names = {f"{p.parent.name}/{p.stem}" for p in CASES}
    assert {
        "facebook/page_feed",
        "facebook/group_feed",
        "facebook/marketplace_seller",
        "facebook/see_more",
        "vk/wall_public",
    } <= names
    posts = _posts("facebook", "page_feed")
    assert len(posts) == 3  # the suggestion card has no permalink: not a post
    everything = " ".join(p.text for p in posts)
    assert "How much for the pair" not in everything  # a comment, not the post
    assert not any("comment_photo" in u for p in posts for u in p.image_urls)
    assert not any("pfbid0CommentPermalinkXYZ" in p.post_id for p in posts)


def test_facebook_album_ids_times_and_clean_permalinks():
    posts = _by_id(_posts("facebook", "page_feed"))
    album = posts["pfbid02Xk7nQ3vR1sT9uW5yZ8aB4cD6eF1gH2jK3mN4pQ5rS6tU7vW8xY9zl"]
    assert [u.rsplit("/", 1)[-1].split("?")[0] for u in album.image_urls] == [
        "431_bangle_front_n.jpg",
        "432_bangle_side_n.jpg",
    ]  # not the avatar (svg image), not the emoji (static.xx.fbcdn.net)
    assert album.text.splitlines()[0] == "Vòng tay ngà voi thật 100% 🐘"  # emoji img -> char
    assert album.posted_at == "2024-03-01T08:15:00.000Z"  # the timestamp link's aria-label
    assert album.author == "Ivory Carvings VN"
    assert "__cft__" not in (album.permalink or "")  # click tracking stripped
    story = posts["1234567890123"]
    assert story.posted_at == "2024-03-02T08:00:00.000Z"  # abbr[data-utime]
    assert story.permalink == (
        "https://www.facebook.com/permalink.php?story_fbid=1234567890123&id=100064000000001"
    )
    assert story.links[0] == "https://shop.example.vn/ivory?ref=fb"  # l.php unwrapped
    assert "See more" not in story.text  # an unexpanded button is not text
    video = posts["987654321098765"]
    assert video.text == "Video: hàng mới về\n\nInbox để xem thêm"  # div[dir=auto] blocks
    assert len(video.video_urls) == 1  # the blob: URL is not kept


def test_facebook_group_ids_authors_and_undated_labels():
    posts = _by_id(_posts("facebook", "group_feed"))
    assert list(posts) == ["3344556677", "4455667788", "pfbid037abcDEF123ghiJKL456mnoPQR"]
    assert posts["3344556677"].author == "Minh Đồ Cổ"
    assert posts["3344556677"].posted_at is None  # "Yesterday at 9:10 PM": not guessed
    assert posts["4455667788"].author == "Hùng Sưu Tầm"  # strong a, no heading
    assert posts["pfbid037abcDEF123ghiJKL456mnoPQR"].posted_at == "2024-01-15T14:05:00.000Z"


def test_facebook_marketplace_listings():
    posts = _posts("facebook", "marketplace_seller")
    assert [p.post_id for p in posts] == ["881234567890123", "881234567890456"]  # once each
    assert posts[0].text == "₫12,000,000\nCarved bangle, white, old\nHanoi, Vietnam"
    assert posts[0].permalink == "https://www.facebook.com/marketplace/item/881234567890123/"
    assert len(posts[1].image_urls) == 1


# -- vk -----------------------------------------------------------------------------------


def test_vk_wall_fields():
    posts = _by_id(_posts("vk", "wall_public"))
    assert list(posts) == ["-123456_789", "-123456_788", "-123456_700"]  # the ad is skipped
    first = posts["-123456_789"]
    assert first.posted_at == "2024-03-01T08:15:02.000Z"  # .rel_date[time], a Unix time
    assert first.text.splitlines()[:2] == ["Браслет из слоновой кости, старый 🐘", "Цена в ЛС"]
    assert [u.split("?")[0].rsplit("/", 1)[-1] for u in first.image_urls] == [
        "bangle_a.jpg",
        "bangle_b.jpg",
    ]  # background-image thumbs; the avatar is not a post photo
    assert first.links[0] == "https://shop.example.ru/ivory"  # away.php unwrapped
    assert first.views == "3.1K"
    assert posts["-123456_788"].posted_at == "2024-02-28T14:40:00.000Z"  # <time>, +03:00
    assert posts["-123456_788"].image_urls == (
        "https://sun9-40.userapi.com/impg/horn_carving.jpg?size=604x453",
    )
    assert posts["-123456_700"].permalink == "https://vk.com/wall-123456_700"


def test_vk_override_repairs_renamed_text_class():
    html = (FIXTURES / "vk" / "wall_public.html").read_text(encoding="utf-8")
    html = html.replace('class="wall_post_text"', 'class="vkitPostText"')
    broken = adapter_for("vk").extract(html, "https://vk.com/ivory_club")
    assert [p.text for p in broken] == ["", "", ""]
    fixed = adapter_for("vk", {"text": ".vkitPostText"}).extract(html, "https://vk.com/ivory_club")
    assert [p.text for p in fixed] == [p.text for p in _posts("vk", "wall_public")]


def test_selector_list_alternatives_read_their_own_attribute():
    html = (
        '<div class="p" data-id="1"><i class="bg" style="background-image:url(/a.jpg)"></i>'
        '<img class="ph" src="/b.jpg"><i class="bg" style="color:red"></i></div>'
    )
    adapter = adapter_for(
        "generic", {"post": ".p", "id": "@data-id", "images": "i.bg@style, img.ph@src"}
    )
    (post,) = adapter.extract(html, "https://s.example/")
    assert post.image_urls == ("https://s.example/a.jpg", "https://s.example/b.jpg")  # page order


# -- telegram details ------------------------------------------------------------------------


def test_telegram_details_forwarded_views_edited_preview_video():
    posts = _by_id(_posts("telegram", "channel_basic"))
    assert posts["ivory_dealer_kh/106"].forwarded_from == "Pangolin Supply"
    assert posts["ivory_dealer_kh/106"].link_preview == "https://catalogue.example.com/2024/march"
    assert posts["ivory_dealer_kh/103"].edited is True
    assert [p.post_id for p in posts.values() if p.edited] == ["ivory_dealer_kh/103"]
    assert posts["ivory_dealer_kh/101"].views == "1.3K"
    assert posts["ivory_dealer_kh/107"].video_urls == (
        "https://cdn4.telesco.pe/file/8a1f_video.mp4?token=abc",
    )


# -- layouts no saved page was found for (tests/fixtures/real/SOURCES.md) -------------------
# The markup below is ours, written from the markup the reader saw on real pages
# and from public scrapers' selectors. The real-page corpus now holds m.facebook.com pages
# (tests/fixtures/real/facebook/m_*); mbasic, www 2025 and m.vk.com are still only here.
LAYOUTS = FIXTURES / "layouts"

M_FACEBOOK = (LAYOUTS / "m_facebook_article.html").read_text(encoding="utf-8")

MBASIC = (LAYOUTS / "mbasic_story.html").read_text(encoding="utf-8")

WWW_2025 = (LAYOUTS / "www_2025_posinset.html").read_text(encoding="utf-8")

M_VK = (LAYOUTS / "m_vk_wall.html").read_text(encoding="utf-8")


def test_m_facebook_article_permalink_text_time_photos_without_avatar():
    adapter = adapter_for("facebook")
    posts = adapter.extract(M_FACEBOOK, "https://m.facebook.com/ivorycarvingsvn")
    assert [p.post_id for p in posts] == ["pfbid02abcDEF"]  # not the story.php link first
    post = posts[0]
    assert post.permalink == "https://m.facebook.com/ivorycarvingsvn/posts/pfbid02abcDEF/"
    assert post.text == "Vòng tay ngà voi thật 100%\nGiá: inbox"  # source line break: a space
    assert post.author == "Ivory Carvings VN"
    assert post.posted_at == "2024-03-01T08:15:00.000Z"  # data-ft publish_time
    assert post.image_urls == (
        "https://scontent.xx.fbcdn.net/v/t39/9001_n.jpg?stp=dst-jpg_s640x640",
    )


def test_mbasic_story_text_and_id():
    posts = adapter_for("facebook").extract(MBASIC, "https://mbasic.facebook.com/tusk.trade")
    assert [p.post_id for p in posts] == ["888"]
    assert posts[0].text == "Horn carving, old piece"
    assert posts[0].author == "Tusk Trade"
    assert posts[0].posted_at == "2024-03-02T10:05:00.000Z"
    assert posts[0].image_urls == ("https://scontent.xx.fbcdn.net/v/t39/9100_n.jpg",)


def test_www_2025_posinset_unit_story_message_no_avatar_no_comment_post():
    posts = adapter_for("facebook").extract(WWW_2025, "https://www.facebook.com/groups/555")
    assert [p.post_id for p in posts] == ["1234567"]
    post = posts[0]
    assert post.text == "Sừng tê giác nguyên chiếc 🦏\n\nLiên hệ: 0901 234 567"
    assert "comment text" not in post.text
    assert post.image_urls == ("https://scontent.xx.fbcdn.net/v/t39.30808-6/777001_n.jpg",)
    assert post.posted_at == "2024-03-01T08:15:00.000Z"


def test_facebook_feed_without_posts_is_reported_not_empty():
    adapter = adapter_for("facebook")
    html = "<html><body><div role='main'><div id='pagelet'></div></div></body></html>"
    url = "https://www.facebook.com/ivorycarvingsvn"
    block = adapter.detect_block(html, url, url, [], "puppet")
    assert block is not None and block.reason == "no_posts_read"
    assert "watcher probe" in block.message


def test_m_vk_wall_items_ids_text_photos_relative_times():
    from datetime import UTC, datetime

    now = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    posts = adapter_for("vk").extract(M_VK, "https://m.vk.com/ivory_club", now)
    assert [p.post_id for p in posts] == ["-123456_790", "-123456_789"]
    first, second = posts
    assert first.text == "Браслет из кости, старый\nЦена в ЛС"
    assert first.permalink == "https://vk.com/wall-123456_790"
    assert first.author == "Antique Ivory Club"
    assert first.image_urls == (
        "https://sun9-1.userapi.com/impg/a.jpg?size=510x383",
        "https://sun9-1.userapi.com/impg/b.jpg?size=510x383",
    )
    assert first.posted_at == "2026-03-10T15:40:00.000Z"
    assert second.posted_at == "2025-04-16T09:05:00.000Z"  # 16 Apr is still to come in 2026
    # Without the capture time a relative label is left unread, never guessed.
    assert adapter_for("vk").extract(M_VK, "https://m.vk.com/ivory_club")[0].posted_at is None
