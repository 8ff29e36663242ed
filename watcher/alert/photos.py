"""Which stored photos Telegram will take as photos.

Telegram refuses a whole message for one photo it cannot use: bytes that are not an image, a
file over 10 MB, width + height over 10,000 pixels or one side over 20 times the other. A
dealer's page can serve any of these, so each photo is checked before it is attached; one
that fails stays in the evidence and the alert says it was not attached, instead of the whole
alert being refused.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from watcher.detect.images import MAX_PIXELS

PHOTO_MAX_BYTES = 10 * 1024 * 1024
MAX_SIDES = 10_000  # width + height
MAX_RATIO = 20  # longer side over shorter side

NOT_AN_IMAGE = "not a valid image"
TOO_BIG = "over Telegram's 10 MB"
BAD_SHAPE = "proportions Telegram refuses"


def photo_problem(data: bytes) -> str | None:
    """Why Telegram would refuse ``data`` as a photo, or None when it is fine.

    Decoding is bounded: the size is read from the header first, and an image whose pixels
    could not be a Telegram photo anyway is refused before any pixel is decoded.
    """
    if len(data) > PHOTO_MAX_BYTES:
        return TOO_BIG
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if not width or not height or width * height > MAX_PIXELS:
                    return NOT_AN_IMAGE if not width or not height else BAD_SHAPE
                if width + height > MAX_SIDES or max(width, height) > MAX_RATIO * min(
                    width, height
                ):
                    return BAD_SHAPE
                # A JPEG is decoded at a reduced scale: the whole stream is still read (broken
                # data still fails), for a fraction of the memory of a full-size decode.
                image.draft("RGB", (1024, 1024))
                image.load()  # a header with broken pixels is not an image to Telegram
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return BAD_SHAPE
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        # Pillow's ways of saying "not an image": unknown format, truncated or corrupt data.
        return NOT_AN_IMAGE
    return None
