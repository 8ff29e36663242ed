"""The content-addressed blob store."""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import watcher.store.blobs as blobs
from watcher.errors import StoreError
from watcher.store.blobs import BlobStore, sha256_hex


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_put_read_round_trip(store: BlobStore):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest() == sha256_hex(data)
    assert store.read(digest) == data
    assert store.verify(digest)


def test_empty_blob(store: BlobStore):
    digest = store.put(b"")
    assert digest == hashlib.sha256(b"").hexdigest()
    assert store.read(digest) == b""


def test_identical_bytes_are_stored_once(store: BlobStore):
    first = store.put(b"same evidence")
    mtime = store.path(first).stat().st_mtime_ns
    second = store.put(b"same evidence")
    assert first == second
    assert _files(store.root) == [store.path(first)]
    assert store.path(first).stat().st_mtime_ns == mtime  # never rewritten
    store.put(b"other evidence")
    assert len(_files(store.root)) == 2


def test_path_layout(store: BlobStore):
    digest = store.put(b"layout")
    path = store.path(digest)
    assert path == store.root / digest[:2] / digest[2:4] / digest
    assert path.relative_to(store.root).parts == (digest[:2], digest[2:4], digest)
    assert path.read_bytes() == b"layout"


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper case is not how we name blobs
        "g" * 64,
        "../" + "a" * 61,
        "a" * 32 + "/" + "a" * 31,
    ],
)
def test_path_rejects_non_sha(store: BlobStore, bad: str):
    with pytest.raises(StoreError, match="not a SHA-256"):
        store.path(bad)
    with pytest.raises(StoreError):
        store.read(bad)
    assert store.verify(bad) is False


def test_path_rejects_sha_with_trailing_newline(store: BlobStore):
    with pytest.raises(StoreError):
        store.path("a" * 64 + "\n")


def test_read_missing_blob(store: BlobStore):
    with pytest.raises(StoreError, match="missing or unreadable"):
        store.read("0" * 64)
    assert store.verify("0" * 64) is False


def test_verify_detects_a_flipped_byte(store: BlobStore):
    digest = store.put(b"photo bytes " * 1000)
    path = store.path(digest)
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0x01
    path.write_bytes(bytes(raw))
    assert store.verify(digest) is False
    other = store.put(b"untouched")
    assert store.verify(other) is True


def test_no_temp_files_left_behind(store: BlobStore):
    digests = [store.put(f"blob {i}".encode() * (i + 1)) for i in range(20)]
    files = _files(store.root)
    assert files == sorted(store.path(d) for d in digests)
    assert not any(p.name.startswith(".") or p.name.endswith(".tmp") for p in files)


def _failing_sync(error: int, text: str):
    def fail(root: Path, paths: list[Path]) -> None:
        raise OSError(error, text)

    return fail


def test_full_disk_fails_cleanly(store: BlobStore, monkeypatch: pytest.MonkeyPatch):
    earlier = store.put(b"already archived evidence")
    before = _files(store.root)

    monkeypatch.setattr(blobs, "_make_durable", _failing_sync(errno.ENOSPC, "No space left"))
    data = b"new screenshot" * 1000
    with pytest.raises(StoreError) as info:
        store.put(data)
    message = str(info.value)
    assert "full" in message
    assert str(store.root) in message  # says which disk to clear
    assert not store.path(sha256_hex(data)).exists()
    assert _files(store.root) == before  # no partial blob, no temp file
    assert store.verify(earlier)

    monkeypatch.undo()
    assert store.put(data) == sha256_hex(data)  # works again once there is space
    assert store.verify(sha256_hex(data))


def test_full_disk_while_writing_leaves_no_temp_file(store: BlobStore, monkeypatch):
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[:10])  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs, "open", lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False)
    with pytest.raises(StoreError, match="full"):
        store.put(b"a photo too big for the disk")
    assert _files(store.root) == []


def test_other_write_errors_name_the_error(store: BlobStore, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(blobs, "_make_durable", _failing_sync(errno.EIO, "Input/output error"))
    with pytest.raises(StoreError) as info:
        store.put(b"x")
    assert "could not write evidence file" in str(info.value)
    assert "Input/output error" in str(info.value)
    assert _files(store.root) == []


def test_same_bytes_written_by_many_threads_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = BlobStore(tmp_path / "blobs")
    data = b"x" * 2_000_000
    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(lambda _: store.put(data), range(64)))
    assert len(set(digests)) == 1 and store.verify(digests[0])
    assert [p.name for p in store.path(digests[0]).parent.iterdir()] == [digests[0]]


