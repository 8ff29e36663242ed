"""The ``facebook`` adapter: pages, profiles, groups and Marketplace seller pages on
www.facebook.com, read through a logged-in session.

Facebook's class names are generated and change weekly, so little here relies on them. Post
units, in the layouts seen on real pages: ``div[role="article"]`` (minus the comment articles
nested inside them), ``div[aria-posinset]`` (2025 feeds), ``div.userContentWrapper`` (the
classic www layout), ``article[data-ft]`` (m.facebook.com) and ``div[data-ft]`` stories with a
``mf_story_key`` (mbasic). Ids come from permalink URLs (a post's own permalink before a
``story.php`` link, a photo's id for a photo post; without an own permalink, the
``top_level_post_id`` of m.facebook.com's ``data-ft``), the text from the message block of each
layout, photos from ``scontent*.fbcdn.net`` images and ``/photo`` links, avatars left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.capture.adapters.base import (
    Adapter,
    _unique,
    absolute_url,
    node_text,
    page_time,
    register_adapter,
)
from watcher.capture.blocks import BlockRule
from watcher.capture.recipe import Recipe, Selector
from watcher.models import Post

# Post ids in permalink URLs, most specific first. A post's links are ranked by these: its
# own permalink wins over a story.php link (m.facebook.com puts those first, and they may
# name a shared post), and a photo's id names a post only when nothing better does.
_ID_PATTERNS = (
    re.compile(r"/groups/[^/]+/(?:posts|permalink)/(\d+|pfbid[0-9A-Za-z]+)"),
    # m.facebook.com's group permalink: /groups/<group>?view=permalink&id=<post>
    re.compile(r"/groups/[^/?]+/?\?(?:.*&)?view=permalink&(?:.*&)?id=(\d+)"),
    re.compile(r"/(?:posts|permalink|videos|reel)/(\d+|pfbid[0-9A-Za-z]+)"),
    re.compile(r"/permalink\.php\?(?:.*&)?story_fbid=(\d+|pfbid[0-9A-Za-z]+)"),
    re.compile(r"/(pfbid[0-9A-Za-z]+)"),
    re.compile(r"[?&]story_fbid=(\d+|pfbid[0-9A-Za-z]+)"),
    re.compile(r"/photos/(?:[a-z]+\.[\d.]+/)?(\d+)"),
    re.compile(r"/photo(?:\.php)?/?\?(?:.*&)?fbid=(\d+)"),
)
# Ranks of _ID_PATTERNS that are a post's own permalink (posts/, permalink/, a group's
# permalink, permalink.php, pfbid); story.php and photo links come after them.
_OWN_RANK = 4
# Avatars and icons: a size of 100 px or less in the image URL (p50x50, s100x100, cp0 ... )
# or the element, the m.facebook.com profile picture class, Facebook's emoji images.
_SMALL_SIZE = re.compile(r"[/_.=](?:[ps]|cs=)?(\d{1,3})x(\d{1,3})(?:[/&_.]|$)")
_AVATAR_CLASSES = ("profpic", "_s0")
_LISTING_ID = re.compile(r"/marketplace/item/(\d+)")
# Query parameters that identify the post; everything else is click tracking (__cft__, __tn__).
_KEEP_QUERY = frozenset({"story_fbid", "id", "fbid", "set", "v", "view"})
_PUBLISH_TIME = re.compile(r'"publish_time"\s*:\s*(\d{9,11})')
_BUTTON_WORDS = frozenset({"see more", "see less", "see original", "rate this translation"})


@register_adapter
class FacebookAdapter(Adapter):
    """Feeds of ``div[role="article"]`` posts, loaded by scrolling; Marketplace listing cards."""

    name = "facebook"
    infinite_scroll = True
    label = "Facebook"
    login_url = "https://www.facebook.com/"
    default_recipe = Recipe.from_strings(
        {
            "post": 'div[role="article"], div[aria-posinset], div.userContentWrapper, '
            "article[data-ft], div[data-ft*=mf_story_key]",
            "id": "a[href]@href",
            "text": '[data-ad-preview="message"], [data-ad-comet-preview="message"], '
            '[data-ad-rendering-role="story_message"], [data-testid="post_message"], '
            "div.userContent, div.story_body_container > div._5rgt, "
            'div[data-ft*=\'"tn":"*s"\'], div[dir="auto"]',
            "time": "abbr[data-utime]@data-utime, footer abbr",
            # m.facebook.com draws photos as a background-image of an <i> in the photo's link.
            "images": 'a[href*="/photo"] img@src, img[src*="//scontent"]@src, '
            'a[href*="/photo"] i[style*="background-image"]@style',
            "link": "a[href]@href",
            "author": "h2 a, h3 a, h4 a, h5 a, strong a, h2 strong, h3 strong, "
            "header h3 a, header strong",
            "links": '[data-ad-preview="message"] a[href], div[dir="auto"] a[href]@href',
            "videos": "video@src",
            "see_more": '[role="article"] [role="button"]:text-is("See more")',
            "listing": 'a[href*="/marketplace/item/"]',
        }
    )
    block_rules = (
        BlockRule(
            "checkpoint",
            phrases=(
                "your account has been locked",
                "your account is locked",
                "account locked",
                "we suspended your account",
                "your account has been suspended",
                "we've temporarily locked your account",
                "confirm your identity",
            ),
        ),
        BlockRule(
            "temporarily_blocked",
            phrases=(
                "you're temporarily blocked",
                "you can't use this feature right now",
                "you're temporarily restricted",
                "misusing this feature by going too fast",
            ),
        ),
        BlockRule(
            "content_unavailable",
            phrases=(
                "this content isn't available right now",
                "this content isn't available at the moment",
                "this page isn't available",
                "the link you followed may be broken",
            ),
        ),
        BlockRule(
            "login_wall",
            selectors=("form#login_form", 'form[action*="/login"]', 'input[name="pass"]'),
            phrases=("log in to facebook", "log into facebook", "you must log in to continue"),
        ),
    )

    # -- the page ------------------------------------------------------------------------
    def parse(self, html: str) -> LexborHTMLParser:
        """The page without comment articles (an article inside another article)."""
        tree = LexborHTMLParser(html)
        for nested in tree.css('[role="article"] [role="article"]'):
            nested.decompose()
        return tree

    def post_nodes(self, tree: LexborHTMLParser) -> list[LexborNode]:
        """The outermost post units: layouts nest them (an ``aria-posinset`` unit around a
        ``role="article"``, a story's ``data-ft`` inside an ``article``)."""
        return _outermost(super().post_nodes(tree))

    def extract(self, html: str, base_url: str, now: datetime | None = None) -> list[Post]:
        """Feed posts, or listing cards on a Marketplace page."""
        if is_marketplace(base_url) and self.recipe.listing is not None:
            return self.extract_listings(html, base_url)
        return super().extract(html, base_url, now)

    def platform_block(
        self, html: str, final_url: str, requested_url: str, posts: list[Post]
    ) -> str | None:
        """ "No posts read": a feed with no post where posts are expected is reported, never
        taken for an account gone quiet (a page rendered by scripts that did not run, a
        layout nobody taught watcher)."""
        return "no_posts_read" if not posts and not is_marketplace(requested_url) else None

    # -- posts ---------------------------------------------------------------------------
    def extract_post(self, node: LexborNode, base_url: str) -> Post | None:
        """One ``div[role="article"]``; None when no permalink names it (ads, suggestions)."""
        found = self.find_permalink(node, base_url)
        story = _data_ft(node)
        own_link = found is not None and (ranked_post_id(found[1]) or (99, ""))[0] <= _OWN_RANK
        if story.post_id is not None and not own_link:
            # m.facebook.com / mbasic: without a link of the post's own permalink kind,
            # data-ft names the post, where its links may name a shared post first
            # (story.php of the original) or only a photo.
            found = self.link_naming(node, base_url, story.post_id) or (
                story.post_id,
                f"https://www.facebook.com/{story.post_id}",
                found[2] if found else None,
            )
        if found is None:
            return None
        post_id, permalink, anchor = found
        posted_at = page_time(self.read_first(node, self.recipe.time)) or story.published
        if posted_at is None and anchor is not None:
            # The timestamp link: "March 1, 2024 at 8:15 AM" in its label or text.
            label = anchor.attributes.get("aria-label") or node_text(anchor)
            posted_at = page_time(label)
        return Post(
            post_id=post_id,
            text=self.read_text(node),
            permalink=permalink,
            author=self.read_first(node, self.recipe.author),
            posted_at=posted_at,
            image_urls=self.read_images(node, base_url),
            links=self.read_links(node, base_url),
            **self.read_details(node, base_url),
        )

    def find_permalink(
        self, node: LexborNode, base_url: str
    ) -> tuple[str, str, LexborNode | None] | None:
        """(post id, clean permalink, the link element) from the best permalink-like URL: the
        most specific kind of link (see ``_ID_PATTERNS``), the first of that kind."""
        selector = self.recipe.id or Selector("a[href]", "href")
        best: tuple[int, str, str, LexborNode] | None = None
        for part in selector.parts():
            targets = [node] if part.css is None else node.css(part.css)
            for target in targets:
                raw = self.selector_value(target, part)
                url = absolute_url(raw, base_url) if raw else None
                ranked = ranked_post_id(url) if url else None
                if url and ranked and (best is None or ranked[0] < best[0]):
                    best = (ranked[0], ranked[1], url, target)
            if best is not None:
                return best[1], clean_permalink(best[2]), best[3]
        return None

    def link_naming(
        self, node: LexborNode, base_url: str, post_id: str
    ) -> tuple[str, str, LexborNode] | None:
        """(post id, clean permalink, link) of the post's first link that names ``post_id``."""
        for link in node.css("a[href]"):
            url = absolute_url(link.attributes.get("href"), base_url)
            ranked = ranked_post_id(url) if url else None
            if url and ranked and ranked[1] == post_id:
                return post_id, clean_permalink(url), link
        return None

    def read_images(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """The post's photos without the author's avatar, icons and emoji images."""
        selector = self.recipe.images
        if selector is None:
            return ()
        urls = []
        for target in node.css(selector.plain_css or ""):
            if _is_avatar_or_icon(target):
                continue
            part = next((p for p in selector.parts() if target.mem_id in _ids(node, p)), None)
            raw = self.selector_value(target, part) if part else None
            if raw and (url := absolute_url(raw, base_url)) and not _is_small_url(url):
                urls.append(url)
        return _unique(urls)

    def read_text(self, node: LexborNode) -> str:
        """The message block; failing that, every top-level ``div[dir="auto"]`` block.

        "See more" / "See less" buttons are left out: whether a capture expanded a post must
        not read as an edit.
        """
        selector = self.recipe.text
        if selector is None:
            return ""
        for part in selector.parts():
            blocks = _outermost(node.css(part.css)) if part.css else [node]
            texts = [_message_text(block) for block in blocks if not _is_avatar_or_icon(block)]
            texts = [t for t in texts if t]
            if texts:
                return "\n\n".join(dict.fromkeys(texts))
        return ""

    def read_links(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """Outbound links, unwrapped from Facebook's ``l.facebook.com/l.php?u=`` redirect."""
        return _unique(unwrap_redirect(url) for url in super().read_links(node, base_url))

    # -- Marketplace ---------------------------------------------------------------------
    def extract_listings(self, html: str, base_url: str) -> list[Post]:
        """Listing cards of a Marketplace seller page: id, title/price text, photo."""
        assert self.recipe.listing is not None and self.recipe.listing.css
        tree = LexborHTMLParser(html)
        posts: dict[str, Post] = {}
        for card in tree.css(self.recipe.listing.css):
            url = absolute_url(card.attributes.get("href"), base_url)
            match = _LISTING_ID.search(url or "")
            if not url or not match or match.group(1) in posts:
                continue
            images = _unique(
                u for img in card.css("img") if (u := absolute_url(img.attributes.get("src"), url))
            )
            posts[match.group(1)] = Post(
                post_id=match.group(1),
                # One line each for price, title and place.
                text="\n".join(line for line in node_text(card).splitlines() if line.strip()),
                permalink=f"https://www.facebook.com/marketplace/item/{match.group(1)}/",
                image_urls=images,
            )
        return list(posts.values())


def post_id_from_url(url: str) -> str | None:
    """The post id in a Facebook permalink, or None when the URL is not one."""
    ranked = ranked_post_id(url)
    return ranked[1] if ranked else None


def ranked_post_id(url: str) -> tuple[int, str] | None:
    """(rank, post id) of a permalink-like URL, rank 0 the most specific; None if not one."""
    parts = urlsplit(url)
    if parts.hostname and not parts.hostname.endswith("facebook.com"):
        return None
    where = parts.path + ("?" + parts.query if parts.query else "")
    for rank, pattern in enumerate(_ID_PATTERNS):
        match = pattern.search(where)
        if match:
            return rank, match.group(1)
    return None


def is_marketplace(url: str) -> bool:
    """True for Marketplace pages (listing cards, not a feed)."""
    return "/marketplace/" in urlsplit(url).path


def _ids(node: LexborNode, selector: Selector) -> set[int]:
    return {n.mem_id for n in node.css(selector.css or "*")}


def _is_avatar_or_icon(img: LexborNode) -> bool:
    """An author's picture or an icon rather than a photo of the post."""
    classes = (img.attributes.get("class") or "").split()
    if any(c in classes for c in _AVATAR_CLASSES):
        return True
    for name in ("width", "height"):
        value = (img.attributes.get(name) or "").strip()
        if value.isdigit() and int(value) <= 100:
            return True
    return False


def _is_small_url(url: str) -> bool:
    """An image URL sized 100 px or less (``/p50x50/``, ``s100x100``), or an emoji."""
    if "/emoji.php/" in url or "static.xx.fbcdn.net" in url:
        return True
    return any(int(w) <= 100 and int(h) <= 100 for w, h in _SMALL_SIZE.findall(url))


@dataclass(frozen=True)
class _Story:
    """What m.facebook.com / mbasic's ``data-ft`` JSON says of a post unit."""

    post_id: str | None = None
    published: str | None = None


def _data_ft(node: LexborNode) -> _Story:
    """The post's own id (``top_level_post_id``) and publish time from ``data-ft``.

    The time is the one of the post's own ``post_context`` (whose ``story_fbid`` names the
    post): a share also carries its original's, often first, hours or days earlier.
    """
    raw = node.attributes.get("data-ft") or ""
    try:
        data = json.loads(raw) if raw.startswith("{") else {}
    except ValueError:  # a trimmed or broken attribute: read what the regex finds
        data = {}
    if not isinstance(data, dict):
        data = {}
    post_id = str(data.get("top_level_post_id") or "") or None
    if post_id is not None and not post_id.isdigit():
        post_id = None
    published = None
    insights = data.get("page_insights")
    for entry in insights.values() if isinstance(insights, dict) else ():
        context = entry.get("post_context") if isinstance(entry, dict) else None
        if not isinstance(context, dict) or "publish_time" not in context:
            continue
        if post_id is None or post_id in [str(s) for s in context.get("story_fbid") or ()]:
            published = page_time(str(context["publish_time"]))
            break
    if published is None and not insights:
        match = _PUBLISH_TIME.search(raw)
        published = page_time(match.group(1)) if match else None
    return _Story(post_id, published)


def clean_permalink(url: str) -> str:
    """The permalink without click-tracking parameters, so it is stable between captures."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k in _KEEP_QUERY]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def unwrap_redirect(url: str) -> str:
    """``https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example`` -> the shop URL."""
    parts = urlsplit(url)
    if parts.hostname in ("l.facebook.com", "lm.facebook.com") and parts.path == "/l.php":
        target = dict(parse_qsl(parts.query)).get("u")
        if target and urlsplit(target).scheme in ("http", "https"):
            return target
    return url


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """``nodes`` without those inside another of them (nested dir=auto blocks)."""
    ids = {n.mem_id for n in nodes}
    result = []
    for node in nodes:
        parent, inside = node.parent, False
        while parent is not None:
            if parent.mem_id in ids:
                inside = True
                break
            parent = parent.parent
        if not inside:
            result.append(node)
    return result


def _message_text(block: LexborNode) -> str:
    """Text of a message block: emoji images as their characters, buttons left out."""
    copy = LexborHTMLParser(block.html or "")
    # The classic layout's "... See more": a link and an ellipsis, hidden once expanded.
    for hidden in copy.css(".text_exposed_hide, .see_more_link"):
        hidden.decompose()
    for button in copy.css('[role="button"]'):
        if node_text(button).strip().lower() in _BUTTON_WORDS:
            button.decompose()
    for img in copy.css("img[alt]"):
        # Facebook draws emoji as <img alt="🐘">: keep the character, not a hole.
        img.replace_with(img.attributes.get("alt") or "")
    body = copy.body
    return node_text(body) if body is not None else ""
