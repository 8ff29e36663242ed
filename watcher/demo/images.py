"""Deterministic test photos for the demo site: originals, "reposts" and oversized files.

Every photo is drawn from ``random.Random(seed)``, so a seed always yields the same picture,
and different seeds yield pictures whose perceptual hashes are far apart. :func:`variant`
makes the kind of copy a dealer reposts elsewhere: smaller, recompressed, trimmed and
watermarked, but still the same picture to a perceptual hash.
"""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw, ImageFont

DEFAULT_SIZE = (640, 480)
_GRID = (64, 48)  # the blobs are computed at this size, then scaled up
_FORMATS = {"JPG": "JPEG", "JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF"}


def make_photo(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> Image.Image:
    """A deterministic RGB picture for ``seed``: smooth colour blobs with small dots on top.

    The blobs are a sum of the low-frequency cosines a perceptual hash (pHash) measures, each
    with a random sign (half of them positive), so one seed always hashes the same even after
    resizing, recompression and light cropping, while two seeds differ in about half the bits.
    """
    rng = random.Random(seed)
    field = _cosine_field(rng)
    low, high = min(field), max(field)
    dark = tuple(rng.randint(0, 90) for _ in range(3))
    light = tuple(rng.randint(160, 255) for _ in range(3))
    small = Image.new("RGB", _GRID)
    small.putdata([_blend(dark, light, (v - low) / (high - low)) for v in field])
    img = small.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(30):
        _dot(draw, rng, *size)
    return img


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """``img`` encoded as ``fmt`` (JPEG, PNG, WEBP or GIF) bytes."""
    pil_format = _FORMATS.get(fmt.upper())
    if pil_format is None:
        raise ValueError(f"unsupported image format {fmt!r}")
    buffer = io.BytesIO()
    if pil_format in ("JPEG", "WEBP"):
        img.convert("RGB").save(buffer, format=pil_format, quality=quality)
    else:
        img.save(buffer, format=pil_format)
    return buffer.getvalue()


def variant(
    seed: int,
    *,
    scale: float = 1.0,
    quality: int = 90,
    crop: float = 0.0,
    watermark: str | None = None,
    fmt: str = "JPEG",
) -> bytes:
    """Encoded "repost" of :func:`make_photo` ``(seed)``.

    ``crop`` is the fraction cut off each edge, ``scale`` resizes what is left, and
    ``watermark`` stamps small text in the bottom-right corner, as reposting shops do.
    """
    img = make_photo(seed)
    if crop:
        img = _crop_edges(img, crop)
    if scale != 1.0:
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new_size, Image.Resampling.LANCZOS)
    if watermark:
        img = _watermark(img, watermark)
    return encode(img, fmt=fmt, quality=quality)


def big_photo_bytes(target_bytes: int) -> bytes:
    """A valid PNG of random noise at least ``target_bytes`` long (noise does not compress)."""
    side = max(16, math.ceil(math.sqrt(target_bytes / 3)) + 16)
    noise = random.Random(target_bytes).randbytes(side * side * 3)
    img = Image.frombytes("RGB", (side, side), noise)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    if len(data) < target_bytes:  # never expected, but the contract is "at least"
        return big_photo_bytes(target_bytes + (target_bytes - len(data)) * 2)
    return data


def _cosine_field(rng: random.Random) -> list[float]:
    """Row-major values on :data:`_GRID` of a random mix of the 8x8 lowest 2-D cosines."""
    width, height = _GRID
    signs = [1.0] * 32 + [-1.0] * 31
    rng.shuffle(signs)
    weights = iter(signs)
    amp = [
        [
            0.0 if j == k == 0 else next(weights) * (1 + rng.random() / 2) / (1 + j + k)
            for k in range(8)
        ]
        for j in range(8)
    ]
    cos_x = [[math.cos(math.pi * k * (x + 0.5) / width) for x in range(width)] for k in range(8)]
    cos_y = [[math.cos(math.pi * j * (y + 0.5) / height) for y in range(height)] for j in range(8)]
    rows = [
        [sum(amp[j][k] * cos_x[k][x] for k in range(8)) for x in range(width)] for j in range(8)
    ]
    return [
        sum(cos_y[j][y] * rows[j][x] for j in range(8)) for y in range(height) for x in range(width)
    ]


def _blend(start: tuple[int, ...], end: tuple[int, ...], t: float) -> tuple[int, ...]:
    """The colour a fraction ``t`` of the way from ``start`` to ``end``."""
    return tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))


def _dot(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int) -> None:
    """A small coloured dot: texture for the JPEG encoder that leaves the hash alone."""
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    r = rng.uniform(2, 7) * width / 640
    draw.ellipse((x - r, y - r, x + r, y + r), fill=_colour(rng))


def _colour(rng: random.Random) -> tuple[int, int, int]:
    """A random colour, either dark or light, so dots stand out in greyscale too."""
    base = rng.choice((0, 150))
    return tuple(base + rng.randint(0, 105) for _ in range(3))  # type: ignore[return-value]


def _crop_edges(img: Image.Image, fraction: float) -> Image.Image:
    """``img`` with ``fraction`` of its width/height cut off each edge."""
    if not 0 <= fraction < 0.5:
        raise ValueError("crop must be a fraction in [0, 0.5)")
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _watermark(img: Image.Image, text: str) -> Image.Image:
    """``img`` with ``text`` in semi-transparent white near the bottom-right corner."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(max(10, base.height // 14))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(4, base.width // 50)
    x = base.width - (right - left) - margin
    y = base.height - (bottom - top) - margin
    draw.text((x + 1, y + 1), text, font=font, fill=(0, 0, 0, 110))
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 170))
    return Image.alpha_composite(base, layer).convert("RGB")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` (the bitmap default where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()
