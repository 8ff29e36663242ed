"""Recipes: a platform's selectors as data, so a watchlist can patch them the day markup changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

_ATTR = re.compile(r"@([A-Za-z_:][-A-Za-z0-9_:.]*)\s*$")

RECIPE_FIELDS = ("post", "id", "text", "time", "images", "link", "author", "links")


@dataclass(frozen=True, slots=True)
class Selector:
    """A CSS selector with an optional ``@attribute``.

    ``css`` None means the element itself (the post element for per-post fields), so
    ``@data-id`` reads an attribute of the post element.
    """

    css: str | None
    attr: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``"a.date time@datetime"`` or ``"@data-post"`` or ``".text"``.

        Raises ValueError when the text is empty.
        """
        text = text.strip()
        if not text:
            raise ValueError("empty selector")
        match = _ATTR.search(text)
        # An @ inside brackets or quotes belongs to the CSS (a[href*="@x"]), not to us.
        if match and text.count("[", 0, match.start()) == text.count("]", 0, match.start()):
            css = text[: match.start()].strip() or None
            return cls(css=css, attr=match.group(1))
        return cls(css=text, attr=None)

    def __str__(self) -> str:
        return f"{self.css or ''}{'@' + self.attr if self.attr else ''}"


@dataclass(frozen=True, slots=True)
class Recipe:
    """The selectors an adapter uses; every field may be overridden by a target's ``selectors``."""

    post: Selector | None = None
    id: Selector | None = None
    text: Selector | None = None
    time: Selector | None = None
    images: Selector | None = None
    link: Selector | None = None
    author: Selector | None = None
    links: Selector | None = None

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> Recipe:
        """Build a recipe from ``{"post": ".item", "id": "@data-id", ...}``."""
        unknown = set(values) - set(RECIPE_FIELDS)
        if unknown:
            raise ValueError(f"unknown selector name(s): {', '.join(sorted(unknown))}")
        return cls(**{k: Selector.parse(v) for k, v in values.items() if v})

    def overridden(self, values: dict[str, str] | None) -> Recipe:
        """This recipe with the given fields replaced (a watchlist ``selectors`` block)."""
        if not values:
            return self
        patch = Recipe.from_strings(values)
        changes = {f.name: getattr(patch, f.name) for f in fields(patch) if getattr(patch, f.name)}
        return replace(self, **changes)
