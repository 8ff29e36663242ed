"""Propose a ``generic`` recipe for an unknown listing page (``watcher probe URL --suggest``).

A listing shows the same card again and again: an element repeated with text, a link and
usually a photo. This finds the most likely such element and writes selectors for it, so a
person does not have to read the page's HTML. Pure: HTML in, a :class:`Suggestion` out.

How: every element gets a signature (tag, classes, the ``data-*`` attributes that name a
role such as ``data-cy="l-card"``); signatures seen at least twice are candidates; each is
scored by how many of its elements carry a link, text and an image, and by how many
*different* links they carry (a card's links differ, a menu's items share a layout but not a
purpose). Inside the winner, the link that differs from card to card gives ``id`` and
``link``, the images that most cards have (not icons) give ``images``, and a ``time`` or
``datetime`` attribute gives ``time``. The card's own text is the text (``:scope``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.capture.adapters.base import node_text

# Attributes that name an element's role on the sites seen (olx: data-cy, data-testid).
_ROLE_ATTRS = ("data-cy", "data-testid", "data-role", "itemtype", "role")
# Attributes that hold an item's own id (Telegram's data-post, shops' data-id ...).
_ID_ATTRS = (
    "data-post",
    "data-post-id",
    "data-id",
    "data-item-id",
    "data-ad-id",
    "data-listing-id",
    "data-product-id",
    "data-offer-id",
)
# ARIA roles every link or button carries (Facebook marks each `a` role="link"): they say
# what an element is, not which kind of card, so the classes sign it instead.
_GENERIC_ROLES = frozenset({"link", "button", "presentation", "none", "img"})
_SKIP_TAGS = frozenset({"html", "body", "head", "script", "style", "noscript", "svg", "path"})
_ICON_SUFFIXES = (".svg", ".gif", ".ico")


@dataclass(frozen=True)
class Suggestion:
    """A proposed recipe (selector name -> CSS, as a watchlist's ``selectors:`` takes it) and
    how many elements its ``post`` selector matches."""

    selectors: dict[str, str]
    items: int
    why: str


def suggest_recipe(html: str) -> Suggestion | None:
    """The most likely listing recipe for the page, or None when nothing repeats."""
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return None
    groups: dict[str, list[LexborNode]] = defaultdict(list)
    for node in root.traverse(include_text=False):
        if node.tag in _SKIP_TAGS or node.tag.startswith("-"):
            continue
        groups[_css_of(node)].append(node)
    best: tuple[float, str, list[LexborNode]] | None = None
    for css, nodes in groups.items():
        if len(nodes) < 2 or _nested(nodes):
            continue
        score = _score(nodes)
        # Ties go to the outer element: the whole card rather than its title.
        if score > 0 and (
            best is None or score > best[0] or (score == best[0] and _contains(nodes, best[2]))
        ):
            best = (score, css, nodes)
    if best is None:
        return None
    _score_value, css, nodes = best
    post_css = _unique_css(tree, css, nodes)
    if not all(_links(n) for n in nodes):
        # Cards without any link (an empty placeholder, an ad slot) are not listings.
        post_css = f"{post_css}:has(a[href])"
        nodes = [n for n in nodes if _links(n)]
    selectors = {"post": post_css, "text": ":scope"}
    id_attr = next((a for a in _ID_ATTRS if f"[{a}]" in css), None)
    link = _link_selector(nodes)
    if link:
        selectors["id"] = link
        selectors["link"] = link
    if id_attr:
        selectors["id"] = f"@{id_attr}"
    images = _image_selector(nodes)
    if images:
        selectors["images"] = images
    time = _time_selector(nodes)
    if time:
        selectors["time"] = time
    why = (
        f"{len(nodes)} elements `{post_css}` repeat with text"
        + (", a link" if link else "")
        + (" and photos" if images else "")
    )
    return Suggestion(selectors, len(nodes), why)


def _css_of(node: LexborNode) -> str:
    """``div.a-card`` / ``div[data-cy="l-card"]`` / ``article``: the element's signature."""
    attrs = node.attributes
    for name in _ID_ATTRS:
        if attrs.get(name):
            return f"{node.tag}[{name}]"
    for name in _ROLE_ATTRS:
        value = attrs.get(name)
        if name == "role" and value in _GENERIC_ROLES:
            continue
        if value and '"' not in value:
            return f'{node.tag}[{name}="{value}"]'
    classes = sorted(c for c in (attrs.get("class") or "").split() if _plain(c))
    return node.tag + "".join(f".{c}" for c in classes)


def _plain(name: str) -> bool:
    """A class name usable in a selector as written (Tailwind's ``w-1/2`` is not)."""
    return name.replace("-", "").replace("_", "").isalnum()


def _nested(nodes: list[LexborNode]) -> bool:
    """True when some of the elements sit inside others (a tree, not a list of cards)."""
    ids = {n.mem_id for n in nodes}
    for node in nodes:
        parent = node.parent
        while parent is not None:
            if parent.mem_id in ids:
                return True
            parent = parent.parent
    return False


def _contains(outer: list[LexborNode], inner: list[LexborNode]) -> bool:
    """True when the first of ``inner`` lies inside one of ``outer``."""
    ids = {n.mem_id for n in outer}
    parent = inner[0].parent
    while parent is not None:
        if parent.mem_id in ids:
            return True
        parent = parent.parent
    return False


def _links(node: LexborNode) -> list[LexborNode]:
    own = [node] if node.tag == "a" and node.attributes.get("href") else []
    return own + [a for a in node.css("a[href]") if not a.attributes["href"].startswith("#")]


def _photos(node: LexborNode) -> list[LexborNode]:
    return [i for i in node.css("img[src]") if not _is_icon(i)]


def _is_icon(img: LexborNode) -> bool:
    src = (img.attributes.get("src") or "").lower().split("?")[0]
    return src.endswith(_ICON_SUFFIXES) or src.startswith("data:")


def _score(nodes: list[LexborNode]) -> float:
    count = len(nodes)
    with_text = sum(1 for n in nodes if len(node_text(n)) >= 3) / count
    with_link = sum(1 for n in nodes if _links(n)) / count
    if with_text < 0.5 or with_link < 0.5:
        return 0.0
    first_links = [_links(n)[0].attributes["href"] for n in nodes if _links(n)]
    distinct = len(set(first_links)) / max(1, len(first_links))
    with_photo = sum(1 for n in nodes if _photos(n)) / count
    # A card says something (a title, a price); a footer's "07:26" or a menu entry hardly.
    wordy = min(1.0, sum(len(node_text(n)) for n in nodes) / count / 30)
    score = count * with_text * with_link * wordy * (0.5 + distinct) * (1 + 0.5 * with_photo)
    css = _css_of(nodes[0])
    if css.isalpha():  # a bare tag (every `a`, every `li`) is rarely one kind of card
        score *= 0.5
    if "[data-" in css and any(f"[{a}]" in css for a in _ID_ATTRS):  # an item with its own id
        score *= 2
    return score


def _unique_css(tree: LexborHTMLParser, css: str, nodes: list[LexborNode]) -> str:
    """``css``, narrowed by the parent's signature when it matches more than ``nodes``."""
    if len(tree.css(css)) == len(nodes):
        return css
    parent = nodes[0].parent
    if parent is not None and parent.tag not in ("html", "body"):
        narrowed = f"{_css_of(parent)} > {css}"
        if len(tree.css(narrowed)) == len(nodes):
            return narrowed
    return css


def _link_selector(nodes: list[LexborNode]) -> str | None:
    """The link whose address differs from card to card (the listing's own page)."""
    if all(n.tag == "a" and n.attributes.get("href") for n in nodes):
        return "@href"
    slots: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        links = _links(node)
        if links:  # the card's first link, whatever its classes (they vary card to card)
            slots["a[href]"].append(links[0].attributes["href"])
        seen: set[str] = set()
        for link in _links(node):
            css = _css_of(link)
            if css not in seen:
                seen.add(css)
                slots[css].append(link.attributes["href"])
    if not slots:
        return None
    # Most cards, then most distinct addresses, then the first on the card.
    order = list(slots)
    css = max(order, key=lambda c: (len(slots[c]), len(set(slots[c])), -order.index(c)))
    return f"{css}@href"


def _image_selector(nodes: list[LexborNode]) -> str | None:
    """The image kind most cards have: ``<img>`` or a CSS background; icons left out, and
    an image that is the same on every card (the seller's avatar, a logo)."""
    kinds: Counter[str] = Counter()
    sources: dict[str, set[str]] = defaultdict(set)
    for node in nodes:
        found = {}
        for img in _photos(node):
            found[f"{_image_css(node, img)}@src"] = img.attributes.get("src") or ""
        for el in node.css('[style*="background-image"]'):
            if el.tag not in ("i", "span") or el.css_first("*") is None:
                found.setdefault(f"{_css_of(el)}@style", el.attributes.get("style") or "")
        kinds.update(found.keys())
        for kind, src in found.items():
            sources[kind].add(src)
    for kind, count in kinds.most_common():
        if count * 2 < len(nodes):
            break
        if len(sources[kind]) > 1 or len(nodes) == 1:
            return kind
    return None


def _image_css(card: LexborNode, img: LexborNode) -> str:
    own = _css_of(img)
    if own != "img":
        return own
    parent = img.parent
    if parent is None or parent.mem_id == card.mem_id:
        return "img"
    return f"{parent.tag} > img"


def _time_selector(nodes: list[LexborNode]) -> str | None:
    if sum(1 for n in nodes if n.css_first("time[datetime]")) * 2 >= len(nodes):
        return "time@datetime"
    return None
