"""Secret files kept at mode 0600: read only when nobody else can read them, written atomically.

Session cookies, Telegram session strings, API credentials, the bot token and the signing
keys each log in as someone or sign as the team. A copy made while the file was readable by
others cannot be taken back, so, as ssh does with its keys, a secret file that group or others
can read is refused with the command that fixes it, rather than used. A file written here is
0600 from its first byte (created so, never chmod-ed afterwards) and appears whole or not at
all: a crash mid-write leaves the old file (or none) and a hidden ``.NAME.*.tmp`` beside it,
never half a key.

Each caller names its file (``what``) and says what a leaked copy would do (``why``), so the
message an investigator reads is about the file in front of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from watcher.errors import WatcherError

_TMP_SUFFIX = ".tmp"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def read_private(
    path: Path,
    what: str,
    why: str,
    then: str = "try again",
    *,
    follow_links: bool = False,
) -> bytes:
    """The bytes of the secret file ``path``, refused when group or others may read it.

    ``what`` names the file ("session file"), ``why`` says what a copy is worth ("its cookies
    log in as the account"), ``then`` what to do after the chmod. Without ``follow_links`` a
    symbolic link is refused too: the file must be the one in the data folder.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK  # O_NONBLOCK: a FIFO planted there must not hang us
    if not follow_links:
        flags |= _NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise WatcherError(
            f"cannot open {what} {path} ({exc.strerror}); check the path, and that it is a "
            "regular file its owner can read"
        ) from exc
    try:
        # fstat of the open file, not stat of the name: the file checked is the file read.
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise WatcherError(f"{what} {path} is not a regular file; put the file itself there")
        if os.name != "nt" and mode & 0o077:
            raise WatcherError(
                f"{what} {path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
                f"{why}. Run `chmod 600 {path}` and {then}."
            )
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise WatcherError(f"cannot read {what} {path} ({exc.strerror})") from exc
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, what: str, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` at mode 0600, atomically and durably.

    A temporary file beside it is created 0600, written and fsynced, then renamed over
    ``path`` (or, with ``overwrite=False``, linked to it, which fails when ``path`` exists: a
    key another process has just made is never replaced), and the folder is fsynced so the
    new name survives a power cut. The folder must exist; its mode is the caller's business.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(fd, 0o600)  # the umask could have narrowed it further (e.g. 0400)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # FileExistsError when another process made it first
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_folder(path.parent)
    except FileExistsError as exc:
        raise WatcherError(
            f"cannot write {what} {path}: another one was made there meanwhile (another watcher "
            "on this data folder?); start again to use it"
        ) from exc
    except OSError as exc:
        raise WatcherError(
            f"cannot write {what} {path} ({exc.strerror or exc}); check the folder is writable"
        ) from exc


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":  # folders cannot be opened for fsync there; NTFS journals names
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
