"""The ``vk`` adapter: public walls of VK communities and profiles (``https://vk.com/<name>``)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

from selectolax.lexbor import LexborNode

from watcher.capture.adapters.base import Adapter, _unique, register_adapter
from watcher.capture.blocks import BlockRule
from watcher.capture.recipe import Recipe
from watcher.models import Post


@register_adapter
class VkAdapter(Adapter):
    """VK wall posts (``.post[data-post-id]``, ids like ``-123_456``), loaded by scrolling."""

    name = "vk"
    infinite_scroll = True
    label = "VK"
    login_url = "https://vk.com/login"
    default_recipe = Recipe.from_strings(
        {
            "post": ".post[data-post-id]",
            "id": "@data-post-id",
            "text": ".wall_post_text",
            # `time` on .rel_date is a Unix time; newer markup has <time datetime>.
            "time": ".rel_date[time]@time, time[datetime]@datetime, .rel_date@abs_time",
            "images": "a.page_post_thumb_wrap@style, .page_post_sized_thumbs img@src, "
            ".wall_text img.MediaGrid__imageElement@src",
            "link": "a.post_link@href",
            "author": ".post_author a.author, a.author, .PostHeaderTitle__authorName",
            "links": ".wall_post_text a[href]@href",
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

    def extract_post(self, node: LexborNode, base_url: str) -> Post | None:
        """A wall post; its permalink is ``https://vk.com/wall<id>`` when the page gives none."""
        post = super().extract_post(node, base_url)
        if post is None or post.permalink:
            return post
        return replace(post, permalink=f"https://vk.com/wall{post.post_id}")

    def read_links(self, node: LexborNode, base_url: str) -> tuple[str, ...]:
        """Outbound links, unwrapped from VK's ``/away.php?to=`` redirect."""
        return _unique(unwrap_away(url) for url in super().read_links(node, base_url))


def unwrap_away(url: str) -> str:
    """``https://vk.com/away.php?to=https%3A%2F%2Fshop.example`` -> the shop URL."""
    parts = urlsplit(url)
    if parts.path == "/away.php" and (parts.hostname or "").endswith("vk.com"):
        target = dict(parse_qsl(parts.query)).get("to")
        if target and urlsplit(target).scheme in ("http", "https"):
            return target
    return url
