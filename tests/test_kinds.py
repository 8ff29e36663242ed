"""Event kinds as types (watcher/kinds.py): every kind has one, rows stored in the old JSON
form read back into them unchanged, and each reads on the console and in Telegram."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from watcher.alert.console import format_event
from watcher.alert.render import photo_shas, render_alert, render_digest
from watcher.kinds import (
    PAYLOADS,
    CaptureFailed,
    ContactSeenBefore,
    Edited,
    ImageSeenBefore,
    Keyword,
    KnownImageMatch,
    NewPost,
    Payload,
    Restored,
    WatchlistInvalid,
)
from watcher.models import Event, EventKind
from watcher.store.db import Store

SHA_A, SHA_B = "a" * 64, "b" * 64
NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
KEYWORDS = {
    "keywords": [{"group": "ivory", "term": "ivory", "start": 7, "end": 12, "text": "ivory"}],
    "groups": ["ivory"],
}
POST = {
    "text": "carved ivory bangle",
    "permalink": "https://t.me/d/4",
    "author": "Dealer",
    "posted_at": "2026-11-22T03:01:00.000Z",
    "image_shas": [SHA_A],
    "links": ["https://wa.me/85512345678"],
}
# Each kind's `details` exactly as the code before these types wrote them.
OLD_ROWS = {
    EventKind.NEW_POST: {**POST, **KEYWORDS},
    EventKind.EDITED_POST: {
        **POST,
        "previous_text": "carved bangle",
        "text_changed": True,
        "images_added": [SHA_A],
        "images_removed": [SHA_B],
        "version": 2,
    },
    EventKind.DELETED_POST: {
        "text": "gone",
        "permalink": None,
        "posted_at": None,
        "first_seen_at": "2026-11-20T01:00:00.000Z",
        "last_seen_at": "2026-11-21T01:00:00.000Z",
        "last_capture_id": 7,
        "image_shas": [SHA_B],
    },
    EventKind.RESTORED_POST: {
        **POST,
        "last_seen_at": "2026-11-20T01:00:00.000Z",
        "deleted_at": "2026-11-21T01:00:00.000Z",
        "deleted_capture_id": 8,
        "first_seen_at": "2026-11-19T01:00:00.000Z",
        "changed_while_hidden": True,
    },
    EventKind.KEYWORD: {**POST, **KEYWORDS, "post_event": "new_post"},
    EventKind.IMAGE_SEEN_BEFORE: {
        "image_sha256": SHA_A,
        "image_url": "https://cdn.example/a.jpg",
        "distance": 3,
        "same_target": False,
        "first_seen": {
            "target": "dealer",
            "post_id": "dealer/1",
            "permalink": None,
            "seen_at": "2026-11-20T01:00:00.000Z",
            "capture_id": 3,
            "image_sha256": SHA_B,
        },
        "matches": 2,
    },
    EventKind.KNOWN_IMAGE: {
        "image_sha256": SHA_A,
        "reference": "seized/bangle.jpg",
        "distance": 4,
        "references": [{"name": "seized/bangle.jpg", "sha256": SHA_B, "distance": 4}],
        "image_url": "https://cdn.example/a.jpg",
        "permalink": "https://shop.example/1",
    },
    EventKind.CONTACT_SEEN_BEFORE: {
        "kind": "phone",
        "value": "+85512345678",
        "raw": "012 345 678",
        "first_seen": {
            "target": "dealer",
            "post_id": "1",
            "seen_at": "2026-11-20T01:00:00.000Z",
            "capture_id": 3,
        },
        "targets": ["dealer", "frontman"],
    },
    EventKind.CAPTURE_FAILED: {
        "reason": "store_bug",
        "message": "watcher could not store the capture of shop (...)",
        "failure_streak": 1,
    },
    EventKind.CAPTURE_RECOVERED: {"failures": 2},
    EventKind.WATCHLIST_INVALID: {"message": "watchlist.yaml: 1 problem(s)"},
    EventKind.DEALER_RETURNED: {
        "account": "ivory-kh2",
        "dealer": "ivory-kh-3f9a",
        "accounts": ["ivory-kh"],
        "gone_since": "2026-11-01T01:00:00.000Z",
        "how": "blocked",
        "same": ["phone +85512345678"],
        "photos_seen": 3,
        "tie_ids": ["t1a2b3c4d"],
    },
}


def test_every_kind_has_one_payload_type():
    assert set(PAYLOADS) == set(EventKind) == set(OLD_ROWS)
    assert all(issubclass(p, Payload) and p.kind == k for k, p in PAYLOADS.items())


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "watcher.db")
    yield opened
    opened.close()


def _write_old_row(store: Store, kind: str, details: dict) -> None:
    # As the code before the types stored an event: its details as a JSON object.
    with store.transaction():
        store.db["events"].insert(
            {
                "kind": kind,
                "target": "shop",
                "post_id": "p1",
                "capture_id": None,
                "details": json.dumps(details, ensure_ascii=False, sort_keys=True),
                "created_at": "2026-11-22T04:00:00.000Z",
            }
        )


@pytest.mark.parametrize("kind", list(OLD_ROWS))
def test_a_row_in_the_old_json_form_reads_back_typed_and_unchanged(store, kind):
    _write_old_row(store, str(kind), OLD_ROWS[kind])
    (event,) = store.events(after_id=0, limit=10)
    assert isinstance(event.payload, PAYLOADS[kind])
    assert event.details == OLD_ROWS[kind]  # and written back, byte for byte the same JSON
    assert Event(kind, "shop", "p1", event.payload).details == OLD_ROWS[kind]


def test_old_rows_read_into_fields(store):
    for kind, details in OLD_ROWS.items():
        _write_old_row(store, str(kind), details)
    by_kind = {e.kind: e.payload for e in store.events(after_id=0, limit=20)}
    edited = by_kind[EventKind.EDITED_POST]
    assert isinstance(edited, Edited)
    assert (edited.version, edited.images_added, edited.text_changed) == (2, (SHA_A,), True)
    new = by_kind[EventKind.NEW_POST]
    assert isinstance(new, NewPost) and new.keywords[0].group == "ivory"
    seen = by_kind[EventKind.IMAGE_SEEN_BEFORE]
    assert isinstance(seen, ImageSeenBefore)
    assert (seen.first_seen.target, seen.first_seen.image_sha256) == ("dealer", SHA_B)
    contact = by_kind[EventKind.CONTACT_SEEN_BEFORE]
    assert isinstance(contact, ContactSeenBefore)
    assert (contact.contact, contact.first_seen.capture_id) == ("phone", 3)
    known = by_kind[EventKind.KNOWN_IMAGE]
    assert isinstance(known, KnownImageMatch) and known.references[0].sha256 == SHA_B
    keyword = by_kind[EventKind.KEYWORD]
    assert isinstance(keyword, Keyword) and keyword.post_event == EventKind.NEW_POST
    failed = by_kind[EventKind.CAPTURE_FAILED]
    assert isinstance(failed, CaptureFailed) and failed.reason == "store_bug"
    restored = by_kind[EventKind.RESTORED_POST]
    assert isinstance(restored, Restored) and restored.changed_while_hidden is True


def test_an_older_row_missing_keys_and_with_unknown_ones_still_reads(store):
    # Written by an older or newer version: what it lacks takes the default, what this
    # version does not know is kept, so nothing is lost when it is written out again.
    _write_old_row(store, "capture_failed", {"reason": "http_error", "note": "from v0"})
    _write_old_row(store, "edited_post", {"text": "now", "previous_text": "then"})
    failed, edited = store.events(after_id=0, limit=10)
    assert isinstance(failed.payload, CaptureFailed)
    assert (failed.payload.reason, failed.payload.failure_streak) == ("http_error", 0)
    assert failed.details["note"] == "from v0" and failed.details["reason"] == "http_error"
    assert isinstance(edited.payload, Edited) and edited.payload.images_added == ()
    # No text_changed in the row: as before the types, the alert shows the text, no diff.
    assert render_alert(edited, "telegram", None).html.endswith("\nnow")


@pytest.mark.parametrize("kind", list(OLD_ROWS))
def test_each_kind_reads_on_the_console_and_in_telegram(kind):
    event = Event(kind, "shop", "p1", OLD_ROWS[kind], capture_id=9, created_at="2026-11-22T04:00Z")
    line = format_event(event, NOW)
    assert line.startswith(f"[{event.payload.label}] shop") and "(capture #9)" in line
    message = render_alert(event, "generic", "f" * 64, now=NOW)
    assert message.html.startswith(f"<b>{event.payload.title}</b> · <b>shop</b>")
    assert "Evidence: capture #9" in message.html
    assert render_digest([event, event]).count(event.payload.title) == 2


def test_photos_and_page_screenshot_follow_the_kind():
    seen = Event(EventKind.IMAGE_SEEN_BEFORE, "shop", "p1", OLD_ROWS[EventKind.IMAGE_SEEN_BEFORE])
    assert photo_shas(seen) == (SHA_A, SHA_B)
    gone = Event(EventKind.DELETED_POST, "shop", "p1", {"text": "gone"})
    assert render_alert(gone, None, "f" * 64).screenshot_sha == "f" * 64
    failed = Event(EventKind.CAPTURE_FAILED, "shop", None, {"message": "down"})
    assert render_alert(failed, None, "f" * 64).screenshot_sha is None
    invalid = Event(EventKind.WATCHLIST_INVALID, "watchlist", payload=WatchlistInvalid())
    assert render_alert(invalid, None, None).buttons == ()


def test_a_payload_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="cannot carry"):
        Event(EventKind.NEW_POST, "shop", "p1", CaptureFailed(reason="x"))
