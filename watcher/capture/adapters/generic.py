"""The ``generic`` adapter: every selector comes from the watchlist (marketplaces, forums)."""

from __future__ import annotations

from watcher.capture.adapters.base import Adapter, register_adapter
from watcher.capture.recipe import Recipe


@register_adapter
class GenericAdapter(Adapter):
    """Listing pages described entirely by a target's ``selectors`` block."""

    name = "generic"
    default_recipe = Recipe()
    required_selectors = ("post", "id")
