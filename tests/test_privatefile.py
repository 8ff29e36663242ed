"""Secret files at 0600: refused when others may read them, written whole and private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from watcher.capture.tgapi.accounts import load_credentials
from watcher.errors import WatcherError
from watcher.privatefile import read_private, write_private
from watcher.store.keys import SigningKey


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_written_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    old = os.umask(0o000)  # a careless shell: files would be 0666
    try:
        write_private(path, b"first", "test file")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    old = os.umask(0o277)  # a strict one would make it 0400: still readable and replaceable
    try:
        write_private(path, b"second", "test file")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert read_private(path, "test file", "it is a test") == b"second"
    assert leftovers(tmp_path) == []


def test_a_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    write_private(path, b"x", "test file")
    for loose in (0o644, 0o640, 0o604, 0o620):
        os.chmod(path, loose)
        with pytest.raises(WatcherError) as caught:
            read_private(path, "test file", "it opens the vault", "look again")
        message = str(caught.value)
        assert f"mode {loose:04o}" in message
        assert f"Run `chmod 600 {path}` and look again." in message
        assert "it opens the vault" in message
    os.chmod(path, 0o400)  # stricter than 0600 is fine
    assert read_private(path, "test file", "why") == b"x"


def test_a_link_is_refused_unless_the_caller_follows_links(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.key"
    write_private(target, b"k", "test key")
    link = tmp_path / "linked.key"
    link.symlink_to(target)
    with pytest.raises(WatcherError, match="cannot open test key"):
        read_private(link, "test key", "why")
    assert read_private(link, "test key", "why", follow_links=True) == b"k"


def test_a_fifo_or_folder_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(WatcherError, match="not a regular file"):
        read_private(fifo, "test file", "why")
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    with pytest.raises(WatcherError, match="not a regular file"):
        read_private(folder, "test file", "why")


def test_no_overwrite_keeps_the_first_file(tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    write_private(path, b"first key", "the key", overwrite=False)
    with pytest.raises(WatcherError, match="another one was made there meanwhile"):
        write_private(path, b"second key", "the key", overwrite=False)
    assert path.read_bytes() == b"first key"
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "session.json"
    write_private(path, b"old cookies", "session file")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(WatcherError, match=r"cannot write session file .*No space left"):
        write_private(path, b"new cookies", "session file")
    monkeypatch.undo()
    assert read_private(path, "session file", "why") == b"old cookies"
    assert leftovers(tmp_path) == []


def test_each_user_names_its_own_file(tmp_path: Path) -> None:
    # The Telegram API credentials file was refused as a "session file" whose "cookies log in
    # as the account": the wording of the browser sessions it borrowed its reader from.
    keys = tmp_path / "keys"
    keys.mkdir()
    credentials = keys / "telegram-api.json"
    credentials.write_text('{"api_id": 99, "api_hash": "feedface00"}')
    credentials.chmod(0o644)
    with pytest.raises(WatcherError) as caught:
        load_credentials(tmp_path, environ={})
    assert str(caught.value).startswith(f"Telegram API credentials file {credentials} ")
    assert "cookies" not in str(caught.value)

    key_path = tmp_path / "custody.key"
    SigningKey.load_or_create(key_path)
    key_path.chmod(0o640)
    with pytest.raises(WatcherError) as caught:
        SigningKey.load(key_path)
    assert str(caught.value).startswith(f"the custody signing key {key_path} ")
    assert "check nobody copied it" in str(caught.value)
