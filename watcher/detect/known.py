"""Reference photos the team already knows (``images.known:`` folders): seized items, photos
from earlier cases. They are hashed at start; a captured image near one alerts with its name.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watcher.detect.images import (
    SAME_PHOTO_DISTANCE,
    ImageDecodeError,
    hamming,
    perceptual_hashes,
)
from watcher.kinds import KnownImageMatch, Reference

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# A reference photo larger than this is skipped (and reported): nobody keeps 50 MB photos of
# seized items, and hashing stays bounded in time and memory.
MAX_KNOWN_BYTES = 50_000_000
# A folder pointed at the wrong place (a whole disk) must not stall start-up.
MAX_KNOWN_FILES = 100_000


@dataclass(frozen=True, slots=True)
class KnownImage:
    """A reference photo: its name (path inside its folder), file, SHA-256 and hashes."""

    name: str
    path: Path
    sha256: str
    phash: int
    dhash: int | None = None


Reporter = Callable[[Path, str], None]


def _log_problem(path: Path, problem: str) -> None:
    log.warning("known image %s skipped: %s", path, problem)


def load_known_images(
    folders: list[str], base_dir: Path, on_problem: Reporter = _log_problem
) -> list[KnownImage]:
    """Hash every jpg/png/webp under ``folders`` (relative to ``base_dir``), recursively.

    A missing folder or an unreadable, oversized or undecodable file is reported through
    ``on_problem`` (a warning by default) and skipped: one bad file must not stop watching.
    """
    known: list[KnownImage] = []
    for folder in folders:
        root = (base_dir / folder).expanduser()
        if not root.is_dir():
            on_problem(root, "not a folder (check images.known in the watchlist)")
            continue
        for path in _image_files(root, MAX_KNOWN_FILES - len(known), on_problem):
            image = _load_one(root, path, on_problem)
            if image is not None:
                known.append(image)
    return known


def _image_files(root: Path, budget: int, on_problem: Reporter) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) > budget:
        on_problem(root, f"more than {MAX_KNOWN_FILES} reference images; only the first are used")
    return files[: max(budget, 0)]


def _load_one(root: Path, path: Path, on_problem: Reporter) -> KnownImage | None:
    try:
        size = path.stat().st_size
        if size > MAX_KNOWN_BYTES:
            on_problem(path, f"{size} bytes, over the {MAX_KNOWN_BYTES} byte limit")
            return None
        data = path.read_bytes()
        hashes = perceptual_hashes(data)
    except OSError as exc:
        on_problem(path, f"cannot read it ({exc.strerror or exc})")
        return None
    except ImageDecodeError as exc:
        on_problem(path, str(exc))
        return None
    name = path.relative_to(root).as_posix()
    if root.name:
        name = f"{root.name}/{name}"  # which folder it came from: "seized-2023/tusk-01.jpg"
    return KnownImage(name, path, hashlib.sha256(data).hexdigest(), hashes.phash, hashes.dhash)


def match_known(
    phash: int, known: list[KnownImage], max_distance: int = SAME_PHOTO_DISTANCE
) -> list[tuple[KnownImage, int]]:
    """Reference photos within ``max_distance`` of ``phash``, closest first.

    A plain scan: reference sets are hundreds to thousands of photos, well under a
    millisecond; the archive-wide index is for millions.
    """
    hits = [(image, hamming(phash, image.phash)) for image in known]
    hits = [(image, d) for image, d in hits if d <= max_distance]
    return sorted(hits, key=lambda hit: (hit[1], hit[0].name))


def known_match_details(
    image_sha256: str, matches: list[tuple[KnownImage, int]]
) -> KnownImageMatch:
    """The payload of a captured image that matches reference photos (closest first)."""
    return KnownImageMatch(
        image_sha256=image_sha256,
        reference=matches[0][0].name,
        distance=matches[0][1],
        references=tuple(
            Reference(name=image.name, sha256=image.sha256, distance=distance)
            for image, distance in matches
        ),
    )
