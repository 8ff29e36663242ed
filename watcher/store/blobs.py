"""Content-addressed blob store: each distinct file is kept once, under its SHA-256.

Blobs are written to a temporary name, fsynced and renamed, so a crash leaves either the whole
file or nothing. Existing blobs are never rewritten: evidence is append-only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from pathlib import Path

from watcher.errors import StoreError

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
        digest = sha256_hex(data)
        final = self.path(digest)
        if final.exists():
            return digest
        # Unique per writer: two captures (threads) may store the same bytes at once.
        tmp = final.with_name(f".{digest}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(_write_failure(final, exc)) from exc
        return digest

    def read(self, sha256: str) -> bytes:
        """The blob's bytes."""
        try:
            return self.path(sha256).read_bytes()
        except OSError as exc:
            raise StoreError(f"evidence file {sha256} is missing or unreadable: {exc}") from exc

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to their name."""
        try:
            return sha256_hex(self.read(sha256)) == sha256
        except StoreError:
            return False


def _write_failure(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"the disk holding {path.parent.parent.parent} is full; free space there "
            "(nothing already stored was changed) and watcher will go on"
        )
    return f"could not write evidence file {path}: {exc.strerror or exc}"
