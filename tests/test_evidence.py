"""Evidence export and verification: real captures, real bundles, every byte checked."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import channel_target, exported_channel, shop_target, watcher
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle
from watcher.pipeline import run_capture
from watcher.store.keys import SigningKey

BIN = Path(sys.executable).parent


def trusting(app, tsa_ca: Path | None = None) -> Trust:
    """Trust in ``app``'s key, as a prosecutor holding the team's published fingerprint."""
    return Trust.of(app.custody.key.fingerprint, tsa_ca=tsa_ca)


@pytest.fixture
async def captured(site, make_app):
    """An app with two captures of a channel (a new post and an edit in between) and a shop."""
    site.channel("dealer")
    site.shop("front")
    site.add_post("dealer", "carved bangle, inbox", images=[site.add_photo("p1", seed=11)])
    edited = site.add_post("dealer", "white gold 200$", images=[site.add_photo("p2", seed=12)])
    site.add_post("front", "listing", images=[site.add_photo("p3", seed=13)])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer", "    tags: [case-17]\n"),
        shop_target("front", f"{site.base_url}/shop/front"),
    )
    for target in app.watchlist.targets:
        await run_capture(app, target)
    site.edit_post("dealer", edited, text="white gold SOLD")
    await run_capture(app, app.watchlist.target("dealer"))
    return app


def rewrite(bundle: Path, out: Path, change) -> Path:
    """Copy ``bundle`` to ``out`` with ``change(name, data) -> bytes | None`` applied."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = change(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out


def failures(path: Path, trust: Trust | None = None) -> list[str]:
    return [f"{f.item}: {f.message}" for f in verify_bundle(path, trust).findings if not f.ok]


async def test_export_then_verify_passes(captured, tmp_path):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    report = verify_bundle(bundle, trusting(captured))
    assert report.ok, failures(bundle)
    assert report.key_id == captured.custody.key.key_id

    names = zipfile.ZipFile(bundle).namelist()
    for expected in ("manifest.json", "manifest.sig", "posts.json", "custody.jsonl", "index.html"):
        assert expected in names
    assert f"keys/{captured.custody.key.key_id}.pem" in names
    assert any(n.endswith("archive.wacz") for n in names)
    assert sum(n.startswith("images/") for n in names) == 2  # the shop's image is not selected
    posts = json.loads(zipfile.ZipFile(bundle).read("posts.json"))
    versions = {p["post_id"]: [v["text"] for v in p["versions"]] for p in posts}
    assert versions["dealer/2"] == ["white gold 200$", "white gold SOLD"]
    # The export itself is recorded in the custody log, after the bundle's head.
    assert captured.custody.head().action == "exported"
    mirror = captured.data_dir / "evidence" / "custody.jsonl"
    assert len(mirror.read_text().splitlines()) == len(captured.custody.entries())


async def test_private_key_is_private_and_outside_the_evidence(captured):
    key_file = captured.data_dir / "keys" / "custody-ed25519.pem"
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    assert not (captured.data_dir / "evidence" / key_file.name).exists()


@pytest.mark.parametrize("victim", ["posts.json", "index.html", "images/", "screenshot", "wacz"])
async def test_flipping_one_byte_anywhere_fails_naming_the_file(captured, tmp_path, victim):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    hit: list[str] = []

    def flip(name: str, data: bytes) -> bytes:
        if victim in name and not hit:
            hit.append(name)
            return data[:10] + bytes([data[10] ^ 1]) + data[11:]
        return data

    broken = rewrite(bundle, tmp_path / "broken.zip", flip)
    problems = failures(broken)
    assert hit and any(hit[0] in p and "altered" in p for p in problems), problems


