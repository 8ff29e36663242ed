"""Block detection: a page that shuts watcher out must say so, never pass as "no new posts"."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.capture.adapters import adapter_for
from watcher.capture.blocks import REASONS, Block, BlockContext, block_for
from watcher.capture.page import PageRequest, dismiss_consent, load_pages
from watcher.models import Post

FIXTURES = Path(__file__).parent / "fixtures"
FB_PAGE = "https://www.facebook.com/ivorycarvingsvn"
VK_WALL = "https://vk.com/ivory_club"
SHOP = "https://market.example/shop/lucky"

# (platform, block page, where the browser ended up, what was asked for, expected reason)
CASES = [
    (
        "facebook",
        "login_wall",
        "https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2Fivorycarvingsvn",
        FB_PAGE,
        "login_wall",
    ),
    ("facebook", "login_wall", FB_PAGE, FB_PAGE, "login_wall"),  # the form alone, no redirect
    (
        "facebook",
        "checkpoint",
        "https://www.facebook.com/checkpoint/828281030927956/?next=x",
        FB_PAGE,
        "checkpoint",
    ),
    ("facebook", "checkpoint", FB_PAGE, FB_PAGE, "checkpoint"),  # the words alone
    ("facebook", "temporarily_blocked", FB_PAGE, FB_PAGE, "temporarily_blocked"),
    ("facebook", "feature_blocked", FB_PAGE, FB_PAGE, "temporarily_blocked"),
    ("facebook", "content_unavailable", FB_PAGE, FB_PAGE, "content_unavailable"),
    ("facebook", "geo_blocked", FB_PAGE, FB_PAGE, "geo_blocked"),
    ("vk", "login_wall", VK_WALL, VK_WALL, "login_wall"),
    ("vk", "deleted", VK_WALL, VK_WALL, "content_unavailable"),
    ("vk", "private", VK_WALL, VK_WALL, "content_unavailable"),
    ("vk", "captcha", VK_WALL, VK_WALL, "captcha"),
    (
        "telegram",
        "no_preview",
        "https://t.me/ivory_private",
        "https://t.me/s/ivory_private",
        "no_preview",
    ),
    (
        "telegram",
        "blocked_local_laws",
        "https://t.me/ivory_dealer_kh",
        "https://t.me/s/ivory_dealer_kh",
        "geo_blocked",
    ),
    (
        "telegram",
        "blocked_terms",
        "https://t.me/s/h0stile_shop",
        "https://t.me/s/h0stile_shop",
        "content_unavailable",
    ),
    ("generic", "recaptcha", SHOP, SHOP, "captcha"),
    ("generic", "cloudflare", SHOP, SHOP, "captcha"),
    ("generic", "login_form", SHOP, SHOP, "login_wall"),
    ("generic", "login_form", "https://market.example/account/login?r=1", SHOP, "login_wall"),
]


def _page(platform: str, name: str) -> str:
    return (FIXTURES / platform / "blocks" / f"{name}.html").read_text(encoding="utf-8")


def _detect(platform: str, html: str, final: str, requested: str, session: str | None = None):
    adapter = adapter_for(platform, {"post": ".x", "id": "@id"} if platform == "generic" else None)
    posts = adapter.extract(html, final)
    return adapter.detect_block(html, final, requested, posts, session)


@pytest.mark.parametrize(
    ("platform", "name", "final", "requested", "reason"),
    CASES,
    ids=[f"{c[0]}/{c[1]}->{c[4]}" + ("/redirect" if c[2] != c[3] else "") for c in CASES],
)
def test_block_page_gives_its_reason(platform, name, final, requested, reason):
    html = _page(platform, name)
    assert adapter_for(platform, {"post": ".x", "id": "@id"}).extract(html, final) == []
    block = _detect(platform, html, final, requested, session="fb-puppet-1")
    assert block is not None, f"{platform}/{name} was not recognised as a block"
    assert block.reason == reason
    assert block.message  # plain words, filled in


def test_every_block_page_fixture_is_covered():
    pages = {f"{p.parent.parent.name}/{p.stem}" for p in FIXTURES.glob("*/blocks/*.html")}
    assert pages == {f"{c[0]}/{c[1]}" for c in CASES}


@pytest.mark.parametrize(
    ("platform", "case"),
    [
        ("telegram", "channel_basic"),
        ("telegram", "channel_older_page"),
        ("facebook", "page_feed"),
        ("facebook", "group_feed"),
        ("facebook", "marketplace_seller"),
        ("vk", "wall_public"),
    ],
)
def test_normal_feeds_are_not_blocks(platform, case):
    html = (FIXTURES / platform / f"{case}.html").read_text(encoding="utf-8")
    base = "https://t.me/s/ivory_dealer_kh" if platform == "telegram" else FB_PAGE
    if case == "marketplace_seller":
        base = "https://www.facebook.com/marketplace/profile/100089999999/"
    adapter = adapter_for(platform)
    posts = adapter.extract(html, base)
    assert posts
    assert adapter.detect_block(html, base, base, posts, "s1") is None


def test_a_post_quoting_block_words_is_not_a_block():
    # A dealer's post may say "temporarily blocked" or "log in": with posts read, page words
    # are never taken for a block page.
    html = (FIXTURES / "telegram" / "channel_older_page.html").read_text(encoding="utf-8")
    html = html.replace("Pendant, old stock", "You're Temporarily Blocked, log in to continue")
    adapter = adapter_for("facebook")
    posts = [Post("1", text="You're Temporarily Blocked")]
    assert adapter.detect_block(html, FB_PAGE, FB_PAGE, posts, "s1") is None
    assert adapter.detect_block(html, FB_PAGE, FB_PAGE, [], "s1") is not None


def test_redirect_to_login_is_a_block_even_with_posts():
    html = (FIXTURES / "facebook" / "page_feed.html").read_text(encoding="utf-8")
    adapter = adapter_for("facebook")
    posts = adapter.extract(html, FB_PAGE)
    block = adapter.detect_block(
        html, "https://www.facebook.com/checkpoint/1/", FB_PAGE, posts, "p"
    )
    assert block is not None and block.reason == "checkpoint"


def test_asking_for_a_login_page_is_not_being_sent_to_one():
    url = "https://market.example/login/help"
    html = "<html><body><h1>Help</h1></body></html>"
    assert _detect("generic", html, url, url) is None


def test_telegram_preview_that_stays_on_s_is_not_no_preview():
    html = _page("telegram", "no_preview")
    adapter = adapter_for("telegram")
    url = "https://t.me/s/ivory_private"
    assert adapter.detect_block(html, url, url, [], None) is None


def test_login_wall_message_names_the_session_and_the_command():
    html = _page("facebook", "login_wall")
    block = _detect("facebook", html, "https://www.facebook.com/login/", FB_PAGE, "fb-puppet-1")
    assert block == Block(
        "login_wall",
        "Facebook shows a login wall: the session 'fb-puppet-1' is logged out; run "
        "`watcher session login fb-puppet-1 --url https://www.facebook.com/`",
    )
    anonymous = _detect("facebook", html, "https://www.facebook.com/login/", FB_PAGE, None)
    assert anonymous is not None
    assert "no session" in anonymous.message and "`session: NAME`" in anonymous.message


def test_vk_and_generic_messages_point_at_their_own_login_page():
    vk = _detect("vk", _page("vk", "login_wall"), VK_WALL, VK_WALL, "vk-1")
    assert vk is not None and "--url https://vk.com/login`" in vk.message
    shop = _detect("generic", _page("generic", "login_form"), SHOP, SHOP, "shop-1")
    assert shop is not None and "--url https://market.example/`" in shop.message


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_has_a_message_naming_the_platform(reason):
    ctx = BlockContext("VK", "vk-1", "https://vk.com/login", VK_WALL)
    block = block_for(reason, ctx)
    assert block.reason == reason
    assert "VK" in block.message and len(block.message) > 60


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError, match="unknown block reason"):
        Block("banned", "x")


# -- through the browser ---------------------------------------------------------------------
async def test_login_redirect_through_the_browser(site, browser):
    wall = _page("facebook", "login_wall")
    site.route("/login/", wall)
    site.route("/ivorycarvingsvn", "", status=302, headers={"Location": "/login/?next=%2Fivory"})
    adapter = adapter_for("facebook")
    request = PageRequest(url=f"{site.base_url}/ivorycarvingsvn", pages=5, timeout_s=10)
    async with browser.context() as context:
        snapshot, posts = await load_pages(context, request, adapter, "ua", "1")
    assert snapshot.final_url.startswith(f"{site.base_url}/login/")
    assert posts == []
    block = adapter.detect_block(
        snapshot.html_pages[0], snapshot.final_url, request.url, posts, "fb-puppet-1"
    )
    assert block is not None and block.reason == "login_wall"
    assert "'fb-puppet-1'" in block.message
    assert len(snapshot.html_pages) == 1  # a wall is not paged


CONSENT_PAGE = """<!DOCTYPE html><html><body>
<div id="feed"><p>posts</p></div>
<div id="cookies" role="dialog" style="position:fixed;inset:0;background:#fff">
  <p>Allow the use of cookies by Facebook?</p>
  <div role="button" tabindex="0" onclick="document.getElementById('cookies').remove();
    document.body.dataset.choice='essential'">Only allow essential cookies</div>
  <div role="button" tabindex="0" onclick="document.body.dataset.choice='settings'"
    >Manage settings</div>
