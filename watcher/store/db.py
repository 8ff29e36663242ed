"""The SQLite database: every read and write of watcher's records goes through :class:`Store`.

SQLite's exceptions are translated here, once, into :class:`StoreError` with a message that
says what to do. Writes that belong together run inside :meth:`Store.transaction`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils

from watcher.errors import StoreError
from watcher.models import (
    Artifact,
    CapturedPost,
    CaptureMode,
    CaptureStatus,
    Event,
    EventKind,
    ImageRecord,
    ImageSighting,
    StoredPost,
)
from watcher.store.migrations import MIGRATIONS
from watcher.timeutil import to_iso

P = ParamSpec("P")
R = TypeVar("R")


Rec = TypeVar("Rec")
# A post version's columns by the record field each fills (StoredPost, the report's
# ReportVersion): with `from_row`, the one place a version row is read into a record.
VERSION_FIELDS = {
    "version_id": "v.id",
    "version": "v.version",
    "text": "v.text",
    "image_shas": "v.image_shas",
    "posted_at": "v.posted_at",
    "permalink": "v.permalink",
}
_DECODED: dict[str, Callable[[Any], Any]] = {
    "text": lambda text: text or "",
    "image_shas": lambda shas: tuple(json.loads(shas or "[]")),  # a JSON list in the row
}
_STORED_POST = {
    "row_id": "p.id",
    "post_id": "p.post_id",
    **VERSION_FIELDS,
    "first_seen_at": "p.first_seen_at",
    "last_seen_at": "p.last_seen_at",
    "last_capture_id": "p.last_capture_id",
    "position": "p.last_position",
    "deleted_at": "p.deleted_at",
    "deleted_capture_id": "p.deleted_capture_id",
}


def from_row(
    cls: Callable[..., Rec], fields: dict[str, str], row: Sequence[Any], **more: Any
) -> Rec:
    """The record ``cls`` from ``row``, selected as ``", ".join(fields.values())``: each
    column to its field, version text and photo hashes decoded; ``more`` adds other fields."""
    values = zip(fields, row, strict=True)
    return cls(**{name: _DECODED.get(name, _same)(value) for name, value in values}, **more)


def _same(value: Any) -> Any:
    return value


def _explain(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc).lower()
    if "disk is full" in text or "disk i/o" in text:
        return f"the disk holding {path} is full or failing; free space and run again"
    if "locked" in text or "busy" in text:
        return f"{path} is in use by another watcher process; stop it or wait and retry"
    if "not a database" in text or "malformed" in text:
        return f"{path} is damaged or not a watcher database ({exc}); restore it from a backup"
    if "readonly" in text or "unable to open" in text:
        return f"cannot write {path} ({exc}); check the folder exists and is writable"
    return f"database error in {path}: {exc}"


def _is_bug(exc: sqlite3.Error) -> bool:
    # A constraint or a statement SQLite cannot run is watcher's own mistake; a full disk, a
    # lock or a damaged file is the machine's.
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("no such" in text or "syntax" in text)


def translated(method: Callable[P, R]) -> Callable[P, R]:
    """Turn sqlite3 errors raised by a Store method into StoreError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            store = args[0]
            path = store.path  # type: ignore[attr-defined]
            raise StoreError(_explain(exc, path), bug=_is_bug(exc)) from exc

    return wrapper


@dataclass(frozen=True, slots=True)
class CaptureRow:
    """A capture as stored in ``captures``."""

    target: str
    status: CaptureStatus
    started_at: str
    ended_at: str
    requested_url: str
    final_url: str | None = None
    http_status: int | None = None
    reason: str | None = None
    message: str | None = None
    user_agent: str | None = None
    browser_version: str | None = None
    watcher_version: str | None = None
    post_count: int = 0
    baseline: bool = False
    mode: CaptureMode = CaptureMode.FULL  # a check: see steps.take.take_or_check
    fingerprint: str | None = None  # posts_fingerprint of the posts this capture saw
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CheckBaseline:
    """The last successful capture of a target as a light check sees it."""

    fingerprint: str  # of the last capture's posts
    full_started_at: str  # when the last full capture started


