"""`kill -9` of `watcher export` at random moments, then a clean export that must verify.

Real `python -m watcher export` processes run over a data folder made by real `watcher check`
captures of the fixture site (photos of random noise, so the bundle is ~40 MB and deflating it
takes seconds: long enough to kill mid-write). After every kill:

- nothing half-written carries a bundle name: every ``*.zip`` in the output folder verifies,
  and multi-part sets are whole (leftovers are hidden ``.<name>.<random>.partial`` files);
- the evidence folders are unchanged (size, sha256 and mode of every file under blobs/,
  evidence/, keys/), except that the custody mirror may have grown by ``exported`` entries,
  each naming bundles that are there with the hash it records;
- the database passes ``PRAGMA integrity_check`` and the custody chain verifies.

At the end, after the kills, a clean export removes the stale partial files, succeeds, and
`watcher verify` accepts its bundle.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import channel_target
from tests.reliability.evidence_state import (
    assert_only_appended,
    check_database,
    custody_rows,
    run_cli,
    snapshot,
    watcher_cli,
)
from watcher.evidence.bundle import PARTIAL_SUFFIX, STALE_PARTIAL_S
from watcher.evidence.verify import verify_bundle
from watcher.store.blobs import sha256_hex

ROUNDS = 3  # captures, so a --max-mb 1 export has three parts to be killed between
POSTS_PER_ROUND = 4
IMAGES_PER_POST = 2
PART_NAME = re.compile(r"^(?P<set>.+)-part(?P<n>\d+)of(?P<of>\d+)\.zip$")


def noise_jpeg(seed: int, size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A real JPEG of random noise (~1.7 MB): it does not compress, so zipping it takes time."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def archive(site, tmp_path) -> tuple[Path, Path]:
    """(watchlist, data folder) after three real `watcher check` runs with 24 big photos."""
    site.channel("dealer")
    watchlist = tmp_path / "watchlist.yaml"
    target = channel_target("dealer", f"{site.base_url}/s/dealer", "    tags: [case-9]\n")
    watchlist.write_text("targets:\n" + target)
    for round_no in range(ROUNDS):
        for post in range(POSTS_PER_ROUND):
            photos = [
                site.put_image(
                    f"r{round_no}p{post}i{i}", noise_jpeg(round_no * 100 + post * 10 + i)
                )
                for i in range(IMAGES_PER_POST)
            ]
            site.add_post("dealer", f"round {round_no} listing {post}: tusk", images=photos)
        checked = run_cli("check", cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    data = tmp_path / "data"
    images = len(list((data / "blobs").rglob("*")))
    assert images > ROUNDS * POSTS_PER_ROUND * IMAGES_PER_POST  # the photos are in the archive
    return watchlist, data


def bundles(out: Path) -> set[Path]:
    return set(out.glob("*.zip"))


def partials(out: Path) -> list[Path]:
    return sorted(out.glob(f".*{PARTIAL_SUFFIX}"))


def check_output_folder(out: Path, known: set[Path]) -> list[Path]:
    """Every new ``*.zip`` is a whole bundle that verifies; part sets are complete."""
    fresh = sorted(bundles(out) - known)
    for path in fresh:
        report = verify_bundle(path)  # whole and untouched; who signed it is not the point
        assert report.intact, [f"{f.item}: {f.message}" for f in report.findings if not f.ok]
    sets: dict[tuple[str, int], set[int]] = {}
    for path in fresh:
        if match := PART_NAME.match(path.name):
            sets.setdefault((match["set"], int(match["of"])), set()).add(int(match["n"]))
    for (name, of), numbers in sets.items():
        assert numbers == set(range(1, of + 1)), f"incomplete part set {name}: {numbers}"
    # Whatever is not a bundle is one of our clearly named partial files, never a .zip.
    others = {p for p in out.iterdir()} - bundles(out) - set(partials(out))
    assert not others, others
    for partial in partials(out):
        assert partial.name.startswith(".watcher-") and ".zip." in partial.name
    return fresh


def check_exported_entries(added: list[dict], out: Path, seen: dict[str, str]) -> None:
    """Each new `exported` custody entry names bundles that exist with the hash it records."""
    for entry in added:
        details = entry["details"]
        for name, digest in zip(details["files"], details["sha256"], strict=True):
            if name in seen:  # checked (and removed) on an earlier round
                assert seen[name] == digest
                continue
            assert sha256_hex((out / name).read_bytes()) == digest, name
            seen[name] = digest


def run_export_kills(tmp_path: Path, watchlist: Path, data: Path, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    out = tmp_path / "bundles"
    before = snapshot(data)
    table_before = custody_rows(data)
    export = ["export", "--target", "dealer", "--out", str(out)]

    # One clean export first: how long one takes, so the kills can be spread over all of it.
    started = time.monotonic()
    first = run_cli(*export, cwd=tmp_path)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    known = set(check_output_folder(out, set()))  # the first bundle stays
    seen: dict[str, str] = {}
    figures = {"kills": 0, "mid_write": 0, "done_before_kill": 0, "published_unlogged": 0}
    figures["export_s"] = round(took, 2)
    for n in range(kills):
        # Odd rounds split into one part per capture: a kill can land between parts.
        args = export + (["--max-mb", "1"] if n % 2 else [])
        left_before = set(partials(out))  # by earlier kills
        process = watcher_cli(*args, cwd=tmp_path)
        # Stratified: kill n lands in the n-th slice of the export's run (start-up included).
        wait = took * 1.05 * (n + rng.random()) / kills
        time.sleep(wait)
        writing = bool(set(partials(out)) - left_before)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            figures["kills"] += 1
            figures["mid_write"] += writing
        else:
            figures["done_before_kill"] += 1
        _, err = process.communicate(timeout=60)
        assert process.returncode in (0, -signal.SIGKILL), err.decode(errors="replace")

        fresh = check_output_folder(out, known)
        added = assert_only_appended(data, before, {"exported"})
        check_exported_entries(added, out, seen)
        logged = {name for entry in added for name in entry["details"]["files"]}
        figures["published_unlogged"] += len({p.name for p in fresh} - logged)
        rows = custody_rows(data)
        assert rows[: len(table_before)] == table_before  # the table too: only appended
        assert {action for _, action, _ in rows[len(table_before) :]} <= {"exported"}
        # Each bundle is ~40 MB: once checked, it goes (its name and hash stay in `seen`).
        for path in fresh:
            seen.setdefault(path.name, sha256_hex(path.read_bytes()))
            path.unlink()
    figures["custody_entries"] = check_database(data, watchlist)
    figures["leftover_partials"] = len(partials(out))

    # A clean export after the kills: it removes the partial files whose writer is gone
    # (once they are STALE_PARTIAL_S old), then writes a bundle that verifies.
    if partials(out):
        newest = max(p.stat().st_mtime for p in partials(out))
        time.sleep(max(0.0, newest + STALE_PARTIAL_S + 0.5 - time.time()))
    final = run_cli(*export, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert partials(out) == [], "stale partial files were not cleaned"
    (path,) = check_output_folder(out, known)
    key = data / "keys" / "custody-ed25519.pem"
    verified = run_cli("verify", str(path), "--key", str(key), cwd=tmp_path)
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout
    added = assert_only_appended(data, before, {"exported"})
    check_exported_entries(added, out, seen)
    assert json.dumps(added[-1]["details"]["files"]) == json.dumps([path.name])
    check_database(data, watchlist)
    figures["files_checked"] = len(before)
    return figures


def test_export_killed_five_times_leaves_no_partial_bundle(archive, tmp_path, record_property):
    watchlist, data = archive
    figures = run_export_kills(tmp_path, watchlist, data, kills=5, seed=5)
    record_property("figures", figures)
    print("export kill -9:", figures)
    # The export must be long enough for a kill to land while a bundle is being written.
    assert figures["mid_write"] >= 1, figures


@pytest.mark.soak
def test_export_killed_fifty_times(archive, tmp_path, record_property):
    watchlist, data = archive
    figures = run_export_kills(tmp_path, watchlist, data, kills=50, seed=50)
    record_property("figures", figures)
    print("export kill -9 soak:", figures)
    assert figures["mid_write"] >= 10, figures
