"""Screenshots draw every script our users' targets write in, and watcher says when they cannot.

The proof that a screenshot holds glyphs and not boxes: each sample character of a script is
drawn in a cell of its own at a known place on the fixture page, and the capture's stored
screenshot is cut at those places. A font draws different characters differently; a missing
font draws every one as the same empty box (or nothing), so identical cells mean tofu. The
control: the same capture by a Chromium whose fontconfig finds no fonts fails that check.
"""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from itertools import combinations
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import shop_target
from watcher.app import App
from watcher.capture import fonts
from watcher.capture.browser import Browser
from watcher.capture.fonts import SCRIPTS, installed_fonts, parse_fc_list
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist

CELL, GAP = 64, 8
# Two code points Unicode leaves unassigned: no font has them, so both are the same box.
CONTROL = "\u0378\u0379"
# A line of each script, as a dealer would write it (the posts of the fixture page).
LINES = {
    "Latin with Vietnamese": "Vòng tay ngà voi, hàng hiếm, giao hàng toàn quốc",
    "Khmer": "ចម្លាក់ភ្លុក ព្រះពុទ្ធ តម្លៃពិសេស",
    "Thai": "งาช้างแกะสลัก ราคาพิเศษ",
    "Lao": "ງາຊ້າງ ລາຄາພິເສດ",
    "Burmese": "ဆင်စွယ် လက်ကောက် ရောင်းမည်",
    "Chinese (simplified)": "象牙 手镯 老料 包真 私聊",
    "Chinese (traditional)": "翡翠 平安扣 象牙 手鐲 這個",
    "Japanese": "象牙の彫刻 カービング あります",
    "Korean": "상아 조각 판매합니다",
    "Arabic": "عاج طبيعي للبيع",
    "emoji": "📿 🔥 🐘 🤍",
}


def glyphs(script_samples: str) -> str:
    """The base characters of a script's samples (a lone combining mark draws a dotted circle)."""
    return "".join(c for c in script_samples if not unicodedata.category(c).startswith("M"))


ROWS = [(s.name, glyphs(s.samples)) for s in SCRIPTS] + [("control", CONTROL)]


def fixture_page() -> str:
    """Glyph cells at fixed places (row per script), then one listing per script."""
    cells = []
    for row, (_, chars) in enumerate(ROWS):
        for col, char in enumerate(chars):
            left, top = GAP + col * (CELL + GAP), GAP + row * (CELL + GAP)
            cells.append(
                f'<div class="cell" style="left:{left}px;top:{top}px">&#x{ord(char):x};</div>'
            )
    listings_top = GAP + len(ROWS) * (CELL + GAP) + 40
    listings = "".join(
        f'<div class="listing" data-id="s{n}"><p class="desc">{line}</p>'
        f'<time datetime="2026-11-20T02:15:00Z">20 Nov</time>'
        f'<a class="permalink" href="/scripts#{n}">link</a></div>'
        for n, line in enumerate(LINES.values())
    )
    style = (
        "body{margin:0;font-family:sans-serif;background:#fff;color:#000}"
        f".cell{{position:absolute;width:{CELL}px;height:{CELL}px;font-size:40px;"
        f"line-height:{CELL}px;text-align:center;overflow:hidden}}"
        f".listings{{position:absolute;top:{listings_top}px;left:{GAP}px;font-size:20px}}"
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{style}</style></head>'
        f'<body>{"".join(cells)}<div class="listings">{listings}</div></body></html>'
    )


def cell_bitmaps(screenshot: bytes) -> dict[str, list[bytes]]:
    """Each row's cells as raw pixels, cut from a full-page screenshot."""
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    scale = image.width / 1280  # the capture viewport's width, whatever the device scale
    rows: dict[str, list[bytes]] = {}
    for row, (name, chars) in enumerate(ROWS):
        rows[name] = []
        for col in range(len(chars)):
            left, top = GAP + col * (CELL + GAP), GAP + row * (CELL + GAP)
            box = tuple(round(v * scale) for v in (left, top, left + CELL, top + CELL))
            rows[name].append(image.crop(box).tobytes())
    return rows


def tofu_rows(bitmaps: dict[str, list[bytes]]) -> list[str]:
    """Scripts whose cells are not all distinct drawings (boxes, or nothing drawn)."""
    bad = []
    for name, cells in bitmaps.items():
        if name == "control":
            continue
        blank = any(len(set(cell)) == 1 for cell in cells)  # one colour: nothing drawn
        if blank or any(a == b for a, b in combinations(cells, 2)):
            bad.append(name)
    return bad


async def capture_screenshot(tmp_path: Path, site, browser: Browser, data: str) -> tuple:
    """Capture the fixture page through the pipeline; (screenshot bytes, metadata dict)."""
    site.route("/scripts", fixture_page().encode("utf-8"), content_type="text/html; charset=utf-8")
    watchlist_path = tmp_path / f"{data}.yaml"
    watchlist_path.write_text(
        "targets:\n" + shop_target("scripts", f"{site.base_url}/scripts"), encoding="utf-8"
    )
    app = App.open(load_watchlist(watchlist_path), tmp_path / data, browser=browser)
    try:
        summary = await run_capture(app, app.watchlist.target("scripts"))
        assert summary.status == CaptureStatus.OK, summary.reason
        artifacts = {a.kind: a for a in app.store.artifacts(summary.capture_id)}
        screenshot = app.blobs.read(artifacts["screenshot"].sha256)
        metadata = json.loads(app.blobs.read(artifacts["metadata"].sha256))
    finally:
        await app.close()
    return screenshot, metadata


