"""Text in photos: the engine reads the drawn number, leaves clean photos clean, stays
bounded on hostile images; a contact only in a photo ties two accounts through the links
path; its alert fires once, after the post's own.

OCR is slow on two cores: a handful of photos here, the whole labelled set in
benchmarks/bench_ocr.py. One engine (one child process) serves the module.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmarks.bench_ocr import contact_keys
from tests.conftest import channel_target
from watcher.detect.ocr import OcrEngine, OcrLimits, OcrStatus, decode_bounded
from watcher.kinds import PhotoTextFound
from watcher.models import EventKind
from watcher.pipeline import run_capture
from watcher.steps.photo_text import PhotoReader
from watcher.store.links import shared_contacts
from watcher.store.search import search_posts

SET = Path(__file__).resolve().parent.parent / "benchmarks" / "ocr_set"
LABELS = json.loads((SET / "labels.json").read_text(encoding="utf-8"))
# A few photos of the labelled set: a WeChat ID with the goods' name and a price in yuan;
# a tilted Zalo number in white with a price in 万; a watermarked product with no text; a model
# code with a letter-O look-alike ("O912-345-67B") and a short ID that are no contact.
SAMPLE = ["contact-03.jpg", "contact-05.jpg", "empty-02.jpg", "lookalike-02.jpg"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.fixture(scope="module")
def engine() -> Iterator[OcrEngine]:
    with OcrEngine() as shared:
        yield shared


@pytest.mark.parametrize("name", SAMPLE)
def test_the_drawn_contacts_are_found_and_clean_photos_stay_clean(engine, name):
    result = engine.read((SET / "photos" / name).read_bytes())
    assert result.status == OcrStatus.OK
    assert contact_keys(result.text) == set(LABELS[name]["contacts"])
    if LABELS[name]["contacts"]:
        assert all(0.5 <= box.confidence <= 1 and len(box.box) == 4 for box in result.boxes)


# -- hostile images ----------------------------------------------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    """A small PNG file whose header claims ``width`` x ``height`` pixels (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * 1024)  # far fewer rows than claimed
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg(width: int = 400, height: int = 300, text: str = "") -> bytes:
    image = Image.new("RGB", (width, height), (220, 210, 190))
    if text:
        ImageDraw.Draw(image).text((20, 120), text, font=ImageFont.truetype(FONT, 36), fill=0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_a_400_megapixel_bomb_is_refused_before_decoding(engine):
    result = engine.read(png_claiming(20_000, 20_000))
    assert result.status == OcrStatus.REFUSED
    assert "400000000 pixels" in result.reason and "not decoded" in result.reason
    # One under Pillow's own guard, over ours: refused by our check of the header.
    ours = engine.read(png_claiming(12_000, 10_000))
    assert (ours.status, ours.width, ours.height) == (OcrStatus.REFUSED, 12_000, 10_000)
    assert "120 MP" in ours.reason and "not decoded" in ours.reason


def test_truncated_and_non_images_are_unreadable_not_a_crash(engine):
    whole = jpeg(text="Zalo 0912 345 678")
    truncated = engine.read(whole[: len(whole) // 2])
    assert truncated.status == OcrStatus.UNREADABLE
    assert "truncated" in truncated.reason
    junk = engine.read(b"<html>not a photo</html>")
    assert (junk.status, junk.reason) == (
        OcrStatus.UNREADABLE,
        "not an image file that can be decoded",
    )
    # The engine goes on reading after them.
    assert engine.read(whole).status == OcrStatus.OK


def test_too_many_bytes_are_refused_unread():
    limits = OcrLimits(max_bytes=1000)
    result = OcrEngine(limits).read(jpeg())  # no child started for it
    assert result.status == OcrStatus.REFUSED and "over the limit" in result.reason


def test_large_photos_are_shrunk_before_reading():
    pixels, size, scale = decode_bounded(jpeg(4000, 3000), OcrLimits(max_side=1600))
    assert size == (4000, 3000) and max(pixels.shape[:2]) <= 1600 and scale <= 0.4


def test_a_photo_over_time_is_stopped_and_the_next_one_read():
    with OcrEngine(OcrLimits(timeout=0.01)) as slow:
        late = slow.read(jpeg(text="0912 345 678"))
        assert late.status == OcrStatus.TIMEOUT and "stopped" in late.reason
        slow.limits = OcrLimits()
        assert slow.read(jpeg(text="0912 345 678")).status == OcrStatus.OK  # a fresh child


# -- through the store: links, alerts, search ---------------------------------------------------
async def test_a_contact_only_in_a_photo_ties_two_accounts_and_alerts_once(site, make_app, engine):
    number = "Zalo 0912 345 678"
    for feed in ("dealer", "frontman", "reposter"):
        site.channel(feed)
        site.add_post(feed, "baseline post")  # the first capture is a baseline: no alerts
    app = make_app(
        *(channel_target(feed, f"{site.base_url}/s/{feed}") for feed in ("dealer", "frontman")),
        channel_target("reposter", f"{site.base_url}/s/reposter"),
    )
    dealer, frontman, reposter = app.watchlist.targets
    for target in app.watchlist.targets:
        await run_capture(app, target)
    for feed, text in (("dealer", "Bracelet, old piece"), ("frontman", "Same as before, ask")):
        key = site.put_image(f"{feed}.jpg", jpeg(640, 480, number + f"  {feed.upper()}"))
        site.add_post(feed, text, images=[key])
    for target in (dealer, frontman):
        await run_capture(app, target)
    assert not shared_contacts(app.store)  # the text of the posts gives no contact

    reader = PhotoReader(app, engine)
    readings = []
    while (reading := await reader.read_next()) is not None:
        readings.append(reading)
    reader.executor.shutdown()
    assert len(readings) == 2 and all(r.result.status == OcrStatus.OK for r in readings)

    (link,) = shared_contacts(app.store)
    assert (link.kind, link.value, link.targets) == (
        "phone",
        "+84912345678",
        ["dealer", "frontman"],
    )
    sources = app.store.db.execute(
        "SELECT DISTINCT source, image_sha256 IS NOT NULL FROM contacts"
    ).fetchall()
    assert sources == [("photo", 1)]

    events = [e for e in app.store.events(after_id=0, limit=100) if e.kind == EventKind.PHOTO_TEXT]
    assert sorted(e.target for e in events) == ["dealer", "frontman"]  # once per post
    # The photo read second finds the number the other account gave first.
    later = readings[1].events[0]
    second = later.payload
    assert isinstance(second, PhotoTextFound)
    assert "phone +84912345678" in second.contacts
    other = "dealer" if later.target == "frontman" else "frontman"
    assert len(second.seen_elsewhere) == 1 and f"first seen on {other}" in second.seen_elsewhere[0]
    assert second.first_event_id is not None  # points to the post's own alert, sent before
    assert second.first_event_id < later.id

    # Read again, captured again: nothing new, no second alert.
    assert await PhotoReader(app, engine).read_next() is None
    for target in app.watchlist.targets:
        await run_capture(app, target)
    again = [e for e in app.store.events(after_id=0, limit=200) if e.kind == EventKind.PHOTO_TEXT]
    assert len(again) == 2

    # A third account reposts the dealer's photo: read once already, its number ties the
    # repost at capture, without waiting for the reader.
    site.add_post("reposter", "New stock", images=["dealer.jpg"])
    summary = await run_capture(app, reposter)
    (tie,) = [e for e in summary.events if e.kind == EventKind.CONTACT_SEEN_BEFORE]
    assert (tie.payload.value, tie.payload.targets) == ("+84912345678", ("dealer", "frontman"))
    assert {t for link in shared_contacts(app.store) for t in link.targets} == {
        "dealer",
        "frontman",
        "reposter",
    }

    # /search finds the posts by the words on their photos.
    hits, total = search_posts(app.store, "FRONTMAN")
    assert total == 1 and hits[0].target == "frontman"


async def test_a_baseline_posts_photo_is_read_and_recorded_without_an_alert(site, make_app, engine):
    # The first capture of a target is its baseline: its posts were never alerted, so the
    # keywords in their photos are not either (as for their text); the contacts are kept.
    site.channel("old")
    key = site.put_image("old.jpg", jpeg(640, 480, "Ngà voi Zalo 0912 345 678"))
    site.add_post("old", "Old stock", images=[key])
    app = make_app(channel_target("old", f"{site.base_url}/s/old"))
    await run_capture(app, app.watchlist.targets[0])
    reader = PhotoReader(app, engine)
    reading = await reader.read_next()
    reader.executor.shutdown()
    assert reading is not None and "0912 345 678" in reading.result.text
    assert reading.events == []
    assert app.store.db.execute("SELECT kind, value, source FROM contacts").fetchall() == [
        ("phone", "+84912345678", "photo"),
        ("zalo", "+84912345678", "photo"),
    ]
