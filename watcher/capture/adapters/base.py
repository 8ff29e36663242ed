"""The adapter base class and the registry of adapters by platform name.

An adapter is one small class: a default :class:`Recipe` plus, where a platform needs it,
a few overrides of the recipe-driven extraction. Extraction is pure (HTML in, posts out)
so it can be golden-tested on saved pages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.capture.blocks import Block, BlockContext, BlockRule, block_for, find_block
from watcher.capture.recipe import Recipe, Selector
from watcher.models import PageEvent, Post
from watcher.timeutil import normalise_page_time, to_iso

_ADAPTERS: dict[str, type[Adapter]] = {}
_SPACES = re.compile(r"[ \t\f\v]+")
# Whitespace as HTML collapses it (not NBSP: a page that asks for a hard space shows one).
_HTML_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
# A CSS escape: a backslash, 1-6 hex digits and one optional space (m.facebook.com writes
# ``url('https\\3a //scontent...\\26 oh\\3d ...')``), or a backslash before any other character.
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6}) ?|\\(.)")
_SAFE_SCHEMES = ("http", "https")


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: make ``cls`` available as ``platform: <cls.name>`` in watchlists."""
    _ADAPTERS[cls.name] = cls
    return cls


def known_platforms() -> list[str]:
    """Names of every registered platform, sorted."""
    return sorted(_ADAPTERS)


def adapter_for(platform: str, selectors: dict[str, str] | None = None) -> Adapter:
    """An adapter for ``platform`` whose recipe is patched with a target's ``selectors``."""
    cls = _ADAPTERS[platform]
    return cls(cls.default_recipe.overridden(selectors))


