"""Schema migrations. The schema only changes here, one named migration at a time."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("watcher")


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    """Targets, captures and their artifacts, posts with every version, images, events."""
    db["targets"].create({"name": str, "platform": str, "url": str, "created_at": str}, pk="name")
    db["captures"].create(
        {
            "id": int,
            "target": str,
            "status": str,
            "reason": str,
            "message": str,
            "requested_url": str,
            "final_url": str,
            "http_status": int,
            "started_at": str,
            "ended_at": str,
            "user_agent": str,
            "browser_version": str,
            "watcher_version": str,
            "post_count": int,
            "baseline": int,
        },
        pk="id",
        foreign_keys=[("target", "targets", "name")],
    )
    db["captures"].create_index(["target", "id"])
    db["blobs"].create(
        {"sha256": str, "size": int, "media_type": str, "stored_at": str}, pk="sha256"
    )
    db["artifacts"].create(
        {
            "id": int,
            "capture_id": int,
            "kind": str,
            "sha256": str,
            "size": int,
            "media_type": str,
            "source_url": str,
        },
        pk="id",
        foreign_keys=[("capture_id", "captures", "id"), ("sha256", "blobs", "sha256")],
    )
    db["artifacts"].create_index(["capture_id"])
    db["artifacts"].create_index(["sha256"])
    db["posts"].create(
        {
            "id": int,
            "target": str,
            "post_id": str,
            "first_seen_at": str,
            "first_capture_id": int,
            "last_seen_at": str,
            "last_capture_id": int,
            "last_position": int,
            "deleted_at": str,
            "deleted_capture_id": int,
            "current_version_id": int,
        },
        pk="id",
        foreign_keys=[("target", "targets", "name")],
    )
    db["posts"].create_index(["target", "post_id"], unique=True)
    db["post_versions"].create(
        {
            "id": int,
            "post_row": int,
            "version": int,
            "capture_id": int,
            "seen_at": str,
            "text": str,
            "author": str,
            "posted_at": str,
            "permalink": str,
            "image_urls": str,
            "image_shas": str,
            "links": str,
        },
        pk="id",
        foreign_keys=[("post_row", "posts", "id"), ("capture_id", "captures", "id")],
    )
    db["post_versions"].create_index(["post_row", "version"], unique=True)
    db["capture_posts"].create(
        {"capture_id": int, "post_row": int, "version_id": int, "position": int},
        pk=("capture_id", "post_row"),
    )
    db["images"].create(
        {
            "sha256": str,
            "phash": str,
            "dhash": str,
            "width": int,
            "height": int,
            "media_type": str,
            "size": int,
            "error": str,
            "first_seen_at": str,
        },
        pk="sha256",
    )
    db["post_images"].create(
        {"version_id": int, "position": int, "sha256": str, "url": str, "error": str},
        pk=("version_id", "position"),
    )
    db["post_images"].create_index(["sha256"])
    db["events"].create(
        {
            "id": int,
            "kind": str,
            "target": str,
            "post_id": str,
            "capture_id": int,
            "details": str,
            "created_at": str,
        },
        pk="id",
    )
    db["events"].create_index(["target", "id"])


@MIGRATIONS()
def m002_outbox(db: Database) -> None:
    """Alerts waiting for delivery, one row per event and destination chat."""
    db["outbox"].create(
        {
            "id": int,
            "event_id": int,
            "sink": str,
            "chat_id": str,
            "status": str,  # pending, sent, failed (permanent)
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "message_ids": str,  # JSON list of the platform's message ids
            "digest_id": int,  # the outbox row whose digest message carried this one
            "created_at": str,
            "sent_at": str,
        },
        pk="id",
        foreign_keys=[("event_id", "events", "id")],
        defaults={"status": "pending", "attempts": 0},
    )
    db["outbox"].create_index(["sink", "chat_id", "status", "id"])
    db["outbox"].create_index(["event_id"])


@MIGRATIONS()
def m003_custody(db: Database) -> None:
    """The chain-of-custody log (hash-chained, signed) and RFC 3161 timestamps of its head."""
    db["custody"].create(
        {
            "seq": int,
            "at": str,
            "action": str,
            "subject": str,
            "details": str,  # canonical JSON
            "prev_hash": str,
            "hash": str,
            "key_id": str,
            "signature": str,  # base64 Ed25519 signature of the hash hex
        },
        pk="seq",
        not_null={"at", "action", "subject", "details", "prev_hash", "hash", "key_id"},
    )
    db["custody"].create_index(["subject"])
    # Append-only in the database itself, so no code path (or hurried manual fix) can
    # quietly rewrite history; a changed entry would also break the hash chain.
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER custody_no_{verb.lower()} BEFORE {verb} ON custody "
            "BEGIN SELECT RAISE(ABORT, 'the custody log is append-only'); END"
        )
    db["custody_timestamps"].create(
        {"id": int, "seq": int, "tsa_url": str, "response": bytes, "gen_time": str},
        pk="id",
        foreign_keys=[("seq", "custody", "seq")],
    )
    db["custody_timestamps"].create_index(["seq"])


@MIGRATIONS()
def m004_post_details(db: Database) -> None:
    """Platform details of a post version (videos, forwarded-from, views, edited label)."""
    db["post_versions"].add_column("extra", str)


@MIGRATIONS()
def m006_keywords(db: Database) -> None:
    """Keyword matches: which term of which group matched where in which post version."""
    db["keyword_matches"].create(
        {
            "id": int,
            "version_id": int,
            "target": str,
            "post_id": str,
            "capture_id": int,
            "grp": str,
            "term": str,
            "start": int,
            "end": int,
            "text": str,
            "created_at": str,
        },
        pk="id",
    )
    db["keyword_matches"].create_index(["version_id"])
    db["keyword_matches"].create_index(["grp"])


@MIGRATIONS()
def m005_search(db: Database) -> None:
    """Full-text search over every post version; the bot's request log; pause/mute per target."""
    # trigram finds words inside hashtags and in scripts written without spaces (Thai,
    # Chinese); SQLite before 3.34 lacks it, and then words are matched whole.
    try:
        db.execute(
            "CREATE VIRTUAL TABLE post_versions_fts USING fts5(text, content='post_versions',"
            " content_rowid='id', tokenize='trigram')"
        )
    except db.conn.OperationalError:  # sqlite3's, as the connection names it
        db.execute(
            "CREATE VIRTUAL TABLE post_versions_fts USING fts5(text, content='post_versions',"
            " content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
    # The index follows the table through triggers, so no writer has to remember it.
    db.execute(
        "CREATE TRIGGER post_versions_fts_insert AFTER INSERT ON post_versions BEGIN"
        " INSERT INTO post_versions_fts (rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute(
        "CREATE TRIGGER post_versions_fts_delete AFTER DELETE ON post_versions BEGIN"
        " INSERT INTO post_versions_fts (post_versions_fts, rowid, text)"
        " VALUES ('delete', old.id, old.text); END"
    )
    db.execute(
        "CREATE TRIGGER post_versions_fts_update AFTER UPDATE OF text ON post_versions BEGIN"
        " INSERT INTO post_versions_fts (post_versions_fts, rowid, text)"
        " VALUES ('delete', old.id, old.text);"
        " INSERT INTO post_versions_fts (rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute("INSERT INTO post_versions_fts (post_versions_fts) VALUES ('rebuild')")
    db["bot_log"].create(
        {
            "id": int,
            "at": str,
            "user_id": int,
            "chat_id": int,
            "command": str,
            "args": str,
            "result": str,  # ok, refused, error
            "detail": str,
        },
        pk="id",
    )
    db["bot_log"].create_index(["at"])
    db["target_state"].create(
        {
            "target": str,
            "paused_until": str,  # ISO UTC; captures skip the target until then
            "paused_by": int,
            "muted_until": str,  # ISO UTC; alerts for the target are held until then
            "muted_by": int,
            "reviewed": str,  # JSON object: event id -> {"by": user id, "at": time}
            "updated_at": str,
        },
        pk="target",
    )


@MIGRATIONS()
def m007_contacts(db: Database) -> None:
    """Contacts (phones, messenger handles, links) found in post text, one row per version."""
    db["contacts"].create(
        {
            "id": int,
            "kind": str,  # phone, telegram, wechat, line, whatsapp, zalo, link
            "value": str,  # normalised: E.164, lower-case handle, normalised URL
            "target": str,
            "post_id": str,
            "version_id": int,
            "capture_id": int,
            "raw": str,  # as written in the post
            "seen_at": str,
        },
        pk="id",
    )
    db["contacts"].create_index(["kind", "value"])
    db["contacts"].create_index(["value"])
    db["contacts"].create_index(["target"])


@MIGRATIONS()
def m008_capture_checks(db: Database) -> None:
    """A capture is a full one or a light check; a check compares the page's posts with the
    last capture's by their fingerprint (SHA-256 of the posts, see ``posts_fingerprint``)."""
    db["captures"].add_column("mode", str, not_null_default="full")
    db["captures"].add_column("fingerprint", str)


@MIGRATIONS()
def m009_post_visibility(db: Database) -> None:
    """Every time a capture found a post deleted or back again (dealers hide and restore
    posts; ``posts.deleted_at`` only says whether it is hidden now). Append-only, like the
    versions; existing deletions are carried over."""
    db["post_visibility"].create(
        {"id": int, "post_row": int, "change": str, "capture_id": int, "at": str},
        pk="id",
        foreign_keys=[("post_row", "posts", "id")],
    )
    db["post_visibility"].create_index(["post_row"])
    db.execute(
        "INSERT INTO post_visibility (post_row, change, capture_id, at) "
        "SELECT id, 'deleted', deleted_capture_id, deleted_at FROM posts "
        "WHERE deleted_at IS NOT NULL ORDER BY deleted_capture_id, id"
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER post_visibility_no_{verb.lower()} BEFORE {verb} ON post_visibility "
            "BEGIN SELECT RAISE(ABORT, 'post_visibility is append-only'); END"
        )


@MIGRATIONS()
def m010_custody_redactable(db: Database) -> None:
    """Custody entries in a second format whose hash commits to a salted hash of the entry's
    subject and details, so a bundle can carry another case's entries as header + hash only
    (see :mod:`watcher.store.custody`). Existing entries stay as they were signed: format 1."""
    db["custody"].add_column("version", int, not_null_default=1)
    db["custody"].add_column("salt", str)
    db["custody"].add_column("body_hash", str)


@MIGRATIONS()
def m011_archived_payloads(db: Database) -> None:
    """Where each payload a web archive holds in full was first written: its WARC record in a
    capture's WACZ (digest, record id, URL, WARC-Date, capture, the WACZ blob and the record's
    place in its WARC). A later capture writes a revisit record for that payload instead of a
    second copy; an export reads the original back from here. Append-only."""
    db["archived_payloads"].create(
        {
            "payload_sha256": str,
            "record_id": str,
            "target_uri": str,
            "warc_date": str,
            "capture_id": int,
            "wacz_sha256": str,
            "warc_offset": int,
            "warc_length": int,
            "stored_at": str,
        },
        pk="payload_sha256",
        foreign_keys=[("capture_id", "captures", "id"), ("wacz_sha256", "blobs", "sha256")],
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER archived_payloads_no_{verb.lower()} BEFORE {verb} "
            "ON archived_payloads "
            "BEGIN SELECT RAISE(ABORT, 'archived_payloads is append-only'); END"
        )


@MIGRATIONS()
def m012_photo_text(db: Database) -> None:
    """Text read in photos (OCR), one row per image (photos are content-addressed: a photo
    reposted anywhere is read once): what was read, its boxes and confidences as JSON, by which
    engine, or why it was not read. Searchable with post text (``photo_text_fts``). A contact
    found in a photo is a ``contacts`` row like one from post text, with ``source = 'photo'``
    and the image's SHA-256, so it ties accounts the same way."""
    db["photo_text"].create(
        {
            "sha256": str,
            "status": str,  # ok, refused, unreadable, timeout, failed (detect.ocr.OcrStatus)
            "text": str,  # the lines read, top to bottom
            "boxes": str,  # JSON: [{"text", "confidence", "box": [[x, y] x4]}]
            "reason": str,  # why it was not read, in words
            "width": int,
            "height": int,
            "engine": str,
            "seconds": float,
            "read_at": str,
        },
        pk="sha256",
    )
    try:
        db.execute(
            "CREATE VIRTUAL TABLE photo_text_fts USING fts5(text, content='photo_text',"
            " content_rowid='rowid', tokenize='trigram')"
        )
    except db.conn.OperationalError:  # SQLite before 3.34: no trigram (see m005_search)
        db.execute(
            "CREATE VIRTUAL TABLE photo_text_fts USING fts5(text, content='photo_text',"
            " content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')"
        )
    db.execute(
        "CREATE TRIGGER photo_text_fts_insert AFTER INSERT ON photo_text BEGIN"
        " INSERT INTO photo_text_fts (rowid, text) VALUES (new.rowid, new.text); END"
    )
    db.execute(
        "CREATE TRIGGER photo_text_fts_delete AFTER DELETE ON photo_text BEGIN"
        " INSERT INTO photo_text_fts (photo_text_fts, rowid, text)"
        " VALUES ('delete', old.rowid, old.text); END"
    )
    db["contacts"].add_column("source", str, not_null_default="text")  # text or photo
    db["contacts"].add_column("image_sha256", str)  # the photo it was read in


@MIGRATIONS()
def m013_dealers(db: Database) -> None:
    """Dealers (see :mod:`watcher.store.dealers`): a person's word on a tie between two
    accounts (append-only: the latest verdict per tie counts, the earlier ones stay as
    history), the names dealers go by (an old name keeps finding its dealer), and the
    accounts already announced as a dealer come back (one alert per account, ever)."""
    db["dealer_verdicts"].create(
        {
            "id": int,
            "tie": str,  # detect.dealers.tie_id of the two accounts
            "account_a": str,
            "account_b": str,
            "verdict": str,  # confirmed, rejected
            "by": str,  # who said so: "cli:<user>" or "telegram:<user id>"
            "at": str,
        },
        pk="id",
    )
    db["dealer_verdicts"].create_index(["tie", "id"])
    db["dealer_names"].create(
        {"name": str, "anchor": str, "given_by": str, "at": str},
        pk="name",
    )
    db["dealer_names"].create_index(["anchor"])
    db["dealer_returns"].create(
        {"account": str, "dealer": str, "event_id": int, "at": str},
        pk="account",
    )
    for table in ("dealer_verdicts", "dealer_returns"):
        for verb in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


@MIGRATIONS()
def m014_telegram_chats(db: Database) -> None:
    """The chat each Telegram-account target resolved to (issue 24): its id and access hash,
    so an invite link is used once to join and never resolved again. Keyed by target and
    URL: a target whose URL changes resolves its new chat."""
    db["telegram_chats"].create(
        {
            "target": str,
            "url": str,
            "chat_id": int,
            "kind": str,  # channel (channels and supergroups) or chat (basic groups)
            "access_hash": int,
            "title": str,
            "username": str,
            "account": str,
            "resolved_at": str,
        },
        pk=("target", "url"),
    )


@MIGRATIONS()
def m015_check_mode(db: Database) -> None:
    """How each target's light checks read its page: over HTTP without a renderer (no row:
    the default), or in the browser (``browser``), because the server's HTML did not hold the
    posts the browser saw (a page built by scripts). One row per target, rewritten when the
    decision changes; each decision is also in the log."""
    db["check_modes"].create(
        {"target": str, "mode": str, "reason": str, "decided_at": str, "capture_id": int},
        pk="target",
    )


@MIGRATIONS()
def m016_screenshot_encodings(db: Database) -> None:
    """Screenshots re-encoded as strips (``watcher.store.strips``), by the SHA-256 of the PNG
    Chromium wrote: an unchanged page gives the same PNG, and its stored re-encoding is used
    again instead of decoding and compressing ~50 MB of pixels once more."""
    db["screenshot_encodings"].create(
        {
            "original_sha256": str,
            "sha256": str,  # of the PNG the blob store holds (a composite)
            "size": int,
            "pixels_sha256": str,
            "encoder": str,
            "stored_at": str,
        },
        pk="original_sha256",
    )