@dataclass(frozen=True, slots=True)
class VisibilityChange:
    """A capture found a post gone (``deleted``) or back (``restored``)."""

    change: str
    capture_id: int
    at: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An alert waiting for (or past) delivery to one chat."""

    id: int
    event: Event
    sink: str
    chat_id: str
    status: str
    attempts: int
    last_error: str | None = None
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One line of ``watcher status``."""

    name: str
    platform: str
    last_capture_at: str | None
    last_status: CaptureStatus | None
    last_reason: str | None
    live_posts: int
    deleted_posts: int
    captures: int
    failure_streak: int


class Store:
    """watcher's database in ``path`` (created and migrated on open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
            self._configure()
            MIGRATIONS.apply(self.db)
        except sqlite3.Error as exc:
            raise StoreError(_explain(exc, path)) from exc
        except OSError as exc:
            raise StoreError(f"cannot create the data folder {path.parent}: {exc}") from exc

    def _configure(self) -> None:
        # WAL lets status readers run beside a capture; FULL sync keeps a committed capture
        # on disk even when the machine loses power right after.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=10000")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.Error as exc:
            raise StoreError(_explain(exc, self.path)) from exc

    # -- targets and captures ------------------------------------------------------------
    @translated
    def upsert_target(self, name: str, platform: str, url: str, now: str) -> None:
        """Record a target from the watchlist (its settings live in the watchlist itself)."""
        self.db.execute(
            "INSERT INTO targets (name, platform, url, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET platform = excluded.platform, url = excluded.url",
            [name, platform, url, now],
        )

    @translated
    def target_names(self) -> list[str]:
        """Every target ever recorded, in name order (targets since dropped from the watchlist
        included: their captures are still evidence)."""
        return [row[0] for row in self.db.execute("SELECT name FROM targets ORDER BY name")]

    @translated
    def insert_capture(self, row: CaptureRow) -> int:
        """Store a capture record; returns its id."""
        values = {k: getattr(row, k) for k in CaptureRow.__slots__ if k != "id"}
        values["baseline"] = int(row.baseline)
        return int(self.db["captures"].insert(values).last_pk)

    @translated
    def last_capture(self, target: str) -> CaptureRow | None:
        """The most recent capture of ``target``, whatever its outcome."""
        rows = list(
            self.db["captures"].rows_where("target = ?", [target], order_by="id desc", limit=1)
        )
        return _capture_row(rows[0]) if rows else None

    @translated
    def check_baseline(self, target: str) -> CheckBaseline | None:
        """What a light check of ``target`` compares with: the last capture, when it succeeded,
        and when the last full capture started. None when there is nothing to compare with."""
        last = self.last_capture(target)
        if last is None or last.status != CaptureStatus.OK or not last.fingerprint:
            return None
        full = self.db.execute(
            "SELECT started_at FROM captures WHERE target = ? AND status = 'ok'"
            " AND mode = 'full' ORDER BY id DESC LIMIT 1",
            [target],
        ).fetchone()
        return CheckBaseline(last.fingerprint, full[0]) if full else None

    @translated
    def recent_post_counts(self, target: str, limit: int = 3) -> tuple[int, ...]:
        """How many posts each of ``target``'s last ``limit`` successful captures read,
        newest first (for telling a layout change from a quiet account)."""
        rows = self.db.execute(
            "SELECT (SELECT COUNT(*) FROM capture_posts cp WHERE cp.capture_id = c.id) "
            "FROM captures c WHERE c.target = ? AND c.status = 'ok' ORDER BY c.id DESC LIMIT ?",
            [target, limit],
        ).fetchall()
        return tuple(row[0] for row in rows)

    @translated
    def has_ok_capture(self, target: str) -> bool:
        """True once a capture of ``target`` has succeeded (its baseline exists)."""
        row = self.db.execute(
            "SELECT 1 FROM captures WHERE target = ? AND status = 'ok' LIMIT 1", [target]
        ).fetchone()
        return row is not None

    @translated
    def failure_streak(self, target: str) -> int:
        """How many captures of ``target`` have failed since the last success."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM captures WHERE target = ? AND status != 'ok' AND id > "
            "COALESCE((SELECT MAX(id) FROM captures WHERE target = ? AND status = 'ok'), 0)",
            [target, target],
        ).fetchone()
        return int(row[0])

    @translated
    def capture(self, capture_id: int) -> CaptureRow | None:
        """One capture by id."""
        rows = list(self.db["captures"].rows_where("id = ?", [capture_id]))
        return _capture_row(rows[0]) if rows else None

    # -- blobs and artifacts -------------------------------------------------------------
    @translated
    def insert_artifact(self, capture_id: int, artifact: Artifact, now: str) -> None:
        """Link an evidence file (already in the blob store) to a capture."""
        self.db.execute(
            "INSERT OR IGNORE INTO blobs (sha256, size, media_type, stored_at) VALUES (?,?,?,?)",
            [artifact.sha256, artifact.size, artifact.media_type, now],
        )
        self.db["artifacts"].insert(
            {
                "capture_id": capture_id,
                "kind": artifact.kind,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "media_type": artifact.media_type,
                "source_url": artifact.source_url,
            }
        )

    @translated
    def last_artifact_sha(self, target: str, kind: str) -> str | None:
        """SHA-256 of the newest ``kind`` artifact of ``target``'s successful captures."""
        row = self.db.execute(
            "SELECT a.sha256 FROM artifacts a JOIN captures c ON c.id = a.capture_id"
            " WHERE c.target = ? AND c.status = 'ok' AND a.kind = ? ORDER BY a.id DESC LIMIT 1",
            [target, kind],
        ).fetchone()
        return row[0] if row else None

    @translated
    def artifacts(self, capture_id: int) -> list[Artifact]:
        """Evidence files of a capture."""
        return [
            Artifact(r["kind"], r["sha256"], r["size"], r["media_type"], r["source_url"])
            for r in self.db["artifacts"].rows_where("capture_id = ?", [capture_id], order_by="id")
        ]

    # -- images ----------------------------------------------------------------------------
    @translated
    def insert_image(self, image: ImageRecord, now: str) -> bool:
        """Record an image's hashes; returns True when it was not known before."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO images (sha256, phash, dhash, width, height, media_type, size,"
            " error, first_seen_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                image.sha256,
                _hex64(image.phash),
                _hex64(image.dhash),
                image.width,
                image.height,
                image.media_type,
                image.size,
                image.error,
                now,
            ],
        )
        return cursor.rowcount == 1

    @translated
    def stored_images(self, shas: set[str]) -> dict[str, ImageRecord]:
        """What the archive recorded for images with these SHA-256s (the URL left empty)."""
        found: dict[str, ImageRecord] = {}
        wanted = sorted(shas)
        for start in range(0, len(wanted), 500):  # under SQLite's bound-variable limit
            chunk = wanted[start : start + 500]
            rows = self.db.execute(
                "SELECT sha256, size, media_type, phash, dhash, width, height, error FROM images"
                f" WHERE sha256 IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for sha, size, media_type, phash, dhash, width, height, error in rows.fetchall():
                found[sha] = ImageRecord(
                    "", sha, size, media_type, _int64(phash), _int64(dhash), width, height, error
                )
        return found

    @translated
    def image_hashes(self) -> list[tuple[str, int]]:
        """(sha256, phash) of every decodable stored image."""
        rows = self.db.execute("SELECT sha256, phash FROM images WHERE phash IS NOT NULL")
        return [(sha, int(phash, 16)) for sha, phash in rows.fetchall()]

    @translated
    def first_sighting(
        self, sha256: str, exclude_post_row: int | None = None
    ) -> ImageSighting | None:
        """The earliest stored post that carried this image (other than ``exclude_post_row``)."""
        row = self.db.execute(
            "SELECT pi.sha256, p.target, p.post_id, v.permalink, v.seen_at, v.capture_id, "
            "p.deleted_at IS NOT NULL FROM post_images pi "
            "JOIN post_versions v ON v.id = pi.version_id "
            "JOIN posts p ON p.id = v.post_row WHERE pi.sha256 = ? AND p.id != ? "
            "ORDER BY v.id LIMIT 1",
            [sha256, exclude_post_row or -1],
        ).fetchone()
        return ImageSighting(*row[:6], deleted=bool(row[6])) if row else None

    # -- posts -----------------------------------------------------------------------------
    @translated
    def live_posts(self, target: str) -> list[StoredPost]:
        """Posts of ``target`` not known to be deleted, latest version, in page order."""
        return self._stored_posts(target, "p.deleted_at IS NULL")

    @translated
    def hidden_posts(self, target: str) -> list[StoredPost]:
        """Posts of ``target`` a capture found deleted, latest version: one may come back."""
        return self._stored_posts(target, "p.deleted_at IS NOT NULL")

    def _stored_posts(self, target: str, which: str) -> list[StoredPost]:
        rows = self.db.execute(
            f"SELECT {', '.join(_STORED_POST.values())} "
            "FROM posts p JOIN post_versions v ON v.id = p.current_version_id "
            f"WHERE p.target = ? AND {which} "
            "ORDER BY p.last_capture_id, p.last_position",
            [target],
        ).fetchall()
        return [from_row(StoredPost, _STORED_POST, r) for r in rows]

    @translated
    def insert_post(
        self,
        target: str,
        captured: CapturedPost,
        capture_id: int,
        position: int,
        now: str,
        image_errors: dict[str, str] | None = None,
    ) -> tuple[int, int]:
        """A post seen for the first time (or reappearing as a new row); returns (row, version)."""
        row_id = int(
            self.db["posts"]
            .insert(
                {
                    "target": target,
                    "post_id": captured.post.post_id,
                    "first_seen_at": now,
                    "first_capture_id": capture_id,
                    "last_seen_at": now,
                    "last_capture_id": capture_id,
                    "last_position": position,
                }
            )
            .last_pk
        )
        version_id = self.insert_version(
            row_id, 1, captured, capture_id, position, now, image_errors
        )
        return row_id, version_id

    @translated
    def insert_version(
        self,
        row_id: int,
        version: int,
        captured: CapturedPost,
        capture_id: int,
        position: int,
        now: str,
        image_errors: dict[str, str] | None = None,
    ) -> int:
        """A new version of a post; also links its images and makes it current."""
        post = captured.post
        version_id = int(
            self.db["post_versions"]
            .insert(
                {
                    "post_row": row_id,
                    "version": version,
                    "capture_id": capture_id,
                    "seen_at": now,
                    "text": post.text,
                    "author": post.author,
                    "posted_at": post.posted_at,
                    "permalink": post.permalink,
                    "image_urls": json.dumps(list(post.image_urls)),
                    "image_shas": json.dumps(list(captured.image_shas)),
                    "links": json.dumps(list(post.links)),
                    "extra": json.dumps(post.extra_json(), ensure_ascii=False) or None,
                }
            )
            .last_pk
        )
        for index, (url, sha) in enumerate(zip(post.image_urls, captured.image_shas, strict=True)):
            error = (image_errors or {}).get(url)
            self.db["post_images"].insert(
                {
                    "version_id": version_id,
                    "position": index,
                    "sha256": sha,
                    "url": url,
                    "error": error,
                }
            )
        self.mark_seen(row_id, version_id, capture_id, position, now)
        return version_id

    @translated
    def mark_seen(
        self, row_id: int, version_id: int, capture_id: int, position: int, now: str
    ) -> None:
        """Record that a capture saw this post (in this version, at this place)."""
        self.db.execute(
            "UPDATE posts SET last_seen_at = ?, last_capture_id = ?, last_position = ?,"
            " current_version_id = ?, deleted_at = NULL, deleted_capture_id = NULL WHERE id = ?",
            [now, capture_id, position, version_id, row_id],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO capture_posts (capture_id, post_row, version_id, position) "
            "VALUES (?, ?, ?, ?)",
            [capture_id, row_id, version_id, position],
        )

    @translated
    def mark_deleted(self, row_id: int, capture_id: int, now: str) -> None:
        """The post is gone from the platform (its versions stay, as evidence)."""
        self.db.execute(
            "UPDATE posts SET deleted_at = ?, deleted_capture_id = ? WHERE id = ?",
            [now, capture_id, row_id],
        )
        self._visibility(row_id, "deleted", capture_id, now)

    @translated
    def mark_restored(self, row_id: int, capture_id: int, now: str) -> None:
        """A deleted post is back; call after :meth:`mark_seen` (which clears ``deleted_at``).

        ``posts`` only holds the present state, so each deletion and return is also kept in
        ``post_visibility`` (append-only): the evidence shows every time it was hidden.
        """
        self._visibility(row_id, "restored", capture_id, now)

    def _visibility(self, row_id: int, change: str, capture_id: int, now: str) -> None:
        self.db["post_visibility"].insert(
            {"post_row": row_id, "change": change, "capture_id": capture_id, "at": now}
        )

    @translated
    def visibility(self, row_id: int) -> list[VisibilityChange]:
        """Every deletion and return of one post, oldest first."""
        rows = self.db.execute(
            "SELECT change, capture_id, at FROM post_visibility WHERE post_row = ? ORDER BY id",
            [row_id],
        ).fetchall()
        return [VisibilityChange(r[0], r[1], r[2]) for r in rows]

    # -- keywords --------------------------------------------------------------------------
    @translated
    def insert_keyword_matches(
        self,
        target: str,
        rows: dict[str, tuple[int, int]],
        capture_id: int,
        hits: dict[str, list[Any]],
        now: str,
    ) -> None:
        """Store keyword matches (``KeywordMatch``) of post versions, by post id."""
        # One executemany: a page can carry 100,000 matches (a row-by-row insert took 40 s).
        self.db.conn.executemany(
            "INSERT INTO keyword_matches (version_id, target, post_id, capture_id, grp, term,"
            ' start, "end", text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (
                (
                    rows[post_id][1],
                    target,
                    post_id,
                    capture_id,
                    m.group,
                    m.term,
                    m.start,
                    m.end,
                    m.text,
                    now,
                )
                for post_id, matches in hits.items()
                for m in matches
            ),
        )

    # -- events ----------------------------------------------------------------------------
    @translated
    def insert_event(self, event: Event) -> Event:
        """Store an event; returns it with its id."""
        event_id = int(
            self.db["events"]
            .insert(
                {
                    "kind": str(event.kind),
                    "target": event.target,
                    "post_id": event.post_id,
                    "capture_id": event.capture_id,
                    "details": json.dumps(event.details, ensure_ascii=False, sort_keys=True),
                    "created_at": event.created_at,
                }
            )
            .last_pk
        )
        return replace(event, id=event_id)

    @translated
    def events(self, target: str | None = None, after_id: int = 0, limit: int = 100) -> list[Event]:
        """Stored events, oldest first, optionally for one target."""
        where, params = "id > ?", [after_id]
        if target:
            where += " AND target = ?"
            params.append(target)
        rows = self.db["events"].rows_where(where, params, order_by="id", limit=limit)
        return [_event(r) for r in rows]

    # -- evidence selection ----------------------------------------------------------------
    @translated
    def select_capture_ids(
        self,
        targets: list[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        post_id: str | None = None,
        capture_id: int | None = None,
    ) -> list[int]:
        """Ids of captures matching every given filter, oldest first."""
        where, params = ["1 = 1"], []
        if targets is not None:
            where.append(f"c.target IN ({','.join('?' * len(targets))})")
            params += targets
        if since:
            where.append("c.started_at >= ?")
            params.append(since)
        if until:
            where.append("c.started_at <= ?")
            params.append(until)
        if capture_id is not None:
            where.append("c.id = ?")
            params.append(capture_id)
        if post_id:
            where.append(
                "c.id IN (SELECT cp.capture_id FROM capture_posts cp JOIN posts p"
                " ON p.id = cp.post_row WHERE p.post_id = ?)"
            )
            params.append(post_id)
        sql = f"SELECT c.id FROM captures c WHERE {' AND '.join(where)} ORDER BY c.id"
        return [row[0] for row in self.db.execute(sql, params).fetchall()]

    @translated
    def post_histories(self, capture_ids: list[int]) -> list[dict[str, Any]]:
        """Every post seen in these captures with all its versions (JSON-ready)."""
        if not capture_ids:
            return []
        marks = ",".join("?" * len(capture_ids))
        posts = self.db.execute(
            "SELECT DISTINCT p.id, p.target, p.post_id, p.first_seen_at, p.last_seen_at,"
            " p.deleted_at, p.deleted_capture_id FROM posts p JOIN capture_posts cp"
            f" ON cp.post_row = p.id WHERE cp.capture_id IN ({marks}) ORDER BY p.id",
            capture_ids,
        ).fetchall()
        histories = []
        for row in posts:
            versions = self.db.execute(
                "SELECT version, capture_id, seen_at, text, author, posted_at, permalink,"
                " image_urls, image_shas, links FROM post_versions WHERE post_row = ?"
                " ORDER BY version",
                [row[0]],
            ).fetchall()
            histories.append(
                {
                    "target": row[1],
                    "post_id": row[2],
                    "first_seen_at": row[3],
                    "last_seen_at": row[4],
                    "deleted_at": row[5],
                    "deleted_capture_id": row[6],
                    "versions": [
                        {
                            "version": v[0],
                            "capture_id": v[1],
                            "seen_at": v[2],
                            "text": v[3],
                            "author": v[4],
                            "posted_at": v[5],
                            "permalink": v[6],
                            "image_urls": json.loads(v[7] or "[]"),
                            "image_shas": json.loads(v[8] or "[]"),
                            "links": json.loads(v[9] or "[]"),
                        }
                        for v in versions
                    ],
                }
            )
        return histories

    # -- outbox ----------------------------------------------------------------------------
    @translated
    def enqueue(self, event_id: int, sink: str, chat_id: str, now: str) -> None:
        """Queue an event for one chat (call inside the transaction that stored the event)."""
        self.db["outbox"].insert(
            {
                "event_id": event_id,
                "sink": sink,
                "chat_id": chat_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )

    @translated
    def due_outbox(
        self, now: str, longest_wait_s: float = 86400.0
    ) -> dict[tuple[str, str], list[OutboxRow]]:
        """Pending alerts per (sink, chat), oldest first, for chats whose oldest one is due.

        A chat whose oldest alert is waiting out a backoff waits as a whole: alerts are
        delivered in order. A wait longer than any backoff or flood wait we honour
        (``longest_wait_s``) means the clock jumped backwards (a machine booting with a wrong
        clock): such alerts are due now rather than stuck until the clock catches up. A
        small jump only delays them by its own size.
        """
        horizon = _later(now, longest_wait_s)
        rows = self.db.execute(
            _OUTBOX_QUERY + " WHERE o.status = 'pending' ORDER BY o.sink, o.chat_id, o.id"
        ).fetchall()
        chats: dict[tuple[str, str], list[OutboxRow]] = {}
        blocked: set[tuple[str, str]] = set()
        for r in rows:
            key = (r[1], r[2])
            if key in blocked:
                continue
            if key not in chats and now < (r[6] or "") <= horizon:
                blocked.add(key)
                continue
            chats.setdefault(key, []).append(_outbox_row(r))
        return chats

    @translated
    def mark_sent(
        self, row_ids: list[int], message_ids: list[int], now: str, digest_id: int | None = None
    ) -> None:
        """Record delivery (several rows when a digest carried them)."""
        with self.db.atomic():
            for row_id in row_ids:
                self.db.execute(
                    "UPDATE outbox SET status = 'sent', sent_at = ?, message_ids = ?,"
                    " digest_id = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                    [now, json.dumps(message_ids), digest_id, row_id],
                )

    @translated
    def retry_now(self, sink: str, now: str) -> int:
        """Make ``sink``'s alerts that are waiting out a backoff due at ``now`` (the sink is
        reachable again); returns how many."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE sink = ? AND status = 'pending'"
                " AND next_attempt_at > ?",
                [now, sink, now],
            )
        return cursor.rowcount

    @translated
    def mark_retry(self, row_id: int, error: str, next_attempt_at: str) -> None:
        """Delivery failed for now; try again at ``next_attempt_at``."""
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE id = ?",
            [error, next_attempt_at, row_id],
        )

    @translated
    def mark_failed(self, row_ids: list[int], error: str) -> None:
        """Delivery will never work as configured (chat gone, bot removed)."""
        with self.db.atomic():
            for row_id in row_ids:
                self.db.execute(
                    "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
                    " WHERE id = ?",
                    [error, row_id],
                )

    @translated
    def outbox_backlog(self) -> dict[str, int]:
        """Count of undelivered and permanently failed alerts, by status."""
        rows = self.db.execute(
            "SELECT status, COUNT(*) FROM outbox WHERE status != 'sent' GROUP BY status"
        ).fetchall()
        return {status: count for status, count in rows}

    @translated
    def outbox_failures(self) -> list[OutboxRow]:
        """Alerts that could not be delivered for good, newest first."""
        rows = self.db.execute(
            _OUTBOX_QUERY + " WHERE o.status = 'failed' ORDER BY o.id DESC LIMIT 20"
        ).fetchall()
        return [_outbox_row(r) for r in rows]

    @translated
    def outbox_for_event(self, event_id: int) -> list[OutboxRow]:
        """Delivery state of one event in every chat."""
        rows = self.db.execute(
            _OUTBOX_QUERY + " WHERE o.event_id = ? ORDER BY o.id",
            [event_id],
        ).fetchall()
        return [_outbox_row(r) for r in rows]

    @translated
    def screenshot_of(self, capture_id: int) -> str | None:
        """SHA-256 of a capture's page screenshot, if it has one."""
        row = self.db.execute(
            "SELECT sha256 FROM artifacts WHERE capture_id = ? AND kind = 'screenshot' LIMIT 1",
            [capture_id],
        ).fetchone()
        return row[0] if row else None

    # -- status ----------------------------------------------------------------------------
    @translated
    def target_status(self, name: str, platform: str) -> TargetStatus:
        """Summary of one target for ``watcher status``."""
        last = self.last_capture(name)
        counts = self.db.execute(
            "SELECT SUM(deleted_at IS NULL), SUM(deleted_at IS NOT NULL) FROM posts"
            " WHERE target = ?",
            [name],
        ).fetchone()
        captures = self.db.execute(
            "SELECT COUNT(*) FROM captures WHERE target = ?", [name]
        ).fetchone()
        return TargetStatus(
            name=name,
            platform=platform,
            last_capture_at=last.ended_at if last else None,
            last_status=last.status if last else None,
            last_reason=last.reason if last else None,
            live_posts=int(counts[0] or 0),
            deleted_posts=int(counts[1] or 0),
            captures=int(captures[0]),
            failure_streak=self.failure_streak(name),
        )


