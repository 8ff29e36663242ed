"""Screenshots kept re-encoded as strips, by the SHA-256 of Chromium's own PNG (table
``screenshot_encodings``, migration ``m016_screenshot_encodings``), so an unchanged page's
screenshot is not decoded and compressed again. Functions take a :class:`Store` first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from watcher.store.db import Store, translated


@dataclass(frozen=True, slots=True)
class ScreenshotEncoding:
    """Chromium's PNG (``original_sha256``) as the blob store keeps it: our lossless PNG of
    the same pixels (``sha256``, ``size``), and the digest of those pixels."""

    original_sha256: str
    sha256: str
    size: int
    pixels_sha256: str
    encoder: str

    def to_json(self) -> dict[str, object]:
        return {
            "original_sha256": self.original_sha256,
            "sha256": self.sha256,
            "pixels_sha256": self.pixels_sha256,
            "encoder": self.encoder,
        }


@translated
def known_encodings(store: Store, originals: Iterable[str]) -> dict[str, ScreenshotEncoding]:
    """The stored re-encodings of these Chromium PNGs, by their SHA-256."""
    shas = sorted(set(originals))
    if not shas:
        return {}
    marks = ",".join("?" * len(shas))
    rows = store.db.execute(
        "SELECT original_sha256, sha256, size, pixels_sha256, encoder FROM screenshot_encodings "
        f"WHERE original_sha256 IN ({marks})",
        shas,
    )
    return {row[0]: ScreenshotEncoding(*row) for row in rows}


@translated
def remember_encodings(store: Store, encodings: Iterable[ScreenshotEncoding], now: str) -> None:
    """Note new re-encodings (their blobs are already durable; a row noted twice keeps its
    first)."""
    with store.transaction():
        store.db.conn.executemany(
            "INSERT OR IGNORE INTO screenshot_encodings (original_sha256, sha256, size, "
            "pixels_sha256, encoder, stored_at) VALUES (?,?,?,?,?,?)",
            [
                (e.original_sha256, e.sha256, e.size, e.pixels_sha256, e.encoder, now)
                for e in encodings
            ],
        )
