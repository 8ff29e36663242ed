"""The chain-of-custody log: every event on evidence, hash-chained and signed.

Each entry holds the hash of the entry before it, so removing, reordering or changing an
entry breaks the chain; each entry's hash is signed with watcher's Ed25519 key, so the
chain cannot be rebuilt by someone without the key. RFC 3161 timestamps of the head
(:mod:`watcher.store.timestamp`) pin the chain in time, which also catches a cut-off tail.

The ``custody`` table is the source of truth. ``evidence/custody.jsonl`` mirrors it, one
JSON line per entry, for people who read the evidence folder without watcher. The mirror
may lag the table but never leads it: a line is written only once its entry is committed.
:meth:`CustodyLog.append` writes the line itself when it runs in autocommit; inside a
caller's transaction the line is written by :meth:`CustodyLog.flush_mirror` after commit
(or use :meth:`CustodyLog.transaction`, which does both). A line missed through a crash is
written by the next flush, or by :meth:`CustodyLog.resync_mirror`.

Two entry formats. Format 1 (entries written before migration m010) hashes every field,
details included. Format 2 hashes a *header*: seq, time, action, previous hash, key id and
``body_hash``, the SHA-256 of the entry's subject, details and a random salt. A bundle carries
its own captures' entries in full and every other entry as the header alone (*redacted*): the
chain still links and every signature still checks, and nothing of another case travels (the
salt keeps a redacted entry's content from being confirmed by guessing it). A format-1 entry
cannot be opened that way, so the first format-2 entry after them is a ``custody_format_upgraded``
entry that commits to the headers of every format-1 entry: a redacted old entry is vouched for
by it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.errors import StoreError
from watcher.store.db import Store, translated
from watcher.store.keys import SigningKey, key_id_of, verify_signature
from watcher.timeutil import utc_now

GENESIS = "0" * 64
KEY_ROTATED = "key_rotated"
# An entry carrying the public key that signs the web archives (WACZ) from then on: a
# verifier who trusts this log trusts WACZ signatures by that key (watcher.evidence.verify).
WACZ_KEY_ANNOUNCED = "wacz_key_announced"
FORMAT_UPGRADED = "custody_format_upgraded"
# Entries a bundle always carries in full: a verifier needs their details (a rotation names
# the next key; an upgrade vouches for the old entries; an announcement names the WACZ key)
# and they name no target.
ALWAYS_FULL = frozenset({KEY_ROTATED, FORMAT_UPGRADED, WACZ_KEY_ANNOUNCED})
_FIELDS = ("seq", "at", "action", "subject", "details", "prev_hash", "hash", "key_id", "signature")
_HEADER = ("seq", "at", "action", "prev_hash", "hash", "key_id", "signature")
_V2_FIELDS = ("version", "salt", "body_hash")
# How far back from the end of the mirror to look for its last line (grown as needed).
_TAIL_CHUNK = 8192


def canonical_json(value: Any) -> str:
    """The one JSON form that hashes are computed over (sorted keys, no spaces, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    seq: int,
    at: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    prev_hash: str,
    key_id: str,
) -> str:
    """SHA-256 hex of the canonical JSON of an entry's fields (all but hash and signature)."""
    fields = {
        "seq": seq,
        "at": at,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
        "key_id": key_id,
    }
    return _sha256_json(fields)


def body_hash_of(subject: str, details: dict[str, Any], salt: str) -> str:
    """SHA-256 hex of a format-2 entry's body: what a redacted entry keeps of its content."""
    return _sha256_json({"subject": subject, "details": details, "salt": salt})


def header_hash(seq: int, at: str, action: str, body_hash: str, prev_hash: str, key_id: str) -> str:
    """SHA-256 hex of a format-2 entry's header: the entry's hash, which its key signs."""
    fields = {
        "v": 2,
        "seq": seq,
        "at": at,
        "action": action,
        "body_hash": body_hash,
        "prev_hash": prev_hash,
        "key_id": key_id,
    }
    return _sha256_json(fields)


