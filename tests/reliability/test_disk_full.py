"""The disk filling up: a 20 MB tmpfs as the data folder. Captures stop with a clear
message, nothing stored before is harmed, and work resumes when space returns."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.demo.images import big_photo_bytes
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros until the disk says no more; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(bytes(1 << 20))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_full_disk_stops_captures_clearly_and_resumes(site, make_app, small_disk):
    photo = site.put_image("big.png", big_photo_bytes(300_000), "image/png")
    site.route("/shop", shop_page(listing("a", "first", (photo,))))
    app = make_app(hostile_target("shop", f"{site.base_url}/shop"))
    target = app.watchlist.target("shop")
    first = await run_capture(app, target)
    assert first.status == CaptureStatus.OK
    kept = [a.sha256 for a in app.store.artifacts(first.capture_id)]

    filler = fill(small_disk)
    site.route("/shop", shop_page(listing("a", "first", (photo,)), listing("b", "second")))
    full = await run_capture(app, target)
    assert full.status == CaptureStatus.FAILED
    (event,) = full.events
    message = event.details["message"]
    assert "is full" in message and "free space" in message, message
    # What was stored before is untouched.
    assert all(app.blobs.verify(sha) for sha in kept)
    assert app.store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    filler.unlink()
    again = await run_capture(app, target)
    assert again.status == CaptureStatus.OK and again.post_count == 2
    assert all(app.blobs.verify(a.sha256) for a in app.store.artifacts(again.capture_id))
    assert app.store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    leftovers = [p for p in (small_disk / "blobs").rglob("*.tmp")]
    assert not leftovers, leftovers  # no half-written evidence files left behind
