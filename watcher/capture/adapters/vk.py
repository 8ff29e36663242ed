"""The ``vk`` adapter: public walls of VK communities and profiles: ``vk.com/<name>`` (posts
``.post[data-post-id]``; on older pages ``div.post`` with the id in its element id,
``post-20629724_73803``) and ``m.vk.com/<name>`` (posts ``div.wall_item``, the id only in the
links inside, text ``div.pi_text``, photos as ``background-image`` of ``div.thumb_map_img``,
times such as "today at 3:40 pm", read against the capture time)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.capture.adapters.base import Adapter, _unique, register_adapter
from watcher.capture.blocks import BlockRule
from watcher.capture.recipe import Recipe
from watcher.models import Post
from watcher.timeutil import to_iso

_WALL_ID = re.compile(r"/wall(-?\d+_\d+)")
_ELEMENT_ID = re.compile(r"^post(-?\d+_\d+)$")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?", re.IGNORECASE)
_DAY_WORDS = {"today": 0, "сегодня": 0, "yesterday": 1, "вчера": 1}
_MONTHS = {
    **{
        m: i
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
            start=1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"),
            start=1,
        )
    },
}
_DAY_MONTH = re.compile(r"^(\d{1,2})\s+([a-zа-я]+)", re.IGNORECASE)


@register_adapter
class VkAdapter(Adapter):
    """VK wall posts (``.post[data-post-id]``, ids like ``-123_456``), loaded by scrolling."""

    name = "vk"
    infinite_scroll = True
    label = "VK"
    login_url = "https://vk.com/login"
    default_recipe = Recipe.from_strings(
        {
            "post": '.post[data-post-id], div.post[id^="post"], div.wall_item',
            # m.vk.com's wall_item has no id attribute: read_id takes it from its links.
            "id": "@data-post-id",
            "text": ".wall_post_text, div.pi_text",
            # `time` on .rel_date is a Unix time; newer markup has <time datetime>; m.vk.com
            # only a label ("today at 3:40 pm", "16 апр в 15:42") in its date link.
            "time": ".rel_date[time]@time, time[datetime]@datetime, .rel_date@abs_time, a.wi_date, "
            ".rel_date",
            "images": "a.page_post_thumb_wrap@style, .page_post_sized_thumbs img@src, "
            ".wall_text img.MediaGrid__imageElement@src, div.thumb_map_img@style, "
            # 2011-2012 vk.com: the post's own media block (the avatar is a.post_image)
            ".wall_text .post_media img@src, td.info > div.text .post_media img@src",
            "link": "a.post_link@href, a.wi_date@href",
            "author": ".post_author a.author, a.author, .PostHeaderTitle__authorName, .pi_author",
            "links": ".wall_post_text a[href], div.pi_text a[href]@href",
            "videos": "video@src",
            "views": ".like_views, ._views",
        }
    )
    block_rules = (
        BlockRule(
            "captcha",
            selectors=('img[src*="captcha.php"]',),
            phrases=("enter the code from the picture", "введите код с картинки"),
        ),
        BlockRule(
            "checkpoint",
            phrases=(
                "your page has been frozen",
                "ваша страница заморожена",
                "your page has been blocked",
            ),
        ),
        BlockRule(
            "geo_blocked",
            phrases=("недоступен в вашей стране", "заблокирован на территории"),
        ),
        BlockRule(
            "content_unavailable",
            phrases=(
                "this page has been deleted",
                "this page is either deleted or has not been created yet",
                "страница удалена",
                "this community has been blocked",
                "сообщество заблокировано",
                "this profile is private",
                "это закрытый профиль",
                "this is a closed community",
                "это закрытое сообщество",
            ),
        ),
        BlockRule(
            "login_wall",
            selectors=("#index_login_form", "form#quick_login_form", ".UnauthActionBox"),
            phrases=("sign in to vk", "log in to vk", "войдите на сайт", "вход вконтакте"),
        ),
        BlockRule("temporarily_blocked", phrases=("flood control", "слишком много запросов")),
    )

    def parse(self, html: str) -> LexborHTMLParser:
        """The page without the comments under each post: a comment's date, photos or
        author are not the post's (a post whose date is only a label would take the first
        comment's Unix time)."""
        tree = LexborHTMLParser(html)
        for comment in tree.css(".post .replies_wrap, .post .reply"):
            comment.decompose()
        return tree

    def extract_post(self, node: LexborNode, base_url: str) -> Post | None:
        """A wall post; its permalink is ``https://vk.com/wall<id>`` (stable across vk.com and
        m.vk.com, whatever link the page gives)."""
        post = super().extract_post(node, base_url)
        if post is None:
            return None
        if post.posted_at is None:
            label = self.read_first(node, self.recipe.time)
            post = replace(post, posted_at=relative_time(label, self.now))
        return replace(post, permalink=f"https://vk.com/wall{post.post_id}")

    def read_id(self, node: LexborNode, base_url: str) -> str | None:
        """``data-post-id``, or (m.vk.com) the ``wall-1_2`` in the post's date link or the
        first link naming one."""
        post_id = super().read_id(node, base_url)
        if post_id:
            return post_id
        match = _ELEMENT_ID.match(node.attributes.get("id") or "")
        if match:  # older vk.com: id="post-20629724_73803" (a community's id keeps its minus)
            return match.group(1)
        for link in (*node.css("a.wi_date[href]"), *node.css("a[href]")):
            match = _WALL_ID.search(link.attributes.get("href") or "")
            if match:
                return match.group(1)
        return None

    def read_links(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """Outbound links, unwrapped from VK's ``/away.php?to=`` redirect."""
        return _unique(unwrap_away(url) for url in super().read_links(node, base_url))


def relative_time(label: str | None, now: datetime | None) -> str | None:
    """A VK date label read against the capture time ``now``: "today at 3:40 pm",
    "вчера в 9:10", "16 апр в 15:42" (this year, or last year when that date is still to
    come). None without ``now`` or when the label is not one of these; labels with a year
    are read by ``page_time``.
    """
    if not label or now is None:
        return None
    text = label.strip().lower()
    clock = _CLOCK.search(text)
    if clock is None:
        return None
    hour, minute = int(clock.group(1)), int(clock.group(2))
    meridiem = (clock.group(3) or "").replace(".", "")
    if meridiem and not 1 <= hour <= 12:
        return None
    if meridiem == "pm" and hour != 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    now = now.astimezone(UTC)
    first = text.split()[0]
    try:
        if first in _DAY_WORDS:
            day = now - timedelta(days=_DAY_WORDS[first])
            moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
        elif (match := _DAY_MONTH.match(text)) and match.group(2)[:3] in _MONTHS:
            month, day_of_month = _MONTHS[match.group(2)[:3]], int(match.group(1))
            moment = now.replace(
                month=month, day=day_of_month, hour=hour, minute=minute, second=0, microsecond=0
            )
            if moment > now:  # no year shown: the most recent such date
                moment = moment.replace(year=now.year - 1)
        else:
            return None
    except ValueError:  # 31 Feb and the like: not a date
        return None
    return to_iso(moment)


def unwrap_away(url: str) -> str:
    """``https://vk.com/away.php?to=https%3A%2F%2Fshop.example`` -> the shop URL."""
    parts = urlsplit(url)
    if parts.path == "/away.php" and (parts.hostname or "").endswith("vk.com"):
        target = dict(parse_qsl(parts.query)).get("to")
        if target and urlsplit(target).scheme in ("http", "https"):
            return target
    return url
