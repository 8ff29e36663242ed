"""The ``telegram`` adapter: public channel previews at ``https://t.me/s/<channel>``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from watcher.capture.adapters.base import Adapter, register_adapter
from watcher.capture.recipe import Recipe
from watcher.models import Post


@register_adapter
class TelegramAdapter(Adapter):
    """Telegram's server-rendered channel preview; older posts come from ``?before=<id>``."""

    name = "telegram"
    oldest_first = True
    default_recipe = Recipe.from_strings(
        {
            "post": ".tgme_widget_message[data-post]",
            "id": "@data-post",
            "text": ".tgme_widget_message_text",
            "time": "a.tgme_widget_message_date time@datetime",
            "images": "a.tgme_widget_message_photo_wrap@style",
            "link": "a.tgme_widget_message_date@href",
            "author": ".tgme_widget_message_from_author, .tgme_widget_message_owner_name",
            "links": ".tgme_widget_message_text a@href",
        }
    )

    def older_page_url(self, url: str, posts: list[Post]) -> str | None:
        """URL of the page before the oldest post read so far, or None when there is none."""
        numbers = [n for p in posts if (n := message_number(p.post_id)) is not None]
        if not numbers:
            return None
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "before"]
        query.append(("before", str(min(numbers))))
        return urlunsplit(parts._replace(query=urlencode(query)))


def message_number(post_id: str) -> int | None:
    """123 from ``channel/123``."""
    tail = post_id.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
