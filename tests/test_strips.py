"""Screenshots stored once per strip, losslessly (issue 21): the PNG we write, the composite in
the blob store, and what two captures of a page with a new post between them cost."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import channel_target
from watcher.errors import StoreError
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle
from watcher.pipeline import run_capture
from watcher.store import strips
from watcher.store.blobs import BlobStore, sha256_hex
from watcher.store.screenshots import known_encodings


def picture(height: int, width: int = 24, seed: int = 1, mode: str = "RGB") -> np.ndarray:
    """A page-like picture: bands of noise (photos, text) between runs of one plain row
    (the background between post cards), so strips meet both kinds of rows."""
    rng = np.random.default_rng(seed)
    channels = 4 if mode == "RGBA" else 3
    rows = []
    while len(rows) < height:
        if rng.random() < 0.3:  # a run of identical background rows, up to twice MAX_ROWS
            plain = np.full((width, channels), 230, dtype=np.uint8)
            rows += [plain] * int(rng.integers(1, 2 * strips.MAX_ROWS))
        else:
            rows += list(
                rng.integers(0, 256, (int(rng.integers(1, 60)), width, channels), np.uint8)
            )
    return np.stack(rows[:height])


def png_of(pixels: np.ndarray) -> bytes:
    """``pixels`` as an ordinary PNG (as Chromium would hand one over)."""
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB").save(out, "PNG")
    return out.getvalue()


def pillow_pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img).copy()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The PNG's chunks, each CRC checked (as pngcheck does)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        out.append((kind, data))
        pos += 12 + length
    return out


def new_rows(old: strips.Encoded, new: strips.Encoded) -> int:
    """Rows of ``new`` in pieces ``old`` does not have (what storing it costs)."""
    have = {p.sha256 for p in old.pieces}
    return sum(p.rows for p in new.pieces if p.sha256 not in have)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_our_png_holds_exactly_the_input_pixels(mode):
    pixels = picture(700, seed=3, mode=mode)
    encoded = strips.encode(png_of(pixels))
    assert len(encoded.pieces) > 5  # the picture is really cut into strips
    assert np.array_equal(pillow_pixels(encoded.png), pixels)
    assert encoded.pixels_sha256 == hashlib.sha256(pixels.tobytes()).hexdigest()
    assert encoded.sha256 == sha256_hex(encoded.png)
    # Structurally sound: only IHDR, IDAT and IEND, CRCs right, and zlib (which checks the
    # adler32 we combined from the pieces') inflates the IDATs to every filtered row.
    parts = chunks(encoded.png)
    assert [k for k, _ in parts] == [b"IHDR"] + [b"IDAT"] * (len(encoded.pieces) + 2) + [b"IEND"]
    inflated = zlib.decompress(b"".join(d for k, d in parts if k == b"IDAT"))
    assert len(inflated) == 700 * (1 + 24 * pixels.shape[2])


def test_the_same_pixels_give_the_same_file():
    pixels = picture(400, seed=5)
    first = strips.encode(png_of(pixels))
    # Another encoder's PNG of the same pixels (other compression): the same bytes from us.
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    again = strips.encode(out.getvalue())
    assert again.png == first.png and again.manifest == first.manifest


def test_each_strip_starts_without_the_row_above():
    encoded = strips.encode(png_of(picture(600, seed=8)))
    inflated = zlib.decompress(b"".join(d for k, d in chunks(encoded.png) if k == b"IDAT"))
    stride = 1 + 24 * 3
    row = 0
    for piece in encoded.pieces:
        assert inflated[row * stride] in (0, 1)  # None or Sub: reads nothing above
        row += piece.rows


async def test_chromium_draws_our_png_pixel_for_pixel(browser):
    pixels = picture(300, width=40, seed=9)
    encoded = strips.encode(png_of(pixels))
    url = "data:image/png;base64," + base64.b64encode(encoded.png).decode()
    async with browser.context() as context:
        page = await context.new_page()
        drawn = await page.evaluate(
            """async (url) => {
                const img = new Image(); img.src = url; await img.decode();
                const canvas = document.createElement('canvas');
                canvas.width = img.width; canvas.height = img.height;
                const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
                const data = ctx.getImageData(0, 0, img.width, img.height).data;
                return [img.width, img.height, Array.from(data)];
            }""",
            url,
        )
    width, height, rgba = drawn
    assert (width, height) == (40, 300)
    shown = np.array(rgba, dtype=np.uint8).reshape(300, 40, 4)
    assert np.array_equal(shown[:, :, :3], pixels)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.binary(max_size=300),
    st.binary(max_size=300),
    st.integers(0, 70_000),
)
def test_adler32_combine_equals_zlib(seed, first, second, pad):
    second = second + bytes([seed % 256]) * pad  # lengths past adler32's modulus too
    combined = strips.adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(first + second)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1500, 2500),
    at=st.floats(0, 1),
    band=st.integers(1, 120),
    insert=st.booleans(),
)
def test_a_band_inserted_or_removed_leaves_most_pieces_shared(seed, height, at, band, insert):
    pixels = picture(height, width=8, seed=seed)
    row = int(at * (height - band))
    if insert:  # a new post: fresh rows pushed in, everything below shifted down
        fresh = picture(band, width=8, seed=seed + 1)
        changed = np.concatenate([pixels[:row], fresh, pixels[row:]])
    else:  # a deleted post
        changed = np.concatenate([pixels[:row], pixels[row + band :]])
    old, new = strips.encode(png_of(pixels)), strips.encode(png_of(changed))
    assert np.array_equal(pillow_pixels(new.png), changed)
    # Only the band and the strips around it are new: the strip cut by the change and the
    # few after it until a cut falls on the same row in both (measured: at most ~2.7 strips
    # of MAX_ROWS in 150 random cases), so most of the picture is shared.
    assert new_rows(old, new) <= (band if insert else 0) + 4 * strips.MAX_ROWS
    assert new_rows(old, new) < changed.shape[0] / 2


def test_a_screenshot_that_cannot_be_decoded_is_refused():
    with pytest.raises(strips.StripsError, match="cannot be decoded"):
        strips.encode(png_of(picture(50))[:300])
    grey = io.BytesIO()
    Image.new("L", (10, 10)).save(grey, "PNG")
    with pytest.raises(strips.StripsError, match="pixel format"):
        strips.encode(grey.getvalue())


# -- in the blob store ------------------------------------------------------------------


def test_a_composite_reads_back_as_the_whole_png(tmp_path: Path):
    blobs = BlobStore(tmp_path / "blobs")
    encoded = strips.encode(png_of(picture(600, seed=2)))
    sha = blobs.put_composite(encoded)
    assert sha == encoded.sha256
    assert not blobs.path(sha).exists() and blobs.has(sha)
    assert blobs.read(sha) == encoded.png
    assert blobs.verify(sha)
    files = sorted(p for p in blobs.root.rglob("*") if p.is_file())
    assert len(files) == len({p.sha256 for p in encoded.pieces}) + 2  # + manifest, pointer
    blobs.put_composite(encoded)  # stored once
    assert sorted(p for p in blobs.root.rglob("*") if p.is_file()) == files


def test_a_forger_who_swaps_a_piece_is_named(tmp_path: Path):
    """An attack: a strip's file replaced by another strip of the same size (e.g. a photo
    swapped in the screenshot). read refuses, naming the screenshot; verify says False."""
    blobs = BlobStore(tmp_path / "blobs")
    encoded = strips.encode(png_of(picture(600, seed=4)))
    sha = blobs.put_composite(encoded)
    victim, other = encoded.pieces[3], encoded.pieces[7]
    blobs.path(victim.sha256).chmod(0o644)
    blobs.path(victim.sha256).write_bytes(other.data)
    with pytest.raises(StoreError, match=f"screenshot {sha}.*{victim.sha256}"):
        blobs.read(sha)
    assert not blobs.verify(sha)


def test_a_forger_who_rewrites_the_manifest_is_caught(tmp_path: Path):
    """The forger stores a manifest of their own (their pieces, valid blobs) and points the
    screenshot at it: every piece hashes right, the whole does not."""
    blobs = BlobStore(tmp_path / "blobs")
    sha = blobs.put_composite(strips.encode(png_of(picture(300, seed=6))))
    forged = strips.encode(png_of(picture(300, seed=7)))
    manifest = blobs.put_many([p.data for p in forged.pieces] + [forged.manifest])[-1]
    pointer = blobs.path(sha).with_name(sha + ".composite")
    pointer.write_text(manifest + "\n")
    with pytest.raises(StoreError, match=f"screenshot {sha}.*no longer matches"):
        blobs.read(sha)


# -- captures, export, verify ---------------------------------------------------------------


def _files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}


async def test_a_new_post_costs_a_few_strips_not_the_whole_screenshot(site, make_app, tmp_path):
    site.channel("dealer")
    for i in range(12):
        photos = [site.add_photo(f"p{i}-{k}", seed=100 + 10 * i + k) for k in range(3)]
        site.add_post("dealer", f"carved bangle number {i}, inbox for price", images=photos)
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    target = app.watchlist.target("dealer")

    def screenshot(capture_id: int) -> tuple[str, int]:
        (shot,) = [a for a in app.store.artifacts(capture_id) if a.kind == "screenshot"]
        return shot.sha256, shot.size

    first = await run_capture(app, target)
    sha1, _ = screenshot(first.capture_id)
    site.add_post("dealer", "new stock today", images=[site.add_photo("new", seed=999)])
    before = _files(app.blobs.root)
    second = await run_capture(app, target)
    sha2, size2 = screenshot(second.capture_id)
    assert sha2 != sha1
    png = app.blobs.read(sha2)
    assert len(png) == size2 and sha256_hex(png) == sha2
    # What the second screenshot cost the disk: its new strips, manifest and pointer (or,
    # stored whole, the PNG itself).
    pointer = app.blobs.path(sha2).with_name(sha2 + ".composite")
    names = {sha2, pointer.name}
    if pointer.exists():
        manifest = pointer.read_text().strip()
        names |= {manifest} | {p["sha256"] for p in json.loads(app.blobs.read(manifest))["pieces"]}
    added = {p: s for p, s in _files(app.blobs.root).items() if p not in before}
    shot_cost = sum(s for p, s in added.items() if p.name in names)
    # Whole PNGs would cost size2 again; strips cost the new post's and little else.
    assert shot_cost < size2 * 0.35, (shot_cost, size2)  # measured: 15 %

    # The metadata names Chromium's PNG and the pixels; the pixels are our PNG's.
    (meta,) = [a for a in app.store.artifacts(second.capture_id) if a.kind == "metadata"]
    (encoding,) = json.loads(app.blobs.read(meta.sha256))["screenshot_encodings"]
    assert encoding["sha256"] == sha2 and encoding["encoder"] == strips.FORMAT
    assert encoding["pixels_sha256"] == hashlib.sha256(pillow_pixels(png).tobytes()).hexdigest()
    assert (
        known_encodings(app.store, [encoding["original_sha256"]])[
            encoding["original_sha256"]
        ].sha256
        == sha2
    )

    # An unchanged page: the same screenshot, not encoded again (no new strips or pointer).
    before = _files(app.blobs.root)
    third = await run_capture(app, target)
    assert screenshot(third.capture_id)[0] == sha2
    added = [p for p in _files(app.blobs.root) if p not in before]
    assert not [p for p in added if p.name.endswith(".composite")]
    assert len(added) <= 3  # metadata, posts JSON: no strips

    # Export: the bundle holds the whole PNG as an ordinary file, and verify passes.
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    report = verify_bundle(bundle, Trust.of(app.custody.key.fingerprint))
    assert report.ok, [f.message for f in report.findings if not f.ok]
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        shots = [name for name, f in manifest["files"].items() if f["sha256"] == sha2]
        assert shots, "the screenshot is in the bundle"
        for name in shots:
            data = zf.read(name)
            assert sha256_hex(data) == sha2
            assert np.array_equal(pillow_pixels(data), pillow_pixels(png))