def fontconfig_with(tmp_path: Path, font_dir: Path | None) -> Path:
    """A fontconfig file that finds only the fonts in ``font_dir`` (none when None)."""
    if font_dir is None:
        font_dir = tmp_path / "no-fonts"
        font_dir.mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{font_dir}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir>"
        "</fontconfig>",
        encoding="utf-8",
    )
    return conf


# What the capture machine had before fonts were installed: DejaVu (Latin, Arabic, a little
# more), which Chromium falls back to, drawing boxes for the rest.
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def test_the_fixture_page_has_a_line_and_glyph_cells_for_every_script():
    assert set(LINES) == {s.name for s in SCRIPTS}
    assert all(len(chars) >= 2 for _, chars in ROWS)


async def test_a_capture_draws_every_script_as_glyphs_not_boxes(tmp_path, site, browser):
    if not all(installed_fonts().scripts().values()):
        missing = [n for n, ok in installed_fonts().scripts().items() if not ok]
        pytest.fail(f"fonts for {', '.join(missing)} are not installed: run `make setup` as root")
    screenshot, metadata = await capture_screenshot(tmp_path, site, browser, "with-fonts")

    bitmaps = cell_bitmaps(screenshot)
    assert tofu_rows(bitmaps) == []
    # The method tells a box from a glyph: two code points no font has draw the same box.
    first, second = bitmaps["control"]
    assert first == second

    record = metadata["fonts"]
    assert record["checked"] is True
    assert all(record["scripts"].values()), record["scripts"]
    assert "Noto Sans Khmer" in record["families"]
    assert record["page_scripts_without_font"] == []


async def test_with_only_dejavu_the_same_capture_is_boxes_and_watcher_says_so(
    tmp_path, site, monkeypatch, caplog
):
    if not DEJAVU.is_dir():
        pytest.skip(f"no DejaVu fonts in {DEJAVU} to stand for a machine without Noto")
    # Chromium and fc-list both read FONTCONFIG_FILE: this Chromium finds DejaVu alone.
    monkeypatch.setenv("FONTCONFIG_FILE", str(fontconfig_with(tmp_path, DEJAVU)))
    dejavu_only = Browser(max_concurrent=1, allow_private_network=True)
    await dejavu_only.start()
    try:
        with caplog.at_level(logging.WARNING, logger="watcher.capture.fonts"):
            shot, metadata = await capture_screenshot(tmp_path, site, dejavu_only, "dejavu")
    finally:
        await dejavu_only.close()

    boxes = tofu_rows(cell_bitmaps(shot))
    assert {"Khmer", "Chinese (simplified)", "Chinese (traditional)", "emoji"} <= set(boxes)
    assert "Latin with Vietnamese" not in boxes  # the check passes what DejaVu does draw
    # What fontconfig says is missing is exactly what the screenshot drew as boxes.
    record = metadata["fonts"]
    assert sorted(name for name, ok in record["scripts"].items() if not ok) == sorted(boxes)
    assert "DejaVu Sans" in record["families"]
    assert all(family.startswith("DejaVu") for family in record["families"])
    assert {"Khmer", "Chinese (simplified)", "emoji"} <= set(record["page_scripts_without_font"])
    khmer = [r.getMessage() for r in caplog.records if "holds Khmer text" in r.getMessage()]
    assert len(khmer) == 1
    assert "fonts-noto-core" in khmer[0] and "target scripts" in khmer[0]


async def test_with_no_font_at_all_nothing_is_drawn_and_the_check_fails(
    tmp_path, site, monkeypatch
):
    monkeypatch.setenv("FONTCONFIG_FILE", str(fontconfig_with(tmp_path, None)))
    no_fonts = Browser(max_concurrent=1, allow_private_network=True)
    await no_fonts.start()
    try:
        shot, metadata = await capture_screenshot(tmp_path, site, no_fonts, "no-fonts")
    finally:
        await no_fonts.close()
    assert set(tofu_rows(cell_bitmaps(shot))) == set(LINES)
    assert metadata["fonts"]["families"] == []


def test_each_missing_script_is_warned_of_once_per_process(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FONTCONFIG_FILE", str(fontconfig_with(tmp_path, None)))
    with caplog.at_level(logging.WARNING, logger="watcher.capture.fonts"):
        for _ in range(3):
            fonts.check_page_text("象牙 手镯 📿", "dealer")
        fonts.check_page_text("象牙", "another")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # Chinese once, emoji once, whatever the captures or targets
    chinese = next(m for m in messages if "Chinese" in m)
    assert "fonts-noto-cjk" in chinese and "target dealer" in chinese
    assert any("emoji" in m and "fonts-noto-color-emoji" in m for m in messages)


def test_fc_list_charsets_are_read_as_ranges():
    coverage = parse_fc_list(
        "DejaVu Sans\t20-7e a0-17f 1e00-1eff\nNoto Sans Khmer\t20 1780-17dd 17e0-17e9\n\n"
    )
    assert coverage.families == ("DejaVu Sans", "Noto Sans Khmer")
    assert coverage.covers("A") and coverage.covers("ế") and coverage.covers("ក")
    assert not coverage.covers("象") and not coverage.covers("\x7f")
    assert [s.name for s in coverage.missing_in("ក A 象 \u200d")] == ["Chinese (simplified)"]
    # Text in a script outside the table is still noticed, with the package most likely to draw it.
    assert [s.name for s in coverage.missing_in("שלום")] == ["other"]
