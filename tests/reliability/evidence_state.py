"""The evidence part of a data folder as a comparable snapshot, and the checks made on it.

Evidence is append-only: blobs, keys and the custody mirror are only ever added to. A snapshot
holds (size, sha256, mode) of every file under ``blobs/``, ``evidence/`` and ``keys/`` (the
custody log mirror is ``evidence/custody.jsonl``), so any write, truncation or chmod shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import watcher
from watcher.app import App
from watcher.store.custody import verify_chain
from watcher.watchlist import load_watchlist

EVIDENCE_FOLDERS = ("blobs", "evidence", "keys")
MIRROR = Path("evidence") / "custody.jsonl"


@dataclass(frozen=True, slots=True)
class FileState:
    size: int
    sha256: str
    mode: int


def snapshot(data: Path) -> dict[Path, FileState]:
    """Relative path -> state of every file (and link) under the evidence folders."""
    found: dict[Path, FileState] = {}
    for folder in EVIDENCE_FOLDERS:
        for path in sorted((data / folder).rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            info = path.lstat()
            digest = hashlib.sha256()
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
            else:  # a link or a special file in the evidence is itself a finding
                digest.update(b"not a regular file: " + os.fsencode(os.readlink(path)))
            found[path.relative_to(data)] = FileState(
                info.st_size, digest.hexdigest(), info.st_mode
            )
    return found


def changes(before: dict[Path, FileState], after: dict[Path, FileState]) -> dict[str, list[str]]:
    """What differs: files changed, removed and added (as sorted relative paths)."""
    return {
        "changed": sorted(str(p) for p in before if p in after and after[p] != before[p]),
        "removed": sorted(str(p) for p in before if p not in after),
        "added": sorted(str(p) for p in after if p not in before),
    }


def custody_rows(data: Path) -> list[tuple]:
    """(seq, action, hash) of every custody table row, read with plain sqlite3."""
    with contextlib.closing(sqlite3.connect(data / "watcher.db", timeout=30)) as db:
        return db.execute("SELECT seq, action, hash FROM custody ORDER BY seq").fetchall()


def check_database(data: Path, watchlist: Path) -> int:
    """The db passes integrity_check and the custody chain verifies; returns its length.

    Also: the JSONL mirror never leads the table (each of its lines is the table's entry).
    """
    with contextlib.closing(sqlite3.connect(data / "watcher.db", timeout=30)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    app = App.open(load_watchlist(watchlist), data)
    try:
        entries = app.custody.entries()
        problems = verify_chain(entries, app.custody.public_keys())
        assert problems == [], [str(p) for p in problems]
    finally:
        asyncio.run(app.close())
    mirror = (data / MIRROR).read_bytes().splitlines()
    assert len(mirror) <= len(entries)
    for line, entry in zip(mirror, entries, strict=False):
        assert json.loads(line)["hash"] == entry.hash
    return len(entries)


def assert_only_appended(
    data: Path, before: dict[Path, FileState], allowed: set[str], new_files: bool = False
) -> list:
    """Every evidence file is as it was, except the custody mirror, which may only have grown
    by entries whose action is in ``allowed``; returns the new mirror entries.

    ``new_files``: new files may appear (a capture adds blobs), existing ones never change.
    """
    after = snapshot(data)
    diff = changes(before, after)
    assert diff["removed"] == [], diff
    if not new_files:
        assert diff["added"] == [], diff
    assert [p for p in diff["changed"] if Path(p) != MIRROR] == [], diff
    old = (data / MIRROR).read_bytes()
    new = old
    if MIRROR in before:
        snap_size = before[MIRROR].size
        head = old[:snap_size]
        assert hashlib.sha256(head).hexdigest() == before[MIRROR].sha256, "mirror rewritten"
        new = old[snap_size:]
        assert after[MIRROR].mode == before[MIRROR].mode
    added = [json.loads(line) for line in new.splitlines()]
    assert all(entry["action"] in allowed for entry in added), added
    return added


def watcher_cli(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    """Start ``python -m watcher ARGS`` (the real command line) in ``cwd``."""
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m watcher ARGS`` to the end; text output."""
    return watcher(*args, cwd=cwd, timeout=timeout)