def _capture_row(row: dict[str, Any]) -> CaptureRow:
    values = {k: row[k] for k in CaptureRow.__slots__}
    values["baseline"] = bool(row["baseline"])
    values["status"] = CaptureStatus(row["status"])
    values["mode"] = CaptureMode(row["mode"])
    return CaptureRow(**values)


def _event(row: dict[str, Any]) -> Event:
    return Event(
        kind=EventKind(row["kind"]),
        target=row["target"],
        post_id=row["post_id"],
        payload=json.loads(row["details"] or "{}"),
        capture_id=row["capture_id"],
        created_at=row["created_at"],
        id=row["id"],
    )


def _later(moment: str, seconds: float) -> str:
    try:
        start = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment  # not a time (a caller asking for everything): nothing waits
    return to_iso(start + timedelta(seconds=seconds))


# Every outbox read returns the same columns, in the order _outbox_row unpacks them.
_OUTBOX_QUERY = (
    "SELECT o.id, o.sink, o.chat_id, o.status, o.attempts, o.last_error, o.next_attempt_at,"
    " e.id, e.kind, e.target, e.post_id, e.capture_id, e.details, e.created_at, o.message_ids"
    " FROM outbox o JOIN events e ON e.id = o.event_id"
)


def _outbox_row(r: tuple) -> OutboxRow:
    event = Event(
        kind=EventKind(r[8]),
        target=r[9],
        post_id=r[10],
        payload=json.loads(r[12] or "{}"),
        capture_id=r[11],
        created_at=r[13],
        id=r[7],
    )
    message_ids = tuple(json.loads(r[14] or "[]"))
    return OutboxRow(r[0], event, r[1], r[2], r[3], r[4], r[5], message_ids)


def _hex64(value: int | None) -> str | None:
    return None if value is None else f"{value:016x}"


def _int64(value: str | None) -> int | None:
    return None if value is None else int(value, 16)
