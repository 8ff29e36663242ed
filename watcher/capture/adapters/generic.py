"""The ``generic`` adapter: every selector comes from the watchlist (marketplaces, forums)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborNode

from watcher.capture.adapters.base import Adapter, register_adapter
from watcher.capture.recipe import Recipe

# Query parameters that say how a visitor came to a listing, not which listing it is. A
# listing's link carries them per visit (Facebook Marketplace's tracking=browse_serp:<uuid>
# is new on every page load), so an id read from a link without dropping them would change
# on every capture and every listing would look deleted and new.
_TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "yclid",
        "igshid",
        "__tn__",
        "__cft__",
        "tracking",
        "ref",
        "referral_code",
        "referral_story_type",
        "search_id",
        "advert_position",
        "spm",
        "scm",
    }
)


@register_adapter
class GenericAdapter(Adapter):
    """Listing pages described entirely by a target's ``selectors`` block."""

    name = "generic"
    default_recipe = Recipe()
    required_selectors = ("post", "id")

    def read_id(self, node: LexborNode, base_url: str) -> str | None:
        """The id the recipe reads; a link without its per-visit tracking parameters."""
        value = super().read_id(node, base_url)
        return without_tracking(value) if value else value


def without_tracking(value: str) -> str:
    """``/item/1/?ref=search&tracking=x&color=red`` -> ``/item/1/?color=red``; a value that
    is not a link with a query is returned as it is."""
    if not (value.startswith(("/", "http://", "https://")) and "?" in value):
        return value
    parts = urlsplit(value)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in _TRACKING and not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