def _members(path: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    with zipfile.ZipFile(path) as bundle:
        for name in bundle.namelist():
            try:
                out[name] = bundle.read(name)
            except Exception:  # any damage: the member no longer reads back
                out[name] = None
    return out


async def test_a_byte_damaged_in_the_zip_itself_never_passes_and_never_crashes(captured, tmp_path):
    """Damage to the zip's own bytes (not a rewritten member): a deflate stream, a header,
    a CRC. verify reports it as a finding; it passes only where the damage changed no
    member's content (a timestamp in a local header, say)."""
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    original = bundle.read_bytes()
    members = _members(bundle)
    with zipfile.ZipFile(bundle) as zf:
        deflated = [i for i in zf.infolist() if i.compress_type == zipfile.ZIP_DEFLATED]
    positions = []  # inside each deflate stream (a broken one raised zlib.error), then all over
    for info in deflated:
        name_length, extra_length = struct.unpack_from("<HH", original, info.header_offset + 26)
        start = info.header_offset + 30 + name_length + extra_length  # after the local header
        positions += [start + info.compress_size * k // 8 for k in range(1, 8)]
    positions += range(0, len(original), max(1, len(original) // 150))
    broken = tmp_path / "broken.zip"
    outcomes = set()
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0xFF
        broken.write_bytes(bytes(data))
        report = verify_bundle(broken, trusting(captured))  # must not raise
        outcomes.add(report.ok)
        if report.ok:
            assert _members(broken) == members, position
    assert False in outcomes
    data = bytearray(original)
    data[positions[0]] ^= 0xFF
    broken.write_bytes(bytes(data))
    problems = failures(broken)
    assert any(p.startswith(deflated[0].filename) for p in problems), problems


async def test_altered_manifest_or_custody_entry_fails(captured, tmp_path):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")

    def edit_manifest(name: str, data: bytes) -> bytes:
        return data.replace(b'"parts": 1', b'"parts": 2') if name == "manifest.json" else data

    problems = failures(rewrite(bundle, tmp_path / "m.zip", edit_manifest))
    assert any("manifest.sig" in p and "does not match" in p for p in problems), problems

    def drop_entry(name: str, data: bytes) -> bytes:
        if name != "custody.jsonl":
            return data
        lines = data.decode().splitlines(keepends=True)
        return "".join(lines[:1] + lines[2:]).encode()

    problems = failures(rewrite(bundle, tmp_path / "c.zip", drop_entry))
    assert any("custody" in p and "missing" in p for p in problems), problems


async def test_swapped_key_fails(captured, tmp_path):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    other = SigningKey.generate().public_pem().encode()

    def swap(name: str, data: bytes) -> bytes:
        return other if name.startswith("keys/") else data

    problems = failures(rewrite(bundle, tmp_path / "k.zip", swap))
    assert any("manifest.sig" in p for p in problems), problems
    # The keyring is by the id computed from each key: the swapped-in key signs nothing.
    assert any("custody chain" in p and "entry 1" in p for p in problems), problems


async def test_added_file_fails(captured, tmp_path):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    shutil.copy(bundle, tmp_path / "extra.zip")
    with zipfile.ZipFile(tmp_path / "extra.zip", "a") as z:
        z.writestr("images/planted.jpg", b"not ours")
    problems = failures(tmp_path / "extra.zip")
    assert any("planted.jpg" in p and "not listed" in p for p in problems), problems


async def test_selections_and_split(captured, tmp_path):
    by_tag = export_bundle(captured, Selection(tag="case-17"), tmp_path / "tag")
    assert json.loads(zipfile.ZipFile(by_tag[0]).read("manifest.json"))["captures"] == [1, 3]
    by_post = export_bundle(captured, Selection(post_id="L1001"), tmp_path / "post")
    assert json.loads(zipfile.ZipFile(by_post[0]).read("manifest.json"))["captures"] == [2]

    parts = export_bundle(captured, Selection(), tmp_path / "split", max_bytes=1)
    assert len(parts) == 3 and all("-part" in p.name for p in parts)
    assert all(verify_bundle(p, trusting(captured)).ok for p in parts)


async def test_wacz_validates_and_warc_checks(captured, tmp_path):
    (bundle,) = export_bundle(captured, Selection(capture_id=1), tmp_path / "out")
    with zipfile.ZipFile(bundle) as z:
        name = next(n for n in z.namelist() if n.endswith(".wacz"))
        wacz = tmp_path / "archive.wacz"
        wacz.write_bytes(z.read(name))
    validate = subprocess.run(
        [BIN / "wacz", "validate", "-f", wacz], capture_output=True, text=True, timeout=120
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    with zipfile.ZipFile(wacz) as archive:
        warc = tmp_path / "capture.warc.gz"
        warc.write_bytes(archive.read("archive/capture.warc.gz"))
    check = subprocess.run(
        [BIN / "warcio", "check", warc], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr


async def test_report_renders_offline_in_chromium(captured, tmp_path, browser):
    (bundle,) = export_bundle(captured, Selection(target="dealer"), tmp_path / "out")
    folder = tmp_path / "opened"
    zipfile.ZipFile(bundle).extractall(folder)
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto((folder / "index.html").as_uri())
        text = await page.inner_text("body")
        shot = await page.screenshot(full_page=True)
        broken_images = await page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length"
        )
    assert "white gold SOLD" in text and "white gold 200$" in text  # both versions
    assert "dealer/2" in text and "capture" in text.lower()
    assert broken_images == 0 and len(shot) > 10_000


def test_cli_export_and_verify(tmp_path, site):
    bundle = exported_channel(site, tmp_path)
    unanchored = watcher("verify", str(bundle), cwd=tmp_path)
    assert unanchored.returncode == 3 and "unanchored key" in unanchored.stdout
    key = watcher("key", cwd=tmp_path)
    assert key.returncode == 0 and "fingerprint:" in key.stdout, key.stderr
    fingerprint = key.stdout.split("fingerprint:")[1].splitlines()[0].strip()
    verified = watcher("verify", str(bundle), "--key", fingerprint, cwd=tmp_path)
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout
    env = {"WATCHER_TRUSTED_KEYS": str(tmp_path / "data" / "keys" / "custody-ed25519.pem")}
    assert watcher("verify", str(bundle), cwd=tmp_path, env=env).returncode == 0
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0xFF
    bundle.write_bytes(bytes(data))
    tampered = watcher("verify", str(bundle), cwd=tmp_path, env=env)
    assert tampered.returncode == 1 and "NOT VERIFIED" in tampered.stdout
    nothing = watcher("export", "--target", "nobody", cwd=tmp_path, env=env)
    assert nothing.returncode == 1 and "nothing to export" in nothing.stderr


async def test_bundle_carries_a_trusted_timestamp_of_the_custody_head(
    site, make_app, tsa, tmp_path
):
    url, ca = tsa
    site.channel("dealer")
    site.add_post("dealer", "one")
    header = f"evidence:\n  tsa_url: {url}\n  tsa_ca_file: {ca}\n"
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=header)
    await run_capture(app, app.watchlist.target("dealer"))
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")

    report = verify_bundle(bundle, trusting(app, tsa_ca=ca))
    stamp = [f for f in report.findings if f.item == "trusted timestamp"]
    assert report.ok and stamp and "RFC 3161" in stamp[0].message
    assert len(app.custody.timestamps()) == 1

    # The authority is the one the verifier names, not the CA certificate in the bundle.
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
    problems = failures(bundle, trusting(app, other_ca))
    assert any("trusted timestamp" in p for p in problems), problems


async def test_export_refuses_to_write_into_the_evidence_folders(captured):
    from watcher.errors import WatcherError

    for inside in (
        captured.blobs.root / "ab",
        captured.data_dir / "evidence",
        captured.data_dir / "keys" / "x",
    ):
        with pytest.raises(WatcherError, match="no command may write"):
            export_bundle(captured, Selection(target="dealer"), inside)
    assert not list(captured.blobs.root.glob("**/*.zip"))