def test_put_many_stores_each_once_in_order_and_leaves_no_temp_files(store: BlobStore):
    earlier = store.put(b"already archived")
    mtime = store.path(earlier).stat().st_mtime_ns
    items = [b"photo 1", b"already archived", b"photo 2", b"photo 1", b""]

    digests = store.put_many(items)

    assert digests == [sha256_hex(i) for i in items]
    assert _files(store.root) == sorted({store.path(d) for d in digests})
    assert all(store.read(d) == i for d, i in zip(digests, items, strict=True))
    assert store.path(earlier).stat().st_mtime_ns == mtime  # never rewritten
    assert store.put_many([]) == []


def test_put_many_on_a_full_disk_leaves_nothing_half_written(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
):
    earlier = store.put(b"already archived evidence")
    before = _files(store.root)

    def no_space(root: Path, paths: list[Path]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs, "_make_durable", no_space)
    batch = [b"new screenshot" * 1000, b"new photo" * 1000]
    with pytest.raises(StoreError, match="full") as info:
        store.put_many(batch)
    assert str(store.root) in str(info.value)
    assert _files(store.root) == before  # no temp file, no blob under its final name
    assert store.verify(earlier)

    monkeypatch.undo()
    assert store.put_many(batch) == [sha256_hex(b) for b in batch]


# -- group commit of the blob store's syncs ---------------------------------------------------


def _wait_until(condition, what: str) -> None:
    """Poll ``condition`` (threads are getting there); fail the test after 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


def test_group_sync_one_sync_serves_every_writer_queued_while_another_ran(tmp_path: Path):
    writers = 12
    calls: list[Path] = []
    first_running = threading.Event()
    group: blobs.GroupSync

    def sync(root: Path) -> None:
        calls.append(root)
        if len(calls) == 1:
            first_running.set()
            # Hold the first sync until every other writer has queued behind it.
            _wait_until(lambda: group.waiting() == writers - 1, "all writers queued")

    group = blobs.GroupSync(tmp_path, sync)
    first = threading.Thread(target=group.wait)
    first.start()
    first_running.wait(30)
    others = [threading.Thread(target=group.wait) for _ in range(writers - 1)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(30)
        assert not thread.is_alive()
    # The first sync may have started before the others wrote: they need one of their own,
    # and one serves all eleven.
    assert len(calls) == group.syncs == 2
    assert group.waiting() == 0


def test_concurrent_writers_share_syncs_and_all_blobs_are_complete(tmp_path: Path):
    root = tmp_path / "blobs"
    root.mkdir()
    writers = 16
    group = blobs.sync_group(root, sync=blobs._syncfs_of)  # the real syncfs, counted
    store = BlobStore(root)
    batches = [[f"writer {w} file {i}".encode() * 2000 for i in range(5)] for w in range(writers)]
    start = threading.Barrier(writers)

    def write(batch: list[bytes]) -> list[str]:
        start.wait(30)
        return store.put_many(batch)

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(write, batches))

    for batch, digests in zip(batches, results, strict=True):
        assert [store.read(d) for d in digests] == batch
    assert len(_files(root)) == 5 * writers
    # Two syncs per put_many alone would be 32.
    assert 0 < group.syncs < writers


def test_a_failed_group_sync_reaches_every_waiting_writer(tmp_path: Path):
    root = tmp_path / "blobs"
    root.mkdir()
    writers = 8
    group: blobs.GroupSync

    def failing(path: Path) -> None:
        # Fail once every other writer has queued for the next sync: that one fails too.
        if group.syncs == 1:
            _wait_until(lambda: group.waiting() == writers - 1, "all writers queued")
        raise OSError(errno.EIO, "Input/output error")

    group = blobs.sync_group(root, sync=failing)
    store = BlobStore(root)

    def write(n: int) -> str:
        try:
            store.put(f"evidence {n}".encode())
        except StoreError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(writers) as pool:
        messages = list(pool.map(write, range(writers)))

    assert all(str(root) in m and "Input/output error" in m for m in messages), messages
    assert group.syncs == 2  # the first writer's, then one for the seven others
    assert _files(root) == []  # no blob under its final name, no temp file
    blobs.sync_group(root, sync=blobs._syncfs_of)  # a working sync again
    assert store.verify(store.put(b"evidence 0"))
