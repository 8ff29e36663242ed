"""Cut each post out of a capture's full-page screenshot, at export, where the layout allows.

Captures do not record where each post was drawn, so the cut follows the picture itself:
feeds such as Telegram's draw every post as a card on a plain background, and the rows of
pure background between cards separate the posts. A screenshot is cut only when it splits
into exactly as many cards as the capture saw posts (at most two more at the top: a title
bar, the channel's header) and none of the posts' cards runs from edge to edge like a title
bar, so the n-th card is the n-th post; any other layout (a shop page
of plain text on white, a page longer than the screenshot) gets no cut, and the report
links the full screenshot instead. The crops are derived files: the report says so and
names the screenshot (and its SHA-256) each came from.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

MIN_GAP_PX = 6  # background rows between two cards
MIN_CARD_PX = 30  # a card shorter than this is a rule or a shadow, not a post
MAX_LEADING_BLOCKS = 2  # title bar and channel header above the first post
MARGIN_PX = 8  # background kept around a crop
MAX_PIXELS = 1280 * 20_000  # a capture's screenshot is at most 16,000 px tall


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle of the screenshot, in its pixels."""

    left: int
    top: int
    right: int
    bottom: int


def post_boxes(png: bytes, count: int) -> list[Box] | None:
    """The box of each of the ``count`` posts, in page order; None when the layout does
    not split into exactly one card per post."""
    if count <= 0:
        return None
    with Image.open(io.BytesIO(png)) as image:
        if image.width * image.height > MAX_PIXELS:
            return None
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    background = pixels[:, 1, :]  # the left edge: page background wherever a card is not
    colour = _most_common(background)
    plain = np.all(np.abs(pixels - colour) <= 3, axis=2)
    blocks = _blocks(~plain.all(axis=1))
    extra = len(blocks) - count
    if not 0 <= extra <= MAX_LEADING_BLOCKS:
        return None
    boxes = []
    for top, bottom in blocks[extra:]:
        columns = np.flatnonzero(~plain[top:bottom].all(axis=0))
        left, right = int(columns[0]), int(columns[-1]) + 1
        if left == 0 and right == pixels.shape[1]:
            return None  # edge to edge: a title bar or a banner, not a post's card
        boxes.append(
            Box(
                max(0, left - MARGIN_PX),
                max(0, top - MARGIN_PX),
                min(pixels.shape[1], right + MARGIN_PX),
                min(pixels.shape[0], bottom + MARGIN_PX),
            )
        )
    return boxes


def crop_png(png: bytes, box: Box) -> bytes:
    """The ``box`` of a PNG screenshot, as PNG (lossless: it is read as evidence)."""
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.crop((box.left, box.top, box.right, box.bottom)).save(out, "PNG", optimize=False)
    return out.getvalue()


def _most_common(column: np.ndarray) -> np.ndarray:
    values, counts = np.unique(column.reshape(-1, 3), axis=0, return_counts=True)
    return values[int(np.argmax(counts))]


def _blocks(busy: np.ndarray) -> list[tuple[int, int]]:
    """Runs of busy rows separated by at least MIN_GAP_PX plain rows. A run shorter than
    MIN_CARD_PX (a listing's title, a date line) joins the nearer of its neighbours: it
    belongs to the post it is drawn closest to."""
    rows = np.flatnonzero(busy)
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) > MIN_GAP_PX)
    starts = np.concatenate(([rows[0]], rows[breaks + 1]))
    ends = np.concatenate((rows[breaks], [rows[-1]])) + 1
    blocks = [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
    while len(blocks) > 1:
        short = next((i for i, (s, e) in enumerate(blocks) if e - s < MIN_CARD_PX), None)
        if short is None:
            break
        above = blocks[short][0] - blocks[short - 1][1] if short > 0 else None
        below = blocks[short + 1][0] - blocks[short][1] if short + 1 < len(blocks) else None
        other = short - 1 if below is None or (above is not None and above < below) else short + 1
        first, last = sorted((short, other))
        blocks[first : last + 1] = [(blocks[first][0], blocks[last][1])]
    return blocks
