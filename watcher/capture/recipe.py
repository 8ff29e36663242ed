"""Recipes: a platform's selectors as data, so a watchlist can patch them the day markup changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

# The post element itself, read as text (``text: ":scope"``: a listing card's whole text).
SCOPE = ":scope"
_ATTR = re.compile(r"@([A-Za-z_:][-A-Za-z0-9_:.]*)\s*$")

RECIPE_FIELDS = (
    "post",
    "id",
    "text",
    "time",
    "images",
    "link",
    "author",
    "links",
    # Platform details (Post.video_urls, forwarded_from, views, edited, link_preview).
    "videos",
    "forwarded",
    "views",
    "edited",
    "preview",
    # Browser-side: "See more" buttons to click before reading (Playwright CSS, may use
    # :text-is()), and marketplace listing cards (Facebook Marketplace seller pages).
    "see_more",
    "listing",
)


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
        if text == SCOPE:
            return cls(css=None, attr=None)
        match = _ATTR.search(text)
        # An @ inside brackets or quotes belongs to the CSS (a[href*="@x"]), not to us.
        if match and text.count("[", 0, match.start()) == text.count("]", 0, match.start()):
            css = text[: match.start()].strip() or None
            return cls(css=css, attr=match.group(1))
        return cls(css=text, attr=None)

    def __str__(self) -> str:
        if self.css is None and self.attr is None:
            return SCOPE
        return f"{self.css or ''}{'@' + self.attr if self.attr else ''}"

    def parts(self) -> list[Selector]:
        """``a@style, img@src`` as ``[a@style, img@src]``: the alternatives of a selector list.

        Each alternative may carry its own ``@attribute`` (a photo may be a CSS background on
        one element or an ``<img>`` on another); one without takes the list's final one.
        """
        if self.css is None:
            return [self]
        pieces, depth, start = [], 0, 0
        for index, char in enumerate(self.css):
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            if char == "," and depth == 0:
                pieces.append(self.css[start:index])
                start = index + 1
        pieces.append(self.css[start:])
        result = []
        for piece in (p.strip() for p in pieces):
            if not piece:
                continue
            own = Selector.parse(piece)
            result.append(own if own.attr else Selector(own.css, self.attr))
        return result

    @property
    def plain_css(self) -> str | None:
        """The CSS of every alternative without attributes, for one query in page order."""
        if self.css is None:
            return None
        return ", ".join(p.css for p in self.parts() if p.css)


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
    videos: Selector | None = None
    forwarded: Selector | None = None
    views: Selector | None = None
    edited: Selector | None = None
    preview: Selector | None = None
    see_more: Selector | None = None
    listing: Selector | None = None

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
