"""Text read in photos (migration ``m012_photo_text``): which photos wait to be read, what
was read in each, and the posts that carry a photo.

Functions over a :class:`Store`; SQLite errors become ``StoreError`` through ``translated``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from watcher.detect.ocr import OcrStatus, PhotoText, TextBox
from watcher.store.db import Store, translated


@dataclass(frozen=True, slots=True)
class PhotoPost:
    """A post version that carries a photo, with where its first alert is."""

    target: str
    post_id: str
    version_id: int
    capture_id: int
    permalink: str | None


@translated
def unread_photos(store: Store, limit: int = 1) -> list[str]:
    """Photos not read yet, the newest first: a new post's photos come before the backlog."""
    rows = store.db.execute(
        "SELECT i.sha256 FROM images i WHERE i.error IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM photo_text p WHERE p.sha256 = i.sha256)"
        " ORDER BY i.rowid DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [r[0] for r in rows]


@translated
def count_unread(store: Store) -> int:
    """How many photos wait to be read."""
    return store.db.execute(
        "SELECT COUNT(*) FROM images i WHERE i.error IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM photo_text p WHERE p.sha256 = i.sha256)"
    ).fetchone()[0]


@translated
def insert_photo_text(store: Store, sha256: str, result: PhotoText, now: str) -> None:
    """Keep what was read in one photo (or why it was not); call inside a transaction."""
    boxes = json.dumps([b.to_json() for b in result.boxes], ensure_ascii=False)
    store.db.execute(
        "INSERT INTO photo_text (sha256, status, text, boxes, reason, width, height, engine,"
        " seconds, read_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            sha256,
            str(result.status),
            result.text,
            boxes,
            result.reason,
            result.width,
            result.height,
            result.engine,
            round(result.seconds, 3),
            now,
        ],
    )


@translated
def photo_text(store: Store, sha256: str) -> PhotoText | None:
    """What was read in the photo, or None when it was not read yet."""
    row = store.db.execute(
        "SELECT status, boxes, reason, width, height, seconds, engine FROM photo_text"
        " WHERE sha256 = ?",
        [sha256],
    ).fetchone()
    if row is None:
        return None
    boxes = tuple(TextBox.from_json(b) for b in json.loads(row[1] or "[]"))
    return PhotoText(
        OcrStatus(row[0]),
        boxes,
        row[2] or "",
        row[3] or 0,
        row[4] or 0,
        row[5] or 0.0,
        row[6] or "",
    )


@translated
def read_text(store: Store, sha256: str) -> str:
    """The text read in the photo ("" when not read yet, or nothing was read)."""
    row = store.db.execute(
        "SELECT text FROM photo_text WHERE sha256 = ? AND status = 'ok'", [sha256]
    ).fetchone()
    return row[0] if row and row[0] else ""


@translated
def photo_posts(store: Store, sha256: str) -> list[PhotoPost]:
    """The current version of every post that carries the photo, oldest post first."""
    rows = store.db.execute(
        "SELECT p.target, p.post_id, v.id, v.capture_id, v.permalink FROM post_images pi"
        " JOIN post_versions v ON v.id = pi.version_id JOIN posts p ON p.id = v.post_row"
        " WHERE pi.sha256 = ? AND v.id = p.current_version_id GROUP BY p.id ORDER BY p.id",
        [sha256],
    ).fetchall()
    return [PhotoPost(*r) for r in rows]


@translated
def first_alert(store: Store, target: str, post_id: str) -> tuple[int, str] | None:
    """The post's own first event (new post, keyword, edit): its id and time."""
    row = store.db.execute(
        "SELECT id, created_at FROM events WHERE target = ? AND post_id = ?"
        " AND kind IN ('new_post', 'keyword', 'edited_post', 'restored_post') ORDER BY id LIMIT 1",
        [target, post_id],
    ).fetchone()
    return (row[0], row[1]) if row else None
