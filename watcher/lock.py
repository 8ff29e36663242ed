"""One watcher per data folder: an exclusive ``flock`` on ``DATA/watcher.lock``.

Two daemons on one data folder would capture every target twice and race each other's
alerts, so the second one refuses to start. ``flock`` is released by the kernel when the
process dies, so a crashed daemon never leaves a stale lock behind (the file itself stays;
only the lock on it matters).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from watcher.errors import WatcherError

LOCK_NAME = "watcher.lock"


class DataFolderLock:
    """Context manager holding the data folder's lock; raises WatcherError when it is taken."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting and write our pid into the lock file."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WatcherError(
                f"cannot create the lock file {self.path} ({exc.strerror}); "
                "check the data folder exists and is writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise WatcherError(
                f"another watcher is already running on {self.data_dir} (pid {holder}); "
                "stop it first or use a different --data folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (safe to call twice)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):  # clearing the pid is only a courtesy
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> DataFolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    # The holder writes its pid right after locking; an empty file means it is just starting.
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"
