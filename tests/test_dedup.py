"""Web archives without second copies: revisit records at capture, payloads back at export."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import channel_target
from watcher.capture.archive import REVISIT_PROFILE
from watcher.errors import WatcherError
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.replay import ArchivedPayloads, revisit_count, self_contained_wacz
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle
from watcher.pipeline import run_capture

BIN = Path(sys.executable).parent


def wacz_of(app, capture_id: int) -> bytes:
    (artifact,) = [a for a in app.store.artifacts(capture_id) if a.kind == "wacz"]
    return app.blobs.read(artifact.sha256)


def records(wacz: bytes) -> list:
    """(type, WARC headers dict, http status or None, payload bytes) of every WARC record."""
    out = []
    with zipfile.ZipFile(io.BytesIO(wacz)) as archive:
        for name in archive.namelist():
            if not name.endswith(".warc.gz"):
                continue
            for record in ArchiveIterator(io.BytesIO(archive.read(name))):
                headers = dict(record.rec_headers.headers)
                status = record.http_headers.get_statuscode() if record.http_headers else None
                out.append((record.rec_type, headers, status, record.raw_stream.read()))
    return out


def index_lines(wacz: bytes) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(wacz)) as archive:
        text = archive.read("indexes/index.cdx").decode()
    return [json.loads(line.split(" ", 2)[2]) for line in text.splitlines()]


@pytest.fixture
async def changed(site, make_app):
    """A channel of 3 posts with 2 photos each, captured, then one new post with a new photo
    and captured again: (app, first capture id, second capture id, the new photo's bytes)."""
    site.channel("dealer")
    for n in range(3):
        photos = [site.add_photo(f"p{n}{i}", seed=100 + 10 * n + i) for i in range(2)]
        site.add_post("dealer", f"carved bangle lot {n}, inbox", images=photos)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")
    first = await run_capture(app, target)
    new_photo = site.add_photo("fresh", seed=999)
    site.add_post("dealer", "new stock: ivory chopsticks", images=[new_photo])
    second = await run_capture(app, target)
    fresh = site.respond(new_photo).body
    assert fresh.startswith(b"\xff\xd8")  # the JPEG itself
    return app, first.capture_id, second.capture_id, fresh


async def test_a_changed_page_archives_what_was_seen_as_revisits(changed):
    app, first, second, fresh = changed
    new = wacz_of(app, second)
    photos = {
        hashlib.sha256(app.blobs.read(a.sha256)).hexdigest()
        for a in app.store.artifacts(first)
        if a.kind == "image"
    }
    revisits = [(h, p) for t, h, _, p in records(new) if t == "revisit"]
    revisited = {h["WARC-Payload-Digest"].removeprefix("sha256:") for h, _ in revisits}
    # Every photo of the first capture is a revisit in the second, none stored again.
    assert photos <= revisited
    for headers, payload in revisits:
        assert headers["WARC-Profile"] == REVISIT_PROFILE
        assert headers["WARC-Refers-To-Target-URI"]
        assert headers["WARC-Refers-To-Date"].endswith("Z")
        assert payload == b""
    full = [p for t, _, _, p in records(new) if t in ("response", "resource")]
    assert not any(hashlib.sha256(p).hexdigest() in photos for p in full)
    assert fresh not in full  # the new photo is in the blob store, revisited too
    # The screenshot is a blob of its own: the WACZ revisits it as well.
    resources = [h["WARC-Target-URI"] for t, h, _, _ in records(new) if t == "revisit"]
    assert "urn:watcher:screenshot" in resources
    assert revisit_count(new) == len(revisits)


async def test_an_archived_payload_reads_back_from_the_first_wacz_that_holds_it(changed):
    app, _first, _second, _fresh = changed
    rows = app.store.db.execute(
        "SELECT payload_sha256, wacz_sha256, capture_id FROM archived_payloads"
    ).fetchall()
    assert rows, "the first capture's full records are noted for later captures"
    sha, wacz_sha, capture_id = rows[0]
    assert wacz_sha == hashlib.sha256(wacz_of(app, capture_id)).hexdigest()
    assert not app.blobs.path(sha).exists()  # only that WACZ holds it
    payload = ArchivedPayloads(app.store, app.blobs)(sha)
    assert hashlib.sha256(payload.data).hexdigest() == sha
    with pytest.raises(Exception, match="append-only"):
        app.store.db.execute("DELETE FROM archived_payloads")


async def test_export_puts_the_payloads_back_and_still_verifies(changed, tmp_path):
    app, _first, second, fresh = changed
    collected = wacz_of(app, second)
    (bundle,) = export_bundle(app, Selection(capture_id=second), tmp_path / "out")
    report = verify_bundle(bundle, Trust.of(app.custody.key.fingerprint))
    assert report.ok, [f.message for f in report.findings if not f.ok]
    with zipfile.ZipFile(bundle) as z:
        whole = z.read(f"captures/{second}/archive.wacz")
        as_collected = z.read(f"captures/{second}/archive-as-collected.wacz")
        record = json.loads(z.read(f"captures/{second}/capture.json"))
    assert as_collected == collected
    assert record["replay_archive"]["sha256"] == hashlib.sha256(whole).hexdigest()
    # The index sends replay to full records only, and every revisit has one, same payload.
    assert all(line["mime"] != "warc/revisit" for line in index_lines(whole))
    restored = {
        (h["WARC-Target-URI"], h["WARC-Payload-Digest"])
        for t, h, _, p in records(whole)
        if t in ("response", "resource")
        and "sha256:" + hashlib.sha256(p).hexdigest() == h["WARC-Payload-Digest"]
    }
    for kind, headers, _, _ in records(collected):
        if kind == "revisit":
            assert (headers["WARC-Target-URI"], headers["WARC-Payload-Digest"]) in restored
    assert any(p == fresh for t, _, _, p in records(whole) if t == "response")
    # The collected WARC is inside, byte for byte.
    with zipfile.ZipFile(io.BytesIO(whole)) as w, zipfile.ZipFile(io.BytesIO(collected)) as c:
        assert w.read("archive/capture.warc.gz") == c.read("archive/capture.warc.gz")
    path = tmp_path / "whole.wacz"
    path.write_bytes(whole)
    done = subprocess.run(
        [BIN / "wacz", "validate", "-f", path], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_first_capture_revisits_its_own_photos_and_exports_whole(changed, tmp_path):
    app, first, _second, _fresh = changed
    collected = wacz_of(app, first)
    assert revisit_count(collected) > 0  # its photos and screenshot are blobs of their own
    (bundle,) = export_bundle(app, Selection(capture_id=first), tmp_path / "out")
    with zipfile.ZipFile(bundle) as z:
        assert z.read(f"captures/{first}/archive-as-collected.wacz") == collected
        whole = z.read(f"captures/{first}/archive.wacz")
    assert all(line["mime"] != "warc/revisit" for line in index_lines(whole))
    assert self_contained_wacz(whole, ArchivedPayloads(app.store, app.blobs)) is None


async def test_a_payload_missing_from_the_data_folder_is_named_with_the_fix(changed, tmp_path):
    app, _first, second, _fresh = changed
    photo = next(a for a in app.store.artifacts(second) if a.kind == "image")
    app.blobs.path(photo.sha256).unlink()  # a damaged data folder (blobs are never removed)
    with pytest.raises(WatcherError, match=f"no payload {photo.sha256}.*restore data/blobs"):
        export_bundle(app, Selection(capture_id=second), tmp_path / "out")