def old_headers_hash(entries: list[CustodyEntry]) -> str:
    """What a format upgrade commits to: the headers of the format-1 entries before it."""
    return _sha256_json([{name: getattr(e, name) for name in _HEADER[:-1]} for e in entries])


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CustodyEntry:
    """One event on evidence, as stored, mirrored and exported.

    ``version`` 1 entries hash every field; version 2 entries hash a header that holds
    ``body_hash`` (subject, details and ``salt``). A *redacted* entry (only in bundles) has
    no subject, details or salt: its header is all that travels.
    """

    seq: int
    at: str
    action: str
    subject: str | None
    details: dict[str, Any] | None
    prev_hash: str
    hash: str
    key_id: str
    signature: str
    version: int = 1
    salt: str | None = None
    body_hash: str | None = None

    @property
    def redacted(self) -> bool:
        """True for an entry whose content was withheld (subject and details absent)."""
        return self.details is None

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the mirror's line, the bundle's record).

        A format-1 entry keeps the exact fields it always had, so old mirror lines compare
        equal; a redacted one says so and holds only its header.
        """
        if self.redacted:
            data = {name: getattr(self, name) for name in _HEADER}
            data["redacted"] = True
            data["version"] = self.version
            if self.version == 2:
                data["body_hash"] = self.body_hash
            return data
        data = {name: getattr(self, name) for name in _FIELDS}
        if self.version == 2:
            data.update({name: getattr(self, name) for name in _V2_FIELDS})
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustodyEntry:
        """An entry from :meth:`to_json` output; ValueError when it is not one.

        The types are checked here, so a hostile line cannot crash a verifier further on.
        """
        if not isinstance(data, dict):
            raise ValueError("custody entry is not a JSON object")
        version, redacted = data.get("version", 1), data.get("redacted", False)
        if version not in (1, 2) or isinstance(version, bool) or redacted not in (True, False):
            raise ValueError("custody entry has an unknown format")
        needed = list(_HEADER if redacted else _FIELDS)
        if version == 2:
            needed += ["body_hash"] if redacted else ["salt", "body_hash"]
        missing = [name for name in needed if name not in data]
        if missing:
            raise ValueError(f"custody entry lacks {', '.join(missing)}")
        values = {name: data[name] for name in needed}
        if not isinstance(values["seq"], int) or isinstance(values["seq"], bool):
            raise ValueError("custody entry seq is not a number")
        texts = [n for n in needed if n not in ("seq", "details")]
        if any(not isinstance(values[n], str) for n in texts):
            raise ValueError("custody entry has a field that is not text")
        if not redacted and not isinstance(values["details"], dict):
            raise ValueError("custody entry details are not a JSON object")
        if redacted:
            values.update(subject=None, details=None)
        return cls(**values, version=version)

    def redacted_form(self) -> CustodyEntry:
        """The entry as a bundle carries another case's: header only, content withheld."""
        return dataclasses.replace(self, subject=None, details=None, salt=None)

    def expected_hash(self) -> str | None:
        """The hash the entry's fields give (differs from ``hash`` when it was altered).

        None for a redacted format-1 entry, whose hash covers content it does not carry.
        """
        if self.version == 2:
            return header_hash(
                self.seq, self.at, self.action, str(self.body_hash), self.prev_hash, self.key_id
            )
        if self.redacted:
            return None
        return entry_hash(
            self.seq,
            self.at,
            self.action,
            self.subject or "",
            self.details or {},
            self.prev_hash,
            self.key_id,
        )

    def body_holds(self) -> bool:
        """False when a full format-2 entry's content does not give its ``body_hash``."""
        if self.version != 2 or self.redacted:
            return True
        body = body_hash_of(self.subject or "", self.details or {}, self.salt or "")
        return body == self.body_hash

    def holds(self) -> bool:
        """True when the entry's hash is the one its fields give (its content included)."""
        return self.body_holds() and self.expected_hash() == self.hash

    def sealed(self, prev_hash: str, key_id: str, sign: Callable[[bytes], str]) -> CustodyEntry:
        """This entry linked after ``prev_hash`` and signed by ``sign`` as key ``key_id``."""
        moved = dataclasses.replace(self, prev_hash=prev_hash, key_id=key_id)
        digest = moved.expected_hash()
        if digest is None:
            raise ValueError("a redacted format-1 entry cannot be rehashed")
        return dataclasses.replace(moved, hash=digest, signature=sign(digest.encode("utf-8")))


