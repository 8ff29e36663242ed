"""The bundle's report as a prosecutor reads it: on screen, on A4 paper, offline.

One realistic case on the demo site (watcher.demo.evidence: a new post, edits, a repost, a
deletion, a post hidden and back, a shared handle) is captured once for the module.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import pytest
from PIL import Image, ImageDraw
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from watcher.demo.evidence import CHANNEL_TARGET, OPERATOR, collect_demo_case, demo_case_app
from watcher.demo.site import DemoSite
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.crops import post_boxes
from watcher.evidence.timeline import activity_svg
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle

PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
async def case(tmp_path_factory, browser):
    """(app, bundle path, index.html text) of the demo case, exported by tag."""
    folder = tmp_path_factory.mktemp("case")
    with DemoSite() as site:
        app = demo_case_app(site, folder, browser=browser)
        await collect_demo_case(site, app)
        (bundle,) = export_bundle(app, Selection(tag="case-17"), folder / "bundles")
        index = zipfile.ZipFile(bundle).read("index.html").decode("utf-8")
        yield app, bundle, index
        await app.close()


def _count(index: str, label: str) -> int:
    match = re.search(rf"<b>(\d+)</b>{re.escape(label)}", index)
    assert match, f"no count {label!r} in the summary"
    return int(match.group(1))


def _one(app, sql: str) -> int:
    return int(app.store.db.execute(sql).fetchone()[0])


async def test_summary_counts_match_the_store(case):
    app, _, index = case
    assert _count(index, "accounts") == _one(app, "SELECT COUNT(DISTINCT target) FROM captures")
    assert _count(index, "captures") == _one(app, "SELECT COUNT(*) FROM captures")
    assert _count(index, "posts") == _one(app, "SELECT COUNT(*) FROM posts")
    deleted = _one(
        app, "SELECT COUNT(DISTINCT post_row) FROM post_visibility WHERE change = 'deleted'"
    )
    restored = _one(
        app, "SELECT COUNT(DISTINCT post_row) FROM post_visibility WHERE change = 'restored'"
    )
    edited = _one(
        app,
        "SELECT COUNT(*) FROM (SELECT post_row FROM post_versions GROUP BY post_row"
        " HAVING COUNT(*) > 1)",
    )
    keyword_posts = _one(
        app,
        "SELECT COUNT(DISTINCT v.post_row) FROM keyword_matches k"
        " JOIN post_versions v ON v.id = k.version_id",
    )
    hits = _one(app, "SELECT COUNT(*) FROM keyword_matches")
    photos = _one(app, "SELECT COUNT(DISTINCT sha256) FROM post_images WHERE sha256 != ''")
    # What the scenario did, so a count that silently drops to zero cannot pass.
    assert (deleted, restored, edited) == (2, 1, 1)
    assert _count(index, "deleted") == deleted
    assert _count(index, "back after deletion") == restored
    assert _count(index, "edited") == edited
    assert _count(index, f"posts with keywords ({hits} hits)") == keyword_posts > 0
    assert _count(index, "photos") == photos
    assert _count(index, "photos also on other accounts") == 1  # the shop's repost
    assert _count(index, "contacts shared with other accounts") == 1  # @dara_kh
    assert f"Collected by</th><td>{OPERATOR}" in index
    assert "Every capture of the accounts tagged &#x27;case-17&#x27;" in index
    assert "{&#x27;target" not in index and "{'tag'" not in index  # no raw selection dict
    grouped = " ".join(app.custody.key.fingerprint[i : i + 4] for i in range(0, 64, 4))
    assert grouped in index and "watcher verify BUNDLE.zip --key FINGERPRINT" in index
    # The screenshot's whole-pixel layout is disclosed where the reader starts.
    assert "<code>screenshot_layout</code>, its screenshot was drawn" in index


async def test_each_finding_links_to_an_existing_post(case):
    app, bundle, index = case
    tree = HTMLParser(index)
    anchors = {node.attributes["id"] for node in tree.css("section.post[id]")}
    findings = tree.css(".finding")
    kinds = {
        kind: len(tree.css(f".finding.{kind}"))
        for kind in ("deleted", "restored", "edited", "keyword", "photo", "contact")
    }
    hit_versions = _one(app, "SELECT COUNT(DISTINCT version_id) FROM keyword_matches")
    assert kinds == {
        "deleted": 2,
        "restored": 1,
        "edited": 2,  # one post edited twice
        "keyword": hit_versions,
        "photo": 1,
        "contact": 1,
    }
    for finding in findings:
        links = [a.attributes["href"] for a in finding.css("a[href^='#post-']")]
        assert links, finding.html
        assert all(href[1:] in anchors for href in links), (links, anchors)
    # The deleted post's last copy is in its finding, and the edit's added words are marked.
    deletions = " ".join(f.text() for f in tree.css(".finding.deleted"))
    assert "Ceramic lucky cats, 20 USD" in deletions
    assert next(i.text() for i in tree.css(".finding.edited .text ins")).strip() == "❌ SOLD"
    assert "象牙" in [m.text() for m in tree.css(".finding.keyword mark")]
    # Both photos of the repost side by side, each a file of the bundle.
    pair = tree.css_first(".finding.photo .pair")
    names = set(zipfile.ZipFile(bundle).namelist())
    sources = [img.attributes["src"] for img in pair.css("img")]
    assert len(sources) == 2 and all(s in names for s in sources)


async def test_report_loads_nothing_from_outside_and_runs_no_script(case):
    _, bundle, index = case
    tree = HTMLParser(index)
    names = set(zipfile.ZipFile(bundle).namelist())
    assert not tree.css("script, iframe, object, embed, link, base, form")
    assert "<script" not in index.lower()
    csp = tree.css_first("meta[http-equiv='Content-Security-Policy']").attributes["content"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    for node in tree.css("*"):
        for name, value in node.attributes.items():
            assert not name.lower().startswith("on"), (name, value)
            if name in ("src", "href", "xlink:href", "srcset", "poster", "data"):
                assert value and not re.match(r"^[a-z][a-z0-9+.-]*:|^//", value), value
                assert value.startswith("#") or value in names, value
    # Every post of the channel (cards on a plain background) was cut out of its screenshot.
    channel = [s for s in tree.css("section.post") if CHANNEL_TARGET in s.text()]
    assert channel and all(s.css_first("figure.shot img") for s in channel)
    sizes = []
    for crop in (n for n in names if n.startswith("report/")):
        with Image.open(io.BytesIO(zipfile.ZipFile(bundle).read(crop))) as image:
            sizes.append(image.size)
    # At the screenshot's own scale: readable, not thumbnails (a channel card is ~730 px).
    assert max(w for w, _ in sizes) >= 700 and min(h for _, h in sizes) >= 40


async def test_bundle_with_the_report_still_verifies(case):
    app, bundle, _ = case
    report = verify_bundle(bundle, Trust.of(app.custody.key.fingerprint))
    assert report.ok, [f"{f.item}: {f.message}" for f in report.findings if not f.ok]


@pytest.mark.skipif(
    PDFTOTEXT is None, reason="pdftotext is not installed (Debian: apt-get install poppler-utils)"
)
async def test_report_prints_on_a4_with_its_text(case, browser, tmp_path):
    app, bundle, index = case
    folder = tmp_path / "opened"
    zipfile.ZipFile(bundle).extractall(folder)
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto((folder / "index.html").as_uri())
        await page.emulate_media(media="print")
        pdf = await page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    (tmp_path / "report.pdf").write_bytes(pdf)
    text = subprocess.run(
        [PDFTOTEXT, str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pages = text.split("\f")
    summary = re.sub(r"\s+", " ", pages[0])
    assert "Evidence report" in summary and OPERATOR in summary
    for figure, label in re.findall(r"<b>(\d+)</b>([a-z ]+)", index):
        assert f"{figure} {label.strip()}" in summary, (figure, label)
    assert " ".join(app.custody.key.fingerprint[i : i + 4] for i in range(0, 64, 4)) in summary
    flat = re.sub(r"\s+", " ", text)
    assert "Ceramic lucky cats, 20 USD" in flat  # a post's text
    assert "UTC" in flat and "T14:" not in flat  # one readable date form, no ISO stamps
    info = (
        subprocess.run(
            ["pdfinfo", str(tmp_path / "report.pdf")], capture_output=True, text=True
        ).stdout
        if shutil.which("pdfinfo")
        else ""
    )
    if info:
        assert "(A4)" in info, info
    assert len(pages) > 3


def test_cards_on_a_plain_background_are_cut_one_per_post():
    image = Image.new("RGB", (600, 900), (230, 233, 238))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 599, 40), fill="white")  # a title bar across the page
    for top in (80, 300, 520):  # three cards, one of them with a short line above it
        draw.rectangle((150, top, 450, top + 180), fill="white")
        draw.text((160, top + 10), "post", fill="black")
    out = io.BytesIO()
    image.save(out, "PNG")
    boxes = post_boxes(out.getvalue(), 3)
    assert boxes is not None and [b.top for b in boxes] == [72, 292, 512]
    assert all(b.left == 142 and b.right == 459 for b in boxes)
    # Four posts found where three cards are drawn: the layout does not line up, no cut.
    assert post_boxes(out.getvalue(), 4) is None
    assert post_boxes(out.getvalue(), 0) is None


def test_timeline_counts_posts_per_day_and_marks_deletions():
    svg = activity_svg(
        "dealer",
        ["2026-11-20T02:15:00Z", "2026-11-20T09:00:00Z", "2026-11-22T01:00:00Z", None],
        ["2026-11-23T10:00:00Z"],
    )
    assert "<script" not in svg and svg.startswith("<svg")
    assert "20 Nov 2026: 2 posts" in svg and "22 Nov 2026: 1 post<" in svg
    assert "23 Nov 2026: 1 post found deleted" in svg
    assert svg.count("<rect") == 2
    assert activity_svg("empty", [None], []) == ""
