"""Which payloads the archive already holds, for web archives without second copies.

A payload (a response body, a screenshot) counts as archived when the blob store holds its
bytes (a capture's image, screenshot or page, by SHA-256) or when an earlier capture's WARC
holds it in a full record, listed in ``archived_payloads`` (m011). Functions take a
:class:`Store` first; ``translated`` turns SQLite errors into ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from watcher.store.db import Store, translated

_BATCH = 500  # SQLite's bound-parameter limit is far above; keeps each query short


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """Where the archive keeps one payload, and what a revisit record says of it.

    ``wacz_sha256``/``warc_offset``/``warc_length`` place a full WARC record inside a stored
    WACZ; they are None for a payload the blob store holds as a file of its own.
    """

    sha256: str
    target_uri: str
    warc_date: str  # UTC ISO, as WARC-Date
    record_id: str | None = None
    capture_id: int | None = None
    media_type: str | None = None
    wacz_sha256: str | None = None
    warc_offset: int | None = None
    warc_length: int | None = None


@dataclass(frozen=True, slots=True)
class NewPayload:
    """A payload a capture's WARC holds in full for the first time."""

    sha256: str
    record_id: str
    target_uri: str
    warc_date: str
    warc_offset: int
    warc_length: int


def _batches(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


@translated
def stored_payloads(store: Store, shas: Iterable[str]) -> dict[str, StoredPayload]:
    """The payloads among ``shas`` the archive holds: in a WARC record first (a revisit then
    names that record), else as a blob (named by the first file that carried it)."""
    found: dict[str, StoredPayload] = {}
    for batch in _batches(shas):
        marks = ",".join("?" * len(batch))
        for row in store.db.execute(
            "SELECT payload_sha256, target_uri, warc_date, record_id, capture_id, wacz_sha256, "
            f"warc_offset, warc_length FROM archived_payloads WHERE payload_sha256 IN ({marks})",
            batch,
        ):
            sha, uri, date, record_id, capture_id, wacz, offset, length = row
            found[sha] = StoredPayload(
                sha, uri, date, record_id, capture_id, None, wacz, offset, length
            )
        rest = [sha for sha in batch if sha not in found]
        if not rest:
            continue
        marks = ",".join("?" * len(rest))
        # The first artifact that carried the blob names it: its source and its capture's time.
        rows = store.db.execute(
            "SELECT b.sha256, b.media_type, b.stored_at, a.source_url, a.capture_id, a.kind, "
            "c.started_at FROM blobs b "
            "LEFT JOIN artifacts a "
            "ON a.id = (SELECT min(id) FROM artifacts WHERE sha256 = b.sha256) "
            f"LEFT JOIN captures c ON c.id = a.capture_id WHERE b.sha256 IN ({marks})",
            rest,
        )
        for sha, media_type, stored_at, source, capture_id, kind, started in rows:
            uri = source or f"urn:watcher:{kind or 'blob'}:{sha}"
            found[sha] = StoredPayload(sha, uri, started or stored_at, None, capture_id, media_type)
    return found


@translated
def insert_payloads(
    store: Store, capture_id: int, wacz_sha256: str, payloads: Iterable[NewPayload], now: str
) -> None:
    """Note where ``capture_id``'s WACZ holds payloads in full (the first record of each
    payload is kept; a payload noted before stays with its first record)."""
    store.db.conn.executemany(
        "INSERT OR IGNORE INTO archived_payloads (payload_sha256, record_id, target_uri, "
        "warc_date, capture_id, wacz_sha256, warc_offset, warc_length, stored_at) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (
                p.sha256,
                p.record_id,
                p.target_uri,
                p.warc_date,
                capture_id,
                wacz_sha256,
                p.warc_offset,
                p.warc_length,
                now,
            )
            for p in payloads
        ],
    )
