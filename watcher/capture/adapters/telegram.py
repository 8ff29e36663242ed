"""The ``telegram`` adapter: public channel previews at ``https://t.me/s/<channel>``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from watcher.capture.adapters.base import Adapter, page_time, register_adapter
from watcher.capture.blocks import BlockRule
from watcher.capture.recipe import Recipe
from watcher.models import PageEvent, Post


@register_adapter
class TelegramAdapter(Adapter):
    """Telegram's server-rendered channel preview; older posts come from ``?before=<id>``."""

    name = "telegram"
    oldest_first = True
    label = "Telegram"
    login_url = "https://web.telegram.org/"
    default_recipe = Recipe.from_strings(
        {
            # Service messages ("Channel created", "Channel photo updated", pins) carry
            # data-post on real pages too; they are page events, not posts.
            "post": ".tgme_widget_message[data-post]:not(.service_message)",
            "id": "@data-post",
            "text": ".tgme_widget_message_text",
            "time": "a.tgme_widget_message_date time@datetime",
            # Album items and video thumbnails are photos too (a dealer's video still is
            # reposted like any photo); link-preview thumbnails and avatars are not.
            "images": "a.tgme_widget_message_photo_wrap, i.tgme_widget_message_video_thumb, "
            "i.tgme_widget_message_roundvideo_thumb@style",
            "link": "a.tgme_widget_message_date@href",
            "author": ".tgme_widget_message_from_author, .tgme_widget_message_owner_name",
            "links": ".tgme_widget_message_text a@href",
            "videos": "video.tgme_widget_message_video@src",
            "forwarded": ".tgme_widget_message_forwarded_from_name",
            "views": ".tgme_widget_message_views",
            "edited": ".tgme_widget_message_meta",
            "preview": "a.tgme_widget_message_link_preview@href",
        }
    )
    block_rules = (
        BlockRule(
            "geo_blocked",
            phrases=(
                "can't be displayed in your country",
                "violated local laws",
                "is not available in your country",
                "blocked in your country",
            ),
        ),
        BlockRule(
            "content_unavailable",
            phrases=(
                "this channel can't be displayed",
                "this channel is blocked",
                "this group can't be displayed",
                "violated telegram's terms of service",
            ),
        ),
    )

    def page_events(self, html: str, base_url: str) -> list[PageEvent]:
        """Service messages: the channel created, renamed, its photo changed, a pin."""
        events = []
        for node in LexborHTMLParser(html).css(".tgme_widget_message.service_message[data-post]"):
            post_id = (node.attributes.get("data-post") or "").strip()
            if post_id:
                events.append(
                    PageEvent(
                        post_id=post_id,
                        kind="service",
                        text=self.read_text(node),
                        posted_at=page_time(self.read_first(node, self.recipe.time)),
                    )
                )
        return events

    def older_page_url(self, url: str, posts: list[Post]) -> str | None:
        """URL of the page before the oldest post read so far, or None when there is none."""
        numbers = [n for p in posts if (n := message_number(p.post_id)) is not None]
        if not numbers:
            return None
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "before"]
        query.append(("before", str(min(numbers))))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def platform_block(
        self, html: str, final_url: str, requested_url: str, posts: list[Post]
    ) -> str | None:
        """Telegram's "no preview": ``/s/<name>`` sent on to the ``t.me/<name>`` card."""
        if not posts and is_info_card(html, final_url, requested_url):
            return "no_preview"
        return None


def is_info_card(html: str, final_url: str, requested_url: str) -> bool:
    """True when a ``/s/`` preview was answered by the channel's info card (no messages).

    Telegram redirects ``t.me/s/<name>`` to ``t.me/<name>`` when the channel has no public
    preview; that card has ``tgme_page`` and no ``tgme_widget_message``.
    """
    asked_preview = urlsplit(requested_url).path.startswith("/s/")
    still_preview = urlsplit(final_url).path.startswith("/s/")
    tree = LexborHTMLParser(html or "<html></html>")
    card = tree.css_first(".tgme_page") is not None
    messages = tree.css_first(".tgme_widget_message") is not None
    return asked_preview and not still_preview and card and not messages


def message_number(post_id: str) -> int | None:
    """123 from ``channel/123``."""
    tail = post_id.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