</div></body></html>"""


async def test_dismiss_consent_clicks_a_safe_button(site, browser):
    site.route("/consent", CONSENT_PAGE)
    site.route("/plain", "<html><body><p>nothing to accept</p></body></html>")
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto(f"{site.base_url}/consent")
        assert await dismiss_consent(page) == "Only allow essential cookies"
        assert await page.locator("#cookies").count() == 0
        assert await page.evaluate("document.body.dataset.choice") == "essential"
        await page.goto(f"{site.base_url}/plain")
        assert await dismiss_consent(page) is None


SHADOW_CONSENT_PAGE = """<!DOCTYPE html><html><body><p>posts</p>
<consent-banner></consent-banner>
<script>
customElements.define('consent-banner', class extends HTMLElement {
  connectedCallback() {
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<div><button id="no">Reject all</button></div>';
    root.getElementById('no').onclick = () => { document.body.dataset.choice = 'rejected'; };
  }
});
</script></body></html>"""


async def test_dismiss_consent_finds_a_banner_in_a_shadow_root(site, browser):
    # Consent tools often draw their banner in a shadow root: the one-look check must see it.
    site.route("/shadow", SHADOW_CONSENT_PAGE)
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto(f"{site.base_url}/shadow")
        assert await dismiss_consent(page) == "Reject all"
        assert await page.evaluate("document.body.dataset.choice") == "rejected"