@dataclass
class ChainProblem:
    """Something wrong in a custody chain, in plain words (``seq`` None: the whole chain)."""

    seq: int | None
    message: str

    def __str__(self) -> str:
        return self.message


class CustodyLog:
    """The custody log of one data folder: the ``custody`` table plus its JSONL mirror."""

    def __init__(self, store: Store, key: SigningKey, mirror: Path) -> None:
        self.store = store
        self.key = key
        self.mirror = mirror

    @property
    def path(self) -> Path:
        """The database file (``translated`` names it in error messages)."""
        return self.store.path

    # -- writing ---------------------------------------------------------------------------
    def append(self, action: str, subject: str, details: dict[str, Any]) -> CustodyEntry:
        """Add a signed entry after the current head and return it.

        Call it inside the caller's ``store.transaction()`` when the event is part of a
        larger write, so the entry commits (or rolls back) with it; then call
        :meth:`flush_mirror` after the transaction. Outside a transaction the entry is
        committed and mirrored at once.
        """
        entry = self._insert(action, subject, details, self.key)
        self._flush_if_committed()
        return entry

    def rotate_key(self, new_key: SigningKey) -> CustodyEntry:
        """Switch to ``new_key``: a ``key_rotated`` entry, signed by the old key, names it.

        A verifier who trusts the old key learns the new one from this entry, so the chain
        stays verifiable from its first entry with only the first key in hand. Runs in a
        transaction of its own: a rotation rolled back with a caller's transaction would
        leave later entries signed by a key the chain never announced.
        """
        if self.store.db.conn.in_transaction:
            raise StoreError(
                "a custody key rotation must not run inside another transaction; "
                "rotate the key on its own, outside store.transaction()"
            )
        details = {
            "new_key_id": new_key.key_id,
            "new_public_key": new_key.public_pem(),
            # So an export made after rotation can still ship every key that signed the log.
            "previous_key_id": self.key.key_id,
            "previous_public_key": self.key.public_pem(),
        }
        entry = self._insert(KEY_ROTATED, f"key:{new_key.key_id}", details, self.key)
        self.key = new_key
        self._flush_if_committed()
        return entry

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``store.transaction()`` that writes the mirror lines after a successful commit."""
        with self.store.transaction():
            yield
        self._flush_if_committed()

    @translated
    def upgrade(self) -> CustodyEntry | None:
        """Append the format-upgrade entry if the log ends in format-1 entries; returns it.

        Export calls this before it reads the log, so a bundle can withhold old entries too.
        """
        with self.store.transaction():
            entry = self._upgrade_if_needed(self.key)
        self._flush_if_committed()
        return entry

    @translated
    def _insert(
        self, action: str, subject: str, details: dict[str, Any], key: SigningKey
    ) -> CustodyEntry:
        # Round-trip the details through canonical JSON so the entry returned (and hashed)
        # is exactly what a reader will get back from the table.
        details = json.loads(canonical_json(details))
        with self.store.transaction():
            self._upgrade_if_needed(key)
            return self._insert_v2(action, subject, details, key)

    def _upgrade_if_needed(self, key: SigningKey) -> CustodyEntry | None:
        last = self.store.db.execute(
            "SELECT version FROM custody ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None or last[0] != 1:
            return None
        old = self.entries()
        details = {
            "format": 2,
            "old_entries": len(old),
            "old_headers_sha256": old_headers_hash(old),
        }
        return self._insert_v2(FORMAT_UPGRADED, "custody", details, key)

    def _insert_v2(
        self, action: str, subject: str, details: dict[str, Any], key: SigningKey
    ) -> CustodyEntry:
        last = self.store.db.execute(
            "SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        salt = secrets.token_hex(16)
        unsigned = CustodyEntry(
            seq=seq,
            at=utc_now(),
            action=action,
            subject=subject,
            details=details,
            prev_hash=prev_hash,
            hash="",
            key_id=key.key_id,
            signature="",
            version=2,
            salt=salt,
            body_hash=body_hash_of(subject, details, salt),
        )
        entry = unsigned.sealed(prev_hash, key.key_id, key.sign)
        row = entry.to_json()
        row["details"] = canonical_json(details)
        self.store.db["custody"].insert(row)
        return entry

    def _flush_if_committed(self) -> None:
        if not self.store.db.conn.in_transaction:
            self.flush_mirror()

    # -- reading ---------------------------------------------------------------------------
    @translated
    def entries(self, subject_prefix: str | None = None, since_seq: int = 0) -> list[CustodyEntry]:
        """Entries with ``seq > since_seq``, in order; only subjects starting with the prefix."""
        where, params = "seq > ?", [since_seq]
        if subject_prefix:
            # substr rather than LIKE: subjects may hold % or _ literally.
            where += " AND substr(subject, 1, ?) = ?"
            params += [len(subject_prefix), subject_prefix]
        rows = self.store.db["custody"].rows_where(where, params, order_by="seq")
        return [_from_row(row) for row in rows]

    @translated
    def head(self) -> CustodyEntry | None:
        """The latest entry, or None while the log is empty."""
        rows = list(self.store.db["custody"].rows_where(order_by="seq desc", limit=1))
        return _from_row(rows[0]) if rows else None

    @translated
    def public_keys(self) -> dict[str, str]:
        """key_id -> PEM of every key that signed this log: the current one and rotated ones.

        This is what an export ships. A verifier should not trust keys read from the log
        itself: it trusts the first key through another channel, and learns later ones
        from rotation entries signed by a key it already trusts (see :func:`verify_chain`).
        """
        keys = {self.key.key_id: self.key.public_pem()}
        for entry in self.entries():
            if entry.action == KEY_ROTATED:
                for role in ("previous", "new"):
                    keys[entry.details[f"{role}_key_id"]] = entry.details[f"{role}_public_key"]
        return keys

    # -- timestamps ------------------------------------------------------------------------
    @translated
    def record_timestamp(self, seq: int, tsa_url: str, response: bytes, gen_time: str) -> None:
        """Keep an RFC 3161 response that timestamps entry ``seq``'s hash."""
        self.store.db["custody_timestamps"].insert(
            {"seq": seq, "tsa_url": tsa_url, "response": response, "gen_time": gen_time}
        )

    @translated
    def timestamps(self) -> list[tuple[int, str, bytes, str]]:
        """(seq, tsa_url, response DER, gen_time) of every stored timestamp, oldest first."""
        rows = self.store.db.execute(
            "SELECT seq, tsa_url, response, gen_time FROM custody_timestamps ORDER BY id"
        ).fetchall()
        return [(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    # -- the mirror ------------------------------------------------------------------------
    def flush_mirror(self) -> int:
        """Append committed entries the mirror lacks; returns how many lines were written.

        Only the mirror's last line is read, so this stays cheap as the log grows; use
        :meth:`resync_mirror` to check every line.
        """
        with self._locked_mirror() as handle:
            last_seq = self._check_mirror_tail(handle)
            return self._write_lines(handle, self.entries(since_seq=last_seq))

    def resync_mirror(self) -> int:
        """Check every mirror line against the table, then append the missing tail.

        Existing lines are never rewritten. Raises StoreError naming the first line that
        disagrees with the table; returns how many lines were written.
        """
        with self._locked_mirror() as handle:
            handle.seek(0)
            table = self.entries()
            count = 0
            for count, raw in enumerate(handle, start=1):
                expected = table[count - 1] if count <= len(table) else None
                self._check_line(raw, count, expected)
            return self._write_lines(handle, table[count:])

    @contextmanager
    def _locked_mirror(self) -> Iterator[Any]:
        try:
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.mirror, "a+b")  # noqa: SIM115 - closed below, after the lock
        except OSError as exc:
            raise StoreError(f"cannot open the custody log mirror {self.mirror}: {exc}") from exc
        try:
            # Two watcher processes (daemon and an export) may flush at once; the lock keeps
            # each line whole and written once.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield handle
        except OSError as exc:
            raise StoreError(f"cannot write the custody log mirror {self.mirror}: {exc}") from exc
        finally:
            handle.close()

    def _check_mirror_tail(self, handle: Any) -> int:
        """The seq of the mirror's last line, after checking it matches the table."""
        offset, raw = _last_line(handle)
        if raw is None:
            return 0
        try:
            seq = int(json.loads(raw)["seq"])
        except (ValueError, KeyError, TypeError):
            seq = 0
        rows = self.entries(since_seq=seq - 1) if seq > 0 else []
        problem = _line_problem(raw, rows[0] if rows and rows[0].seq == seq else None)
        if problem:
            # Counting lines reads the whole file: only worth it for the error message.
            raise StoreError(self._bad_line(_count_lines(handle, offset) + 1, problem))
        return seq

    def _check_line(self, raw: bytes, line_no: int, expected: CustodyEntry | None) -> None:
        problem = _line_problem(raw, expected)
        if problem:
            raise StoreError(self._bad_line(line_no, problem))

    def _bad_line(self, line_no: int, what: str) -> str:
        return (
            f"custody log mirror {self.mirror} line {line_no} {what}; the database is the "
            "record of truth: move this file aside as found (for investigation) and resync "
            "to write a new mirror from the database"
        )

    def _write_lines(self, handle: Any, entries: list[CustodyEntry]) -> int:
        if not entries:
            return 0
        handle.seek(0, os.SEEK_END)
        handle.write(b"".join(_line(entry) for entry in entries))
        handle.flush()
        os.fsync(handle.fileno())
        return len(entries)


def verify_chain(entries: list[CustodyEntry], public_keys: dict[str, str]) -> list[ChainProblem]:
    """Every problem in a custody chain that starts at entry 1; [] when it all holds.

    Checks that entries are numbered 1, 2, 3... without gaps, that each links to the hash of
    the one before, that each hash matches its contents (for a redacted entry: its header;
    a redacted format-1 entry is vouched for by the format-upgrade entry after it) and that
    each signature was made by the key the entry names. ``public_keys`` maps key_id to PEM;
    a key rotation entry that itself verifies makes its new key known for the entries after it.
    """
    checker = _ChainChecker(dict(public_keys))
    for entry in entries:
        checker.check(entry)
    checker.finish()
    return checker.problems


@dataclass
class _ChainChecker:
    keys: dict[str, str]
    problems: list[ChainProblem] = field(default_factory=list)
    expected_seq: int = 1
    prev: CustodyEntry | None = None
    old: list[CustodyEntry] = field(default_factory=list)  # format-1 entries, in order
    unvouched: list[int] = field(default_factory=list)  # redacted format-1 entries' seqs
    upgraded: bool = False

    def check(self, entry: CustodyEntry) -> None:
        if not self._check_position(entry):
            return
        problems_before = len(self.problems)
        self._check_format(entry)
        self._check_hash(entry)
        self._check_signature(entry)
        sound = len(self.problems) == problems_before
        if entry.action == KEY_ROTATED and sound:
            self._learn_key(entry)
        if entry.action == FORMAT_UPGRADED and sound:
            self._check_upgrade(entry)
        self.prev = entry
        self.expected_seq = entry.seq + 1

    def finish(self) -> None:
        for seq in self.unvouched:
            self._add(
                seq,
                f"entry {seq}: withheld in the old format, and no format-upgrade entry after "
                "it vouches for it",
            )

    def _add(self, seq: int | None, message: str) -> None:
        self.problems.append(ChainProblem(seq, message))

    def _check_position(self, entry: CustodyEntry) -> bool:
        """Gap and order checks; False when the entry cannot be placed in the chain."""
        if entry.seq < self.expected_seq:
            self._add(entry.seq, f"entry {entry.seq} appears again or out of order")
            return False
        if entry.seq > self.expected_seq:
            missing = range(self.expected_seq, entry.seq)
            for seq in missing:
                self._add(seq, f"entry {seq} missing (removed from the log?)")
            # Its link cannot be checked: the entry it points to is gone.
            return True
        expected_prev = self.prev.hash if self.prev else GENESIS
        if entry.prev_hash != expected_prev:
            before = f"entry {entry.seq - 1}" if self.prev else "the start of the log"
            self._add(
                entry.seq,
                f"entry {entry.seq}: does not link to {before} (an entry before it was "
                "changed or replaced?)",
            )
        return True

    def _check_format(self, entry: CustodyEntry) -> None:
        if entry.version == 1:
            if self.upgraded or (self.prev is not None and self.prev.version == 2):
                self._add(entry.seq, f"entry {entry.seq}: an old-format entry after newer ones")
            self.old.append(entry)
            if entry.redacted:
                self.unvouched.append(entry.seq)
        if entry.redacted and entry.action in ALWAYS_FULL:
            self._add(
                entry.seq,
                f"entry {entry.seq}: a {entry.action} entry is withheld, but a bundle always "
                "carries it in full",
            )

    def _check_hash(self, entry: CustodyEntry) -> None:
        if not entry.body_holds():
            self._add(
                entry.seq,
                f"entry {entry.seq}: its details do not give the hash its header commits to "
                "(altered?)",
            )
        expected = entry.expected_hash()
        if expected is not None and expected != entry.hash:
            self._add(
                entry.seq, f"entry {entry.seq}: its hash does not match its contents (altered?)"
            )

    def _check_signature(self, entry: CustodyEntry) -> None:
        pem = self.keys.get(entry.key_id)
        if pem is None:
            self._add(
                entry.seq,
                f"entry {entry.seq}: signed by key {entry.key_id}, which is not among the known "
                "public keys (add the public key exported with the bundle)",
            )
        elif not verify_signature(pem, entry.hash.encode("utf-8"), entry.signature):
            self._add(
                entry.seq,
                f"entry {entry.seq}: its signature does not verify with key {entry.key_id} "
                "(forged, or signed with another key)",
            )

    def _learn_key(self, entry: CustodyEntry) -> None:
        details = entry.details or {}
        new_id = details.get("new_key_id")
        pem = details.get("new_public_key")
        try:
            valid = isinstance(pem, str) and key_id_of(pem) == new_id
        except ValueError:
            valid = False
        if not valid:
            self._add(entry.seq, f"entry {entry.seq}: the new key it announces is unreadable")
            return
        self.keys[str(new_id)] = str(pem)

    def _check_upgrade(self, entry: CustodyEntry) -> None:
        details = entry.details or {}
        vouched = details.get("old_entries") == len(self.old) and details.get(
            "old_headers_sha256"
        ) == old_headers_hash(self.old)
        if self.upgraded or not vouched:
            self._add(
                entry.seq,
                f"entry {entry.seq}: the format upgrade does not match the old-format entries "
                "before it (one was changed, removed, added or reordered)",
            )
            return
        self.upgraded = True
        self.unvouched.clear()


def redact(entries: list[CustodyEntry], keep: Callable[[CustodyEntry], bool]) -> list[CustodyEntry]:
    """The log as a bundle carries it: the entries ``keep`` selects (and those a verifier
    needs, :data:`ALWAYS_FULL`) in full, every other one as its header alone."""
    return [e if e.action in ALWAYS_FULL or keep(e) else e.redacted_form() for e in entries]


def _line_problem(raw: bytes, expected: CustodyEntry | None) -> str | None:
    """What is wrong with a mirror line that should equal ``expected``; None if nothing."""
    if not raw.endswith(b"\n"):
        return "is cut off (a crash while writing it?)"
    try:
        found = CustodyEntry.from_json(json.loads(raw))
    except (ValueError, TypeError):
        return "is not a custody entry"
    if expected is None:
        return "has no matching entry in the database"
    if found != expected:
        return f"differs from entry {expected.seq} in the database"
    return None


def _from_row(row: dict[str, Any]) -> CustodyEntry:
    values = {name: row[name] for name in _FIELDS}
    values["details"] = json.loads(row["details"])
    if row.get("version", 1) == 2:
        values.update({name: row[name] for name in _V2_FIELDS})
    return CustodyEntry(**values)


def _line(entry: CustodyEntry) -> bytes:
    return (canonical_json(entry.to_json()) + "\n").encode("utf-8")


def _last_line(handle: Any) -> tuple[int, bytes | None]:
    """(offset, bytes) of the file's last line, read from the end; (0, None) if empty."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return 0, None
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        handle.seek(start)
        tail = handle.read(size - start)
        # Skip the final newline: we want the newline that ends the line before the last.
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0 or start == 0:
            break
        chunk *= 2
    last = tail[cut + 1 :]
    return size - len(last), last


def _count_lines(handle: Any, upto: int) -> int:
    handle.seek(0)
    count, remaining = 0, upto
    while remaining > 0:
        block = handle.read(min(1 << 20, remaining))
        if not block:
            break
        count += block.count(b"\n")
        remaining -= len(block)
    return count
