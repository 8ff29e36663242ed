"""Perceptual image hashes and the near-duplicate index over every archived image.

Dealers hand product photos to front men who repost them resized, recompressed or
watermarked; a 64-bit pHash survives that, so two images within a small Hamming distance are
taken as the same photo.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

from watcher.detect.image_index import SAME_PHOTO_DISTANCE, MultiIndexHash

# The near-duplicate index over every archived image (multi-index hashing, see image_index).
ImageIndex = MultiIndexHash

__all__ = [
    "DHASH_CONFIRM_DISTANCE",
    "MAX_PIXELS",
    "SAME_PHOTO_DISTANCE",
    "ImageDecodeError",
    "ImageHashes",
    "ImageIndex",
    "hamming",
    "perceptual_hashes",
]

# dHash veto for pHash matches, when both images have one. Measured on make_photo seeds 1-100:
# a hard repost (half size, quality 60, 5 % crop per edge, watermark) is within 16 of its
# original; unrelated photos are 15+ apart and random pairs average 32. So dHash cannot
# *decide* a match (the ranges overlap), but above 24 it reliably says "not the same photo",
# which removes chance pHash collisions that become likely at millions of images.
DHASH_CONFIRM_DISTANCE = 24
# Decoding is bounded: a "100-megapixel" or decompression-bomb image is recorded, not hashed.
MAX_PIXELS = 80_000_000
# pHash looks at 32x32 pixels: a JPEG decoded at 1/2-1/8 scale, no smaller than this, gives it
# the same hashes (repost distances measured on 40 demo photos x 5 repost kinds: mean 2.3 bits
# either way, no unrelated pair within 10) at a quarter of the CPU of a 512 px decode, and a
# 1280x960 photo no longer decodes at full size (512 px could not be reached by halving).
HASH_DECODE_SIZE = (128, 128)


class ImageDecodeError(ValueError):
    """The bytes are not an image we can decode safely."""


@dataclass(frozen=True, slots=True)
class ImageHashes:
    """Perceptual hashes of one image as 64-bit integers, with its pixel size."""

    phash: int
    dhash: int
    width: int
    height: int


def perceptual_hashes(data: bytes) -> ImageHashes:
    """pHash and dHash of an encoded image; raises ImageDecodeError for unusable bytes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageDecodeError(f"image too large to decode ({width}x{height} pixels)")
            # JPEG can decode straight to a small grey image (both hashes read only luma): far
            # less memory and time than full size in colour. On 200 photos the hashes were
            # bit for bit those of a full-colour decode converted to grey.
            image.draft("L", HASH_DECODE_SIZE)
            image = image if image.mode == "L" else image.convert("RGB").convert("L")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large to decode ({exc})") from exc
    except UnidentifiedImageError as exc:
        # Pillow's own message names its in-memory buffer (<_io.BytesIO object at 0x...>).
        raise ImageDecodeError(
            "not a readable image (its bytes are in no picture format watcher knows)"
        ) from exc
    except (OSError, SyntaxError) as exc:
        raise ImageDecodeError(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    return ImageHashes(
        phash=_as_int(imagehash.phash(image)),
        dhash=_as_int(imagehash.dhash(image)),
        width=width,
        height=height,
    )


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def _as_int(value: imagehash.ImageHash) -> int:
    return int(str(value), 16)