class Adapter:
    """Turns the HTML of a loaded page into :class:`Post` records using a recipe."""

    name: ClassVar[str] = ""
    default_recipe: ClassVar[Recipe] = Recipe()
    # Selector names a watchlist must give for this platform (generic has no defaults).
    required_selectors: ClassVar[tuple[str, ...]] = ()
    # Pages that list oldest first (Telegram) put older pages in front when merging.
    oldest_first: ClassVar[bool] = False
    # Feeds that load older posts as one scrolls (Facebook, VK): `pages: N` means scroll
    # N - 1 screens down when the target sets no `scroll` of its own.
    infinite_scroll: ClassVar[bool] = False
    # How block messages name the platform, and where a session logs in again.
    label: ClassVar[str] = "The site"
    login_url: ClassVar[str | None] = None  # None: the target's own site
    # The platform's own signs of a block, tried before the generic ones in blocks.py.
    block_rules: ClassVar[tuple[BlockRule, ...]] = ()

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.now: datetime | None = None  # the capture time, set by extract()

    # -- the pure part -------------------------------------------------------------------
    def extract(self, html: str, base_url: str, now: datetime | None = None) -> list[Post]:
        """Every post on the page, in page order, with URLs made absolute.

        ``now`` is the capture time: labels such as "today at 3:40 pm" are read against it
        (left unread without it). Passed in so extraction stays pure.
        """
        if self.recipe.post is None or self.recipe.post.css is None:
            return []
        tree = self.parse(html)
        posts: list[Post] = []
        seen: set[str] = set()
        self.now = now
        for node in self.post_nodes(tree):
            post = self.extract_post(node, base_url)
            if post is not None and post.post_id not in seen:
                seen.add(post.post_id)
                posts.append(post)
        return posts

    def post_nodes(self, tree: LexborHTMLParser) -> list[LexborNode]:
        """The post elements, in page order."""
        assert self.recipe.post is not None and self.recipe.post.css
        return tree.css(self.recipe.post.css)

    def page_events(self, html: str, base_url: str) -> list[PageEvent]:
        """What the page shows besides posts (service messages); none by default."""
        return []

    def parse(self, html: str) -> LexborHTMLParser:
        """The parsed page; adapters may prune it first (Facebook drops nested comments)."""
        return LexborHTMLParser(html)

    def extract_post(self, node: LexborNode, base_url: str) -> Post | None:
        """One post element to a :class:`Post`; None when it has no id (not a real post)."""
        post_id = self.read_id(node, base_url)
        if not post_id:
            return None
        return Post(
            post_id=post_id,
            text=self.read_text(node),
            permalink=self.read_url(node, self.recipe.link, base_url),
            author=self.read_first(node, self.recipe.author),
            posted_at=page_time(self.read_first(node, self.recipe.time)),
            image_urls=self.read_images(node, base_url),
            links=self.read_links(node, base_url),
            **self.read_details(node, base_url),
        )

    def read_details(self, node: LexborNode, base_url: str) -> dict[str, object]:
        """The platform details of a post: videos, forwarded-from, views, edited, preview."""
        return {
            "video_urls": _unique(
                url
                for raw in self.read_all(node, self.recipe.videos)
                if (url := absolute_url(raw, base_url))
            ),
            "forwarded_from": self.read_first(node, self.recipe.forwarded),
            "views": self.read_first(node, self.recipe.views),
            "edited": self.read_edited(node),
            "link_preview": self.read_url(node, self.recipe.preview, base_url),
        }

    def read_edited(self, node: LexborNode) -> bool:
        """True when an ``edited`` element says "edited" (Telegram shares the class with the
        date, so the word itself is the sign)."""
        return any("edited" in value.lower() for value in self.read_all(node, self.recipe.edited))

    def read_id(self, node: LexborNode, base_url: str) -> str | None:
        """The platform's post id."""
        value = self.read_first(node, self.recipe.id)
        return value.strip() if value else None

    def read_text(self, node: LexborNode) -> str:
        """Post text with line breaks kept and runs of spaces folded."""
        selector = self.recipe.text
        if selector is None:
            return ""
        target = node if selector.css is None else node.css_first(selector.plain_css or "")
        if target is None:
            return ""
        if selector.attr:
            return (target.attributes.get(selector.attr) or "").strip()
        return node_text(target)

    def read_images(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """Absolute http(s) URLs of the post's images, de-duplicated, in page order."""
        return _unique(
            url
            for raw in self.read_all(node, self.recipe.images)
            if (url := absolute_url(raw, base_url))
        )

    def read_links(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """Outbound links in the post text."""
        return _unique(
            url
            for raw in self.read_all(node, self.recipe.links)
            if (url := absolute_url(raw, base_url))
        )

    def read_url(self, node: LexborNode, selector: Selector | None, base_url: str) -> str | None:
        """First value of ``selector`` as an absolute http(s) URL."""
        raw = self.read_first(node, selector)
        return absolute_url(raw, base_url) if raw else None

    def older_page_url(self, url: str, posts: list[Post]) -> str | None:
        """URL of the next (older) page after reading ``posts`` from ``url``; None if none."""
        return None

    # -- blocks ------------------------------------------------------------------------------
    def detect_block(
        self,
        html: str,
        final_url: str,
        requested_url: str,
        posts: list[Post],
        session: str | None,
    ) -> Block | None:
        """What keeps the content from us (login wall, checkpoint, ban, ...), or None.

        Pure: the first page's HTML, where the browser ended up, what was asked for, the
        posts read, and the target's session name (for the message).
        """
        context = BlockContext(
            platform=self.label,
            session=session,
            login_url=self.login_url or _site_root(requested_url),
            requested_url=requested_url,
        )
        block = find_block(html, final_url, requested_url, posts, self.block_rules, context)
        if block is None:
            reason = self.platform_block(html, final_url, requested_url, posts)
            block = block_for(reason, context) if reason else None
        return block

    def platform_block(
        self, html: str, final_url: str, requested_url: str, posts: list[Post]
    ) -> str | None:
        """A platform's own sign of a block that rules cannot express, asked only when no
        rule matched: a reason of ``blocks.REASONS`` (its message is written for the
        platform and session), or None. Pure, like :meth:`detect_block`."""
        return None

    # -- selector helpers ------------------------------------------------------------------
    def read_first(self, node: LexborNode, selector: Selector | None) -> str | None:
        """The first value ``selector`` yields inside ``node``.

        In a selector list (``a, b``) the alternatives are tried in the order written, so a
        recipe can say which element it prefers, not whichever comes first on the page.
        """
        if selector is None:
            return None
        for alternative in selector_alternatives(selector):
            values = self.read_all(node, alternative, limit=1)
            if values:
                return values[0]
        return None

    def read_all(
        self, node: LexborNode, selector: Selector | None, limit: int | None = None
    ) -> list[str]:
        """Every value ``selector`` yields inside ``node`` (attribute values or element text)."""
        if selector is None:
            return []
        parts = selector.parts()
        if selector.css is None:
            pairs = [(node, selector)]
        elif len({p.attr for p in parts}) == 1:
            pairs = [(target, parts[0]) for target in node.css(selector.plain_css or "")]
        else:
            # Alternatives read different attributes: one query keeps page order, then each
            # element is read the way of the first alternative it matches.
            matched = [(p, {n.mem_id for n in node.css(p.css or "*")}) for p in parts]
            pairs = [
                (target, next(p for p, ids in matched if target.mem_id in ids))
                for target in node.css(selector.plain_css or "")
            ]
        values: list[str] = []
        for target, how in pairs:
            value = self.selector_value(target, how)
            if value:
                values.append(value)
                if limit and len(values) >= limit:
                    break
        return values

    @staticmethod
    def selector_value(target: LexborNode, selector: Selector) -> str | None:
        """Attribute value (``style`` yields its ``url(...)``) or text of one element."""
        if not selector.attr:
            return node_text(target) or None
        value = target.attributes.get(selector.attr)
        if value and selector.attr == "style":
            match = _CSS_URL.search(value)
            return css_unescape(match.group(1)) if match else None
        return value


def css_unescape(value: str) -> str:
    """A CSS string with its escapes resolved: ``https\\3a //x`` -> ``https://x``."""

    def one(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return match.group(2)
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"

    return _CSS_ESCAPE.sub(one, value)


def node_text(node: LexborNode) -> str:
    """Visible text of an element, as a browser renders it: line breaks in the HTML source
    are spaces; ``<br>`` and block boundaries are line breaks; runs of spaces folded."""
    html = _HTML_SPACE.sub(" ", node.html or "")
    html = re.sub(r"(?i)<br\s*/?>", "\n", html)
    html = re.sub(r"(?i)(</?(p|div|li|h[1-6]|blockquote|tr)\b[^>]*>)", "\n\\1", html)
    text = LexborHTMLParser(html).text(separator="") if html else ""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r", "").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def selector_alternatives(selector: Selector) -> list[Selector]:
    """``a, b@x`` as ``[a@x, b@x]``: the comma-separated parts of a selector list."""
    return selector.parts()


def _site_root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.netloc else url


_EPOCH = re.compile(r"^\d{9,11}$")
_AT = re.compile(r"\s+at\s+", re.IGNORECASE)
_WEEKDAY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*,\s*", re.IGNORECASE)
_TEXT_TIMES = (
    "%B %d, %Y %I:%M %p",  # March 1, 2024 at 8:15 AM (Facebook, en-US)
    "%d %B %Y %H:%M",  # 1 March 2024 at 08:15 (Facebook, en-GB)
    "%d %b %Y %I:%M %p",  # 1 Mar 2024 at 8:15 am (VK)
    "%d %b %Y %H:%M",
    "%B %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
)


def page_time(value: str | None) -> str | None:
    """A post time from a page as UTC ISO: ISO text, a Unix time (``data-utime``), or a
    dated label such as ``March 1, 2024 at 8:15 AM``; None when it cannot be read for sure.

    Labels without a year ("Yesterday at 9:10", "3h") are left out rather than guessed:
    a wrong date in evidence is worse than none. Labels are read as UTC, the capture
    browser's time zone.
    """
    if not value:
        return None
    text = value.strip()
    if _EPOCH.match(text):
        try:
            return to_iso(datetime.fromtimestamp(int(text), UTC))
        except (OverflowError, OSError, ValueError):
            return None
    iso = normalise_page_time(text)
    if iso:
        return iso
    cleaned = _WEEKDAY.sub("", _AT.sub(" ", text.replace("\u202f", " ")).strip())
    for pattern in _TEXT_TIMES:
        try:
            return to_iso(datetime.strptime(cleaned, pattern).replace(tzinfo=UTC))
        except ValueError:
            continue
    return None


def absolute_url(raw: str | None, base_url: str) -> str | None:
    """``raw`` resolved against ``base_url``; None unless the result is http(s).

    Pages may point images at ``file:``, ``data:`` or ``javascript:`` URLs: never follow those.
    """
    if not raw:
        return None
    url = urljoin(base_url, raw.strip())
    return url if urlsplit(url).scheme in _SAFE_SCHEMES else None


def _unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
