"""Chain-of-custody log: hash chain, signatures, key rotation, JSONL mirror, RFC 3161 stamps.

Everything here is real: SQLite files in tmp_path, Ed25519 keys on disk, and a local
timestamp authority built with the openssl program behind a loopback HTTP server.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from tests.fakes.tsa import make_tsa
from watcher.errors import StoreError, WatcherError
from watcher.store.custody import (
    GENESIS,
    CustodyEntry,
    CustodyLog,
    body_hash_of,
    canonical_json,
    entry_hash,
    header_hash,
    redact,
    verify_chain,
)
from watcher.store.db import Store
from watcher.store.keys import SigningKey, key_id_of, verify_signature
from watcher.store.migrations import MIGRATIONS
from watcher.store.timestamp import request_timestamp, verify_timestamp

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None, reason="the openssl program is not installed; cannot run a local TSA"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated watcher database."""
    opened = Store(tmp_path / "w.db")
    yield opened
    opened.close()


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    """A signing key kept outside the evidence folder, as in a real data folder."""
    return SigningKey.load_or_create(tmp_path / "keys" / "custody.key")


@pytest.fixture
def log(store: Store, key: SigningKey, tmp_path: Path) -> CustodyLog:
    """A custody log with its mirror in the evidence folder."""
    return CustodyLog(store, key, tmp_path / "evidence" / "custody.jsonl")


def append_five(log: CustodyLog) -> list[CustodyEntry]:
    """Five typical events; returns them as appended."""
    return [
        log.append("captured", f"capture:{n}", {"sha256": f"{n:064x}", "note": "café ✓"})
        for n in range(1, 6)
    ]


def mirror_lines(log: CustodyLog) -> list[dict]:
    """The mirror file parsed line by line."""
    return [json.loads(line) for line in log.mirror.read_text("utf-8").splitlines()]


def problem_texts(problems: list) -> list[str]:
    """Just the messages, for readable assertions."""
    return [p.message for p in problems]


# -- keys ------------------------------------------------------------------------------------
def test_key_file_is_private_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "custody.key"
    first = SigningKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = SigningKey.load_or_create(path)
    assert again.key_id == first.key_id
    assert len(first.key_id) == 16
    assert key_id_of(first.public_pem()) == first.key_id
    signature = first.sign(b"hello")
    assert verify_signature(again.public_pem(), b"hello", signature)
    assert not verify_signature(again.public_pem(), b"hellO", signature)
    assert not verify_signature(again.public_pem(), b"hello", "not base64!")
    assert "PRIVATE" not in repr(first)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    SigningKey.load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(WatcherError, match="chmod 600"):
        SigningKey.load_or_create(path)


def test_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(WatcherError, match="not a watcher signing key"):
        SigningKey.load_or_create(path)


# -- the chain -------------------------------------------------------------------------------
def test_five_entries_form_a_valid_chain(log: CustodyLog, key: SigningKey) -> None:
    appended = append_five(log)
    entries = log.entries()
    assert entries == appended
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    first = entries[0]
    # Format 2: the signed hash covers a header; the header commits to the salted body.
    assert first.version == 2 and len(first.salt) == 32
    assert first.body_hash == body_hash_of(first.subject, first.details, first.salt)
    assert first.hash == header_hash(
        first.seq, first.at, first.action, first.body_hash, first.prev_hash, first.key_id
    )
    assert len({e.salt for e in entries}) == 5
    assert first.at.endswith("Z")
    assert log.head() == entries[-1]
    assert verify_chain(entries, {key.key_id: key.public_pem()}) == []


def test_entries_filter_by_subject_and_seq(log: CustodyLog) -> None:
    append_five(log)
    log.append("exported", "bundle:x_%", {})
    assert [e.subject for e in log.entries("capture:1")] == ["capture:1"]
    assert [e.seq for e in log.entries(since_seq=3)] == [4, 5, 6]
    assert [e.seq for e in log.entries("bundle:x_%")] == [6]
    assert log.entries("bundle:xx") == []


def test_empty_log_has_no_head(log: CustodyLog) -> None:
    assert log.head() is None
    assert log.entries() == []
    assert verify_chain([], {}) == []


