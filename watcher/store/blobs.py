"""Content-addressed blob store: each distinct file is kept once, under its SHA-256.

Blobs are written to a temporary name, fsynced and renamed, so a crash leaves either the whole
file or nothing. Existing blobs are never rewritten: evidence is append-only.

A screenshot re-encoded as strips (:mod:`watcher.store.strips`) is a *composite*: its pieces
and its manifest are blobs, and ``<sha256>.composite`` beside where the PNG would be names the
manifest. :meth:`BlobStore.read` assembles it and checks it hashes to its name, so every
reader (export, report, alerts) gets the whole PNG as if it were one file.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import StoreError
from watcher.store.strips import Encoded, StripsError, assemble, read_manifest

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Files under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives (the hash is checked: it builds a path)."""
        if not _SHA256.fullmatch(sha256):
            raise StoreError(f"{sha256!r} is not a SHA-256 hash")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` unless already present; return its SHA-256."""
        return self.put_many([data])[0]

    def put_many(self, items: list[bytes]) -> list[str]:
        """Store each of ``items`` unless already present; their SHA-256s, in order.

        Two filesystem syncs for the whole batch instead of one fsync per blob (200 photos:
        0.05 s against 0.5 s here): every temporary file is written, the data made durable,
        then all are renamed and the names made durable. So a blob under its final name is
        always complete, and all are on disk before the capture that lists them is committed.
        """
        digests = [sha256_hex(data) for data in items]
        pending: dict[str, Path] = {}  # digest -> its temporary file
        try:
            for digest, data in zip(digests, items, strict=True):
                final = self.path(digest)
                if digest in pending or final.exists():
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                pending[digest] = tmp = self._temp_name(final)
                with open(tmp, "wb") as handle:
                    handle.write(data)
            if pending:
                _make_durable(self.root, list(pending.values()))
                for digest, tmp in pending.items():
                    os.replace(tmp, self.path(digest))
                _make_durable(self.root, [self.path(d).parent for d in pending])
        except OSError as exc:
            for tmp in pending.values():
                tmp.unlink(missing_ok=True)
            raise StoreError(
                _write_failure(self.root, Path(exc.filename or self.root), exc)
            ) from exc
        return digests

    def incoming(self) -> Path:
        """A fresh temporary file name inside the store, for a body streamed in (see
        :meth:`adopt_many`); the caller writes it and removes it if it is not adopted."""
        folder = self.root / ".incoming"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(_write_failure(self.root, folder, exc)) from exc
        return folder / f"{os.getpid()}.{secrets.token_hex(8)}.tmp"

    def adopt_many(self, files: list[tuple[Path, str]]) -> None:
        """Store each written temporary file (from :meth:`incoming`) under its SHA-256.

        The caller hashed the bytes as it wrote them; a file whose blob exists is dropped.
        As in :meth:`put_many`, the data is made durable before any final name appears.
        """
        moves: dict[str, Path] = {}
        try:
            for tmp, digest in files:
                final = self.path(digest)
                if digest in moves or final.exists():
                    tmp.unlink(missing_ok=True)
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                moves[digest] = tmp
            if moves:
                _make_durable(self.root, list(moves.values()))
                for digest, tmp in moves.items():
                    os.replace(tmp, self.path(digest))
                _make_durable(self.root, [self.path(d).parent for d in moves])
        except OSError as exc:
            for tmp, _ in files:
                tmp.unlink(missing_ok=True)
            raise StoreError(
                _write_failure(self.root, Path(exc.filename or self.root), exc)
            ) from exc

    def _temp_name(self, final: Path) -> Path:
        # Unique per writer: two captures (threads) may store the same bytes at once.
        return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")

    def read(self, sha256: str) -> bytes:
        """The blob's bytes (a composite's assembled PNG, checked against ``sha256``)."""
        path = self.path(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            if self._pointer(sha256).exists():
                return self._assemble(sha256)
            raise StoreError(f"evidence file {sha256} is missing or unreadable: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"evidence file {sha256} is missing or unreadable: {exc}") from exc

    def has(self, sha256: str) -> bool:
        """Whether the store holds this blob (a file of its own or a composite)."""
        return self.path(sha256).exists() or self._pointer(sha256).exists()

    def put_composite(self, encoded: Encoded) -> str:
        """Store a screenshot re-encoded as strips: each piece and the manifest as blobs (a
        strip unchanged since an earlier capture is already there), then the pointer under the
        PNG's own hash, made durable after them. Returns the PNG's SHA-256."""
        if self.has(encoded.sha256):
            return encoded.sha256
        manifest = self.put_many([p.data for p in encoded.pieces] + [encoded.manifest])[-1]
        pointer = self._pointer(encoded.sha256)
        tmp = self._temp_name(pointer)
        try:
            pointer.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(manifest + "\n", encoding="ascii")
            _make_durable(self.root, [tmp])
            os.replace(tmp, pointer)
            _make_durable(self.root, [pointer.parent])
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(_write_failure(self.root, pointer, exc)) from exc
        return encoded.sha256

    def _pointer(self, sha256: str) -> Path:
        path = self.path(sha256)
        return path.with_name(path.name + ".composite")

    def _assemble(self, sha256: str) -> bytes:
        """A composite's PNG from its manifest and pieces; each piece, and the whole, checked
        against its hash, so a piece swapped on disk is named rather than shown."""
        what = f"the screenshot {sha256} (kept as strips)"
        restore = "restore data/blobs from the backup"
        try:
            manifest_sha = self._pointer(sha256).read_text(encoding="ascii").strip()
            manifest = self._plain(manifest_sha, what)
            head, refs = read_manifest(manifest)
            pieces = [self._plain(ref.sha256, what) for ref in refs]
            png = assemble(head, pieces, refs)
        except (OSError, UnicodeDecodeError, StripsError) as exc:
            raise StoreError(f"{what} cannot be assembled: {exc}; {restore}") from exc
        if sha256_hex(png) != sha256:
            raise StoreError(
                f"{what} no longer matches its SHA-256: its manifest was altered; {restore}"
            )
        return png

    def _plain(self, sha256: str, what: str) -> bytes:
        """A piece or manifest of a composite, checked against its name."""
        data = self.path(sha256).read_bytes()
        if sha256_hex(data) != sha256:
            raise StoreError(
                f"{what} is damaged: its strip {sha256} no longer matches its SHA-256; "
                "restore data/blobs from the backup"
            )
        return data

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to their name."""
        try:
            return sha256_hex(self.read(sha256)) == sha256
        except StoreError:
            return False


def _make_durable(root: Path, paths: list[Path]) -> None:
    """Flush ``paths`` (files, or folders whose entries changed) to disk: a ``syncfs`` of
    the filesystem holding ``root`` on Linux, shared with every writer waiting at that
    moment (:class:`GroupSync`), else an fsync of each.

    Returns only once a sync that started after the caller's writes has finished, so the
    guarantees of :meth:`BlobStore.put_many` hold as with a sync of its own."""
    if _syncfs is not None:
        sync_group(root).wait()
        return
    for path in dict.fromkeys(paths):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class GroupSync:
    """Group commit for a whole-filesystem sync, shared by the threads writing to it.

    ``syncfs`` flushes everything written to the filesystem before it started, so one call
    serves every writer that was waiting when it began. A writer joins the next round (the
    one not yet started) and returns when that round's sync has finished: if a sync is
    already running it may have started before the writer's data was written, so the
    writer waits for the one after it, which also serves everyone who queued meanwhile.
    Sixteen checks keeping files at once then cost one or two syncs, not sixteen.

    An error of a round's sync is raised in every writer of that round.
    """

    def __init__(self, root: Path, sync: Callable[[Path], None]) -> None:
        self.root = root
        self.syncs = 0  # syncs started: for figures and tests
        self._sync = sync
        self._lock = threading.Condition()
        self._running: _Round | None = None
        self._next: _Round | None = None

    def wait(self) -> None:
        """Return once a sync that started after this call has finished; OSError if it
        failed (a new exception per writer: they are raised in several threads)."""
        with self._lock:
            if self._next is None:
                self._next = _Round()
            mine = self._next
            mine.writers += 1
            while not mine.done:
                if self._running is None:
                    self._lead(mine)
                else:
                    self._lock.wait()
        if mine.error is not None:
            error = mine.error
            raise OSError(error.errno, error.strerror or str(error), os.fspath(self.root))

    def waiting(self) -> int:
        """How many writers wait for the next sync (not yet started)."""
        with self._lock:
            return self._next.writers if self._next is not None else 0

    def _lead(self, round_: _Round) -> None:
        """Run ``round_``'s sync (called holding the lock; released during the sync)."""
        self._running, self._next = round_, None
        self.syncs += 1
        self._lock.release()
        try:
            self._sync(self.root)
        except OSError as exc:
            round_.error = exc
        finally:
            self._lock.acquire()
            round_.done = True
            self._running = None
            self._lock.notify_all()


@dataclass(slots=True)
class _Round:
    """One sync of a :class:`GroupSync` and what came of it."""

    writers: int = 0
    done: bool = False
    error: OSError | None = None


def sync_group(root: Path, sync: Callable[[Path], None] | None = None) -> GroupSync:
    """The :class:`GroupSync` of the blob store at ``root``, shared by every ``BlobStore``
    of that folder in this process. With ``sync``, a new group that calls it instead of
    ``syncfs`` (a filesystem synced another way, or a test's counting sync)."""
    key = os.fspath(root)
    with _GROUPS_LOCK:
        group = _GROUPS.get(key)
        if group is None or sync is not None:
            group = _GROUPS[key] = GroupSync(root, sync or _syncfs_of)
        return group


_GROUPS: dict[str, GroupSync] = {}
_GROUPS_LOCK = threading.Lock()


def _syncfs_of(root: Path) -> None:
    """``syncfs`` of the filesystem holding ``root``; OSError on failure."""
    assert _syncfs is not None  # sync_group's default is used only where syncfs exists
    fd = os.open(root, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), os.fspath(root))
    finally:
        os.close(fd)


def _load_syncfs() -> ctypes._CFuncPtr | None:
    """libc's syncfs(2) (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_syncfs = _load_syncfs()


def _write_failure(root: Path, path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"the disk holding {root} is full; free space there "
            "(nothing already stored was changed) and watcher will go on"
        )
    return f"could not write evidence file {path}: {exc.strerror or exc}"