def test_altered_entry_is_named(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    tampered = list(entries)
    tampered[2] = dataclasses.replace(entries[2], details={"sha256": "f" * 64})
    problems = verify_chain(tampered, {key.key_id: key.public_pem()})
    assert problem_texts(problems) == [
        "entry 3: its details do not give the hash its header commits to (altered?)"
    ]
    assert problems[0].seq == 3


def test_rehashed_entry_breaks_the_link_and_signature(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    old = entries[1]
    details = {"sha256": "f" * 64}
    body = body_hash_of(old.subject, details, old.salt)
    forged = dataclasses.replace(
        old,
        details=details,
        body_hash=body,
        hash=header_hash(old.seq, old.at, old.action, body, old.prev_hash, old.key_id),
    )
    problems = verify_chain([entries[0], forged, *entries[2:]], {key.key_id: key.public_pem()})
    assert {p.seq for p in problems} == {2, 3}
    assert any("signature does not verify" in p.message for p in problems)
    assert any("entry 3: does not link to entry 2" in p.message for p in problems)


def test_removed_entry_is_reported_missing(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    problems = verify_chain(entries[:3] + entries[4:], {key.key_id: key.public_pem()})
    assert len(problems) == 1
    assert problems[0].seq == 4
    assert "entry 4 missing" in problems[0].message


def test_removed_first_entry_is_reported_missing(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    problems = verify_chain(entries[1:], {key.key_id: key.public_pem()})
    assert problem_texts(problems) == ["entry 1 missing (removed from the log?)"]


def test_reordered_entries_are_reported(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    problems = verify_chain(
        [entries[0], entries[2], entries[1], *entries[3:]], {key.key_id: key.public_pem()}
    )
    texts = problem_texts(problems)
    assert any("entry 2 missing" in t for t in texts)
    assert any("entry 2 appears again or out of order" in t for t in texts)


def test_wrong_public_key_fails_signatures(log: CustodyLog, key: SigningKey) -> None:
    entries = append_five(log)
    impostor = SigningKey.generate()
    problems = verify_chain(entries, {key.key_id: impostor.public_pem()})
    assert [p.seq for p in problems] == [1, 2, 3, 4, 5]
    assert "entry 1: its signature does not verify" in problems[0].message


def test_unknown_key_is_reported(log: CustodyLog) -> None:
    entries = append_five(log)
    problems = verify_chain(entries, {})
    assert len(problems) == 5
    assert "not among the known public keys" in problems[0].message


def test_key_rotation(log: CustodyLog, key: SigningKey, tmp_path: Path) -> None:
    append_five(log)
    new_key = SigningKey.load_or_create(tmp_path / "keys" / "custody-2.key")
    rotation = log.rotate_key(new_key)
    after = log.append("exported", "bundle:1", {"files": 3})

    assert rotation.action == "key_rotated"
    assert rotation.key_id == key.key_id  # signed by the old key
    assert rotation.details["new_key_id"] == new_key.key_id
    assert rotation.details["new_public_key"] == new_key.public_pem()
    assert rotation.details["previous_key_id"] == key.key_id
    assert after.key_id == new_key.key_id
    entries = log.entries()
    # Only the first key is given: the rotation entry introduces the second.
    assert verify_chain(entries, {key.key_id: key.public_pem()}) == []
    assert log.public_keys() == {key.key_id: key.public_pem(), new_key.key_id: new_key.public_pem()}
    # Without the rotation entry the new key is unknown (and the gap is reported).
    without = [e for e in entries if e.seq != rotation.seq]
    texts = problem_texts(verify_chain(without, {key.key_id: key.public_pem()}))
    assert f"entry {rotation.seq} missing (removed from the log?)" in texts
    assert any("not among the known public keys" in t for t in texts)


def test_rotation_inside_a_transaction_is_refused(log: CustodyLog, store: Store) -> None:
    old_id = log.key.key_id
    with pytest.raises(StoreError, match=r"outside store\.transaction"), store.transaction():
        log.rotate_key(SigningKey.generate())
    assert log.key.key_id == old_id
    assert log.entries() == []


def test_forged_rotation_does_not_introduce_a_key(log: CustodyLog, key: SigningKey) -> None:
    append_five(log)
    intruder = SigningKey.generate()
    # The intruder writes a rotation to their own key, signed by themselves.
    hijack = CustodyLog(log.store, intruder, log.mirror)
    hijack.rotate_key(intruder)
    hijack.append("exported", "bundle:evil", {})
    texts = problem_texts(verify_chain(log.entries(), {key.key_id: key.public_pem()}))
    assert any(t.startswith("entry 6: signed by key") for t in texts)
    assert any(t.startswith("entry 7: signed by key") for t in texts)


def test_table_is_append_only(log: CustodyLog, store: Store) -> None:
    append_five(log)
    with pytest.raises(StoreError, match="append-only"), store.transaction():
        store.db.execute("UPDATE custody SET details = '{}' WHERE seq = 2")
    with pytest.raises(StoreError, match="append-only"), store.transaction():
        store.db.execute("DELETE FROM custody WHERE seq = 5")
    assert len(log.entries()) == 5


# -- the mirror ------------------------------------------------------------------------------
def test_mirror_equals_table(log: CustodyLog) -> None:
    append_five(log)
    lines = mirror_lines(log)
    assert len(lines) == 5
    assert lines == [e.to_json() for e in log.entries()]
    assert [CustodyEntry.from_json(line) for line in lines] == log.entries()
    assert "café ✓" in log.mirror.read_text("utf-8")  # UTF-8, not \\u escapes


def test_rolled_back_append_leaves_nothing(log: CustodyLog, store: Store) -> None:
    append_five(log)
    with pytest.raises(RuntimeError), store.transaction():
        log.append("captured", "capture:99", {})
        raise RuntimeError("the capture failed before commit")
    assert [e.seq for e in log.entries()] == [1, 2, 3, 4, 5]
    assert len(mirror_lines(log)) == 5
    # The next entry takes the freed number and the chain still holds.
    assert log.append("captured", "capture:6", {}).seq == 6
    assert len(mirror_lines(log)) == 6


def test_append_in_transaction_mirrors_after_commit(log: CustodyLog, store: Store) -> None:
    with store.transaction():
        log.append("captured", "capture:1", {})
        log.append("verified", "capture:1", {"ok": True})
        assert not log.mirror.exists() or mirror_lines(log) == []
    assert not log.mirror.exists() or mirror_lines(log) == []
    assert log.flush_mirror() == 2
    assert mirror_lines(log) == [e.to_json() for e in log.entries()]
    assert log.flush_mirror() == 0


def test_log_transaction_flushes_on_commit_only(log: CustodyLog) -> None:
    with log.transaction():
        log.append("captured", "capture:1", {})
    assert len(mirror_lines(log)) == 1
    with pytest.raises(RuntimeError), log.transaction():
        log.append("captured", "capture:2", {})
        raise RuntimeError("boom")
    assert len(mirror_lines(log)) == 1
    assert len(log.entries()) == 1


def test_resync_restores_a_truncated_mirror(log: CustodyLog) -> None:
    append_five(log)
    lines = log.mirror.read_bytes().splitlines(keepends=True)
    log.mirror.write_bytes(b"".join(lines[:2]))
    assert log.resync_mirror() == 3
    assert mirror_lines(log) == [e.to_json() for e in log.entries()]
    assert log.resync_mirror() == 0


def test_resync_rebuilds_a_missing_mirror(log: CustodyLog) -> None:
    append_five(log)
    log.mirror.unlink()
    assert log.resync_mirror() == 5
    assert len(mirror_lines(log)) == 5


def test_resync_refuses_an_altered_mirror(log: CustodyLog) -> None:
    append_five(log)
    lines = log.mirror.read_text("utf-8").splitlines(keepends=True)
    entry = json.loads(lines[2])
    entry["details"]["note"] = "edited"
    lines[2] = json.dumps(entry) + "\n"
    log.mirror.write_text("".join(lines[:4]), "utf-8")
    before = log.mirror.read_bytes()
    with pytest.raises(StoreError, match="line 3 differs from entry 3"):
        log.resync_mirror()
    assert log.mirror.read_bytes() == before  # never rewritten


def test_flush_refuses_a_mirror_ahead_of_the_table(log: CustodyLog, tmp_path: Path) -> None:
    append_five(log)
    other = CustodyLog(Store(tmp_path / "other.db"), log.key, log.mirror)
    with pytest.raises(StoreError, match=r"line 5 (differs from entry 5|has no matching)"):
        other.append("captured", "capture:1", {})
    other.store.close()


def test_flush_refuses_a_cut_off_last_line(log: CustodyLog) -> None:
    append_five(log)
    with open(log.mirror, "ab") as handle:
        handle.write(b'{"seq":6,"at"')
    with pytest.raises(StoreError, match="line 6 is cut off"):
        log.flush_mirror()


# -- RFC 3161 (the local authority is the `tsa` fixture in conftest.py) ------------------
@needs_openssl
def test_timestamp_round_trip(tsa: tuple[str, Path], log: CustodyLog) -> None:
    url, ca = tsa
    append_five(log)
    head = log.head()
    assert head is not None
    response = request_timestamp(head.hash, url)
    gen_time = verify_timestamp(response, head.hash, ca)
    assert gen_time.endswith("Z") and gen_time[:4].isdigit()
    log.record_timestamp(head.seq, url, response, gen_time)
    assert log.timestamps() == [(5, url, response, gen_time)]


@needs_openssl
def test_timestamp_of_another_digest_fails(tsa: tuple[str, Path]) -> None:
    url, ca = tsa
    response = request_timestamp("a" * 64, url)
    with pytest.raises(WatcherError, match=r"does not verify.*message imprint mismatch"):
        verify_timestamp(response, "b" * 64, ca)


@needs_openssl
def test_timestamp_from_another_authority_fails(tsa: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = tsa
    other = tmp_path / "other"
    other.mkdir()
    make_tsa(other)
    response = request_timestamp("a" * 64, url)
    with pytest.raises(WatcherError, match="does not verify"):
        verify_timestamp(response, "a" * 64, other / "ca.crt")


@needs_openssl
def test_unreachable_tsa_is_a_clear_error(tsa: tuple[str, Path]) -> None:
    url, _ = tsa
    with pytest.raises(WatcherError, match="cannot reach the timestamp authority"):
        request_timestamp("a" * 64, "http://127.0.0.1:9/tsa", timeout=2)
    with pytest.raises(WatcherError, match="refused the request \\(HTTP 404\\)"):
        request_timestamp("a" * 64, url.replace("/tsa", "/nothing"), timeout=2)
    with pytest.raises(WatcherError, match=r"answer from .* is not a timestamp response"):
        request_timestamp("a" * 64, url.replace("/tsa", "/not-a-tsa"), timeout=2)
    with pytest.raises(WatcherError, match="not a SHA-256 digest"):
        request_timestamp("xyz", url)


# -- redaction and the format upgrade ---------------------------------------------------------
def old_format_log(tmp_path: Path, key: SigningKey, count: int) -> Path:
    """A data folder's database as watcher wrote it before migration m010: format-1 entries
    (every field hashed, no salt) and their mirror lines."""
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    MIGRATIONS.apply(db, stop_before="m010_custody_redactable")
    prev, lines = GENESIS, []
    for seq in range(1, count + 1):
        target = "dealer" if seq % 2 else "informant-watch"
        details = {"target": target, "url": f"https://t.me/s/{target}"}
        at, subject = f"2026-01-0{seq}T00:00:00.000Z", f"capture:{seq}"
        digest = entry_hash(seq, at, "captured", subject, details, prev, key.key_id)
        entry = CustodyEntry(
            seq,
            at,
            "captured",
            subject,
            details,
            prev,
            digest,
            key.key_id,
            key.sign(digest.encode()),
        )
        row = entry.to_json()
        row["details"] = canonical_json(details)
        db["custody"].insert(row)
        lines.append(canonical_json(entry.to_json()) + "\n")
        prev = digest
    db.close()
    mirror = tmp_path / "evidence" / "custody.jsonl"
    mirror.parent.mkdir()
    mirror.write_text("".join(lines), "utf-8")
    return path


def keys_of(key: SigningKey) -> dict[str, str]:
    return {key.key_id: key.public_pem()}


def test_an_old_log_keeps_verifying_and_is_upgraded_by_its_next_entry(
    tmp_path: Path, key: SigningKey
) -> None:
    store = Store(old_format_log(tmp_path, key, 4))  # m010 runs here
    log = CustodyLog(store, key, tmp_path / "evidence" / "custody.jsonl")
    old = log.entries()
    assert [e.version for e in old] == [1, 1, 1, 1]
    assert verify_chain(old, keys_of(key)) == []
    assert log.resync_mirror() == 0  # the old mirror lines still equal the table

    log.append("captured", "capture:5", {"target": "dealer"})
    entries = log.entries()
    upgrade, new = entries[4], entries[5]
    assert (upgrade.action, upgrade.version, new.version) == ("custody_format_upgraded", 2, 2)
    assert upgrade.details["old_entries"] == 4
    assert verify_chain(entries, keys_of(key)) == []
    assert log.upgrade() is None  # once is enough
    assert log.resync_mirror() == 0
    store.close()


def test_withheld_entries_still_prove_the_chain(tmp_path: Path, key: SigningKey) -> None:
    store = Store(old_format_log(tmp_path, key, 4))
    log = CustodyLog(store, key, tmp_path / "evidence" / "custody.jsonl")
    for n in range(5, 9):
        log.append("captured", f"capture:{n}", {"target": "informant-watch" if n % 2 else "x"})
    entries = log.entries()
    shown = redact(entries, lambda e: e.subject in ("capture:1", "capture:6"))
    assert [e.redacted for e in shown] == [False, True, True, True, False, True, False, True, True]
    text = "".join(json.dumps(e.to_json()) for e in shown)
    assert "informant-watch" not in text
    assert all("salt" not in e.to_json() and "subject" not in e.to_json() for e in shown[1:4])
    # Round trip through JSON, as a bundle carries it.
    shown = [CustodyEntry.from_json(json.loads(json.dumps(e.to_json()))) for e in shown]
    assert verify_chain(shown, keys_of(key)) == []
    store.close()


def withheld_chain(tmp_path: Path, key: SigningKey) -> list[CustodyEntry]:
    store = Store(old_format_log(tmp_path, key, 3))
    log = CustodyLog(store, key, tmp_path / "evidence" / "custody.jsonl")
    for n in range(4, 7):
        log.append("captured", f"capture:{n}", {"target": "informant-watch"})
    entries = redact(log.entries(), lambda e: e.subject == "capture:5")
    store.close()
    return entries


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        # An old entry's time changed: the upgrade entry's commitment no longer matches.
        (lambda es: [dataclasses.replace(es[1], at="2025-01-01T00:00:00.000Z"), es], "upgrade"),
        # A new entry's body hash changed: its header hash and signature break.
        (lambda es: [dataclasses.replace(es[5], body_hash="0" * 64), es], "hash does not"),
        # A withheld entry given made-up details: they do not give its body hash.
        (
            lambda es: [
                dataclasses.replace(es[6], subject="capture:7", details={"a": 1}, salt="0" * 32),
                es,
            ],
            "details do not give",
        ),
    ],
)
def test_tampering_with_withheld_entries_is_found(
    tmp_path: Path, key: SigningKey, attack, expected: str
) -> None:
    entries = withheld_chain(tmp_path, key)
    changed, _ = attack(entries)
    forged = [changed if e.seq == changed.seq else e for e in entries]
    texts = problem_texts(verify_chain(forged, keys_of(key)))
    assert any(expected in t for t in texts), texts


def test_dropping_or_reordering_withheld_entries_is_found(tmp_path: Path, key: SigningKey) -> None:
    entries = withheld_chain(tmp_path, key)
    assert verify_chain(entries, keys_of(key)) == []
    assert problem_texts(verify_chain(entries[:1] + entries[2:], keys_of(key)))
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    assert problem_texts(verify_chain(swapped, keys_of(key)))
    # Old entries withheld with no upgrade entry after them cannot be vouched for.
    texts = problem_texts(verify_chain(entries[:3], keys_of(key)))
    assert any("no format-upgrade entry" in t for t in texts), texts


def test_an_upgrade_or_rotation_entry_must_travel_in_full(tmp_path: Path, key: SigningKey) -> None:
    entries = withheld_chain(tmp_path, key)
    hidden = [e.redacted_form() if e.action == "custody_format_upgraded" else e for e in entries]
    texts = problem_texts(verify_chain(hidden, keys_of(key)))
    assert any("always carries it in full" in t for t in texts), texts
    assert any("no format-upgrade entry" in t for t in texts), texts
