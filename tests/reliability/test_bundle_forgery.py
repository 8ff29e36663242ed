"""Evidence under attack: forged bundles that `watcher verify` must not pass.

Each attack is built the way a forger would build it (their own key, their own timestamp
authority, a hand-made zip), from a genuine bundle of a real capture. `watcher verify` exits
0 only for an untouched bundle checked against a key named from outside the bundle.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import channel_target
from tests.fakes.tsa import local_tsa
from tests.reliability.conftest import hostile_target
from tests.reliability.forger import KEY_FILE, listed, members, signed_bundle, verify
from watcher.evidence.bundle import Selection, export_bundle
from watcher.pipeline import run_capture
from watcher.store.custody import CustodyEntry
from watcher.store.keys import SigningKey
from watcher.store.timestamp import request_timestamp

UNANCHORED = 3


@pytest.fixture(autouse=True)
def no_trusted_keys_from_the_environment(monkeypatch):
    monkeypatch.delenv("WATCHER_TRUSTED_KEYS", raising=False)


async def dealer_app(site, make_app, header: str = ""):
    site.channel("dealer")
    site.add_post("dealer", "carved bangle, inbox", images=[site.add_photo("p1", seed=11)])
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=header)
    await run_capture(app, app.watchlist.target("dealer"))
    return app


@pytest.fixture
async def genuine(site, make_app, tmp_path):
    """(app, bundle): one real capture of the dealer's channel, exported."""
    app = await dealer_app(site, make_app)
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    return app, bundle


def forge(
    bundle: Path,
    out: Path,
    key: SigningKey,
    name_as: str,
    changes: dict[str, bytes | None],
) -> Path:
    """What a forger with their own key does: change files, re-sign the custody log and the
    manifest with ``key``, ship ``key`` as ``keys/<name_as>.pem`` and name ``name_as`` as the
    signer everywhere."""
    files = members(bundle)
    for name, data in changes.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    files = {n: d for n, d in files.items() if not n.startswith("keys/")}
    files[f"keys/{name_as}.pem"] = key.public_pem().encode()
    entries, prev = [], "0" * 64
    for line in files["custody.jsonl"].decode().splitlines():
        # Re-linked and re-signed in the format it came in (withheld entries stay withheld).
        entry = CustodyEntry.from_json(json.loads(line)).sealed(prev, name_as, key.sign)
        entries.append(entry)
        prev = entry.hash
    files["custody.jsonl"] = "".join(
        json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries
    ).encode()
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig")
    manifest["custody_head"] = entries[-1].to_json()
    manifest["signing_key"] = name_as
    manifest["files"] = {name: listed(data) for name, data in files.items()}
    return signed_bundle(out, manifest, files, key, name_as)


def altered_posts(bundle: Path) -> bytes:
    return members(bundle)["posts.json"].replace(b"carved bangle", b"plastic bangle")


# -- 1. the key is trusted because it is inside the bundle ----------------------------------
async def test_a_forger_key_filed_under_the_genuine_id_is_named_by_its_own_id(
    genuine, tmp_path, capsys
):
    app, bundle = genuine
    genuine_id, forger = app.custody.key.key_id, SigningKey.generate()
    forged = forge(
        bundle, tmp_path / "f.zip", forger, genuine_id, {"posts.json": altered_posts(bundle)}
    )

    code, out = verify(forged, capsys=capsys)
    assert code != 0, out
    assert f"signing key {genuine_id}" not in out, out  # it was copied from manifest.sig
    assert forger.key_id in out, out  # computed from the key that checked the signatures
    assert f"keys/{genuine_id}.pem" in out, out  # the name that lies is a finding

    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "NOT VERIFIED" in out, out


async def test_a_forger_key_under_its_honest_id_is_unanchored_and_fails_against_ours(
    genuine, tmp_path, capsys
):
    app, bundle = genuine
    forger = SigningKey.generate()
    forged = forge(
        bundle, tmp_path / "f.zip", forger, forger.key_id, {"posts.json": altered_posts(bundle)}
    )

    code, out = verify(forged, capsys=capsys)
    assert code == UNANCHORED, out
    assert "unanchored key" in out and forger.fingerprint in out.replace(" ", ""), out
    assert "VERIFIED:" not in out.replace("NOT VERIFIED:", ""), out

    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "NOT VERIFIED" in out and forger.key_id in out, out


async def test_the_genuine_bundle_is_verified_only_against_an_anchor(
    genuine, tmp_path, capsys, monkeypatch
):
    app, bundle = genuine
    code, out = verify(bundle, capsys=capsys)
    assert code == UNANCHORED and "intact, but signed by an unanchored key" in out, out
    assert "watcher key" in out, out

    by_fingerprint = verify(bundle, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert by_fingerprint[0] == 0 and "VERIFIED" in by_fingerprint[1], by_fingerprint
    by_file = verify(bundle, "--key", app.data_dir / KEY_FILE, capsys=capsys)
    assert by_file[0] == 0, by_file

    other = SigningKey.generate().fingerprint
    monkeypatch.setenv("WATCHER_TRUSTED_KEYS", f"{other}:{app.data_dir / KEY_FILE}")
    assert verify(bundle, capsys=capsys)[0] == 0
    monkeypatch.setenv("WATCHER_TRUSTED_KEYS", other)
    code, out = verify(bundle, capsys=capsys)
    assert code == 1 and "not one of the keys you trust" in out, out

    short = verify(bundle, "--key", app.custody.key.key_id, capsys=capsys)
    assert short[0] == 1  # a 16-hex id is not an anchor: a forger can grind one


async def test_a_rotated_key_is_trusted_through_the_rotation_entry_only(
    site, make_app, tmp_path, capsys
):
    app = await dealer_app(site, make_app)
    first = app.custody.key
    app.custody.rotate_key(SigningKey.generate())
    site.add_post("dealer", "second", images=[])
    await run_capture(app, app.watchlist.target("dealer"))
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")

    code, out = verify(bundle, "--key", first.fingerprint, capsys=capsys)
    assert code == 0, out  # the new key was announced by an entry the first key signed
    assert app.custody.key.key_id in out
    assert verify(bundle, "--key", app.custody.key.fingerprint, capsys=capsys)[0] == 0
    other = SigningKey.generate().fingerprint
    assert verify(bundle, "--key", other, capsys=capsys)[0] == 1


async def test_a_forgers_timestamp_authority_is_not_a_trusted_timestamp(
    site, make_app, tsa, tmp_path, capsys
):
    url, ca = tsa
    header = f"evidence:\n  tsa_url: {url}\n  tsa_ca_file: {ca}\n"
    app = await dealer_app(site, make_app, header=header)
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    key = app.custody.key.fingerprint

    code, out = verify(bundle, "--key", key, "--tsa-ca", ca, capsys=capsys)
    assert code == 0 and "OK   trusted timestamp" in out, out

    forger = SigningKey.generate()
    (tmp_path / "forger-tsa").mkdir()
    with local_tsa(tmp_path / "forger-tsa") as (forger_url, forger_ca):
        # The forger's log ends at another head: their authority stamps that one.
        forged = forge(bundle, tmp_path / "f.zip", forger, forger.key_id, {})
        head = CustodyEntry.from_json(json.loads(members(forged)["custody.jsonl"].splitlines()[-1]))
        stamp = request_timestamp(head.hash, forger_url)
    changes = {"timestamps/head.tsr": stamp, "timestamps/tsa-ca.pem": forger_ca.read_bytes()}
    forged = forge(bundle, tmp_path / "f.zip", forger, forger.key_id, changes)

    code, out = verify(forged, capsys=capsys)
    assert "OK   trusted timestamp" not in out and code != 0, out
    assert "--tsa-ca" in out, out  # says how to check the timestamp
    code, out = verify(forged, "--tsa-ca", ca, capsys=capsys)
    assert code == 1 and "FAIL trusted timestamp" in out, out


# -- 2. the verifier and unzip read different files -----------------------------------------
@dataclass
class Member:
    """One member of a hand-made zip: what a forger controls byte by byte."""

    name: bytes
    packed: bytes  # raw deflate stream
    crc: int
    size: int
    extra: bytes = b""

    @classmethod
    def of(cls, name: str | bytes, data: bytes, extra: bytes = b"") -> Member:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush()
        raw = name.encode() if isinstance(name, str) else name
        return cls(raw, packed, zlib.crc32(data), len(data), extra)


def write_zip(path: Path, items: list[Member]) -> Path:
    """A zip written field by field, as no honest writer would."""
    out, central = bytearray(), bytearray()
    for m in items:
        offset = len(out)
        sizes = (m.crc, len(m.packed), m.size, len(m.name), len(m.extra))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, *sizes)
        out += m.name + m.extra + m.packed
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, *sizes,
                               0, 0, 0, 0, offset)  # fmt: skip
        central += m.name + m.extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(items), len(items), len(central),
                      len(out), 0)  # fmt: skip
    path.write_bytes(bytes(out + central + end))
    return path


def genuine_members(bundle: Path) -> list[Member]:
    return [Member.of(name, data) for name, data in members(bundle).items()]


FORGED_REPORT = b"<html><body>nothing to see: the seller was never here</body></html>"


def unzip(bundle: Path, into: Path, *flags: str) -> bytes:
    """What ``unzip`` (Info-ZIP, what a prosecutor's machine runs) writes as index.html."""
    if shutil.which("unzip") is None:
        pytest.skip("the unzip program is not installed")
    into.mkdir()
    subprocess.run(["unzip", "-q", *flags, str(bundle), "-d", str(into)], capture_output=True)
    return (into / "index.html").read_bytes()


async def test_a_second_index_html_is_a_finding_not_a_coin_toss(genuine, tmp_path, capsys):
    app, bundle = genuine
    forged = write_zip(
        tmp_path / "twice.zip",
        [Member.of("index.html", FORGED_REPORT), *genuine_members(bundle)],
    )
    assert unzip(forged, tmp_path / "x", "-n") == FORGED_REPORT  # the attack is real
    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "index.html: appears 2 times" in out, out


async def test_a_folder_entry_renamed_by_a_unicode_path_field_is_a_finding(
    genuine, tmp_path, capsys
):
    app, bundle = genuine
    # Info-ZIP Unicode Path extra field: version 1, CRC-32 of the header's name, the new name.
    unicode_path = struct.pack("<BI", 1, zlib.crc32(b"zz/")) + b"index.html"
    extra = struct.pack("<HH", 0x7075, len(unicode_path)) + unicode_path
    items = [*genuine_members(bundle), Member.of("zz/", FORGED_REPORT, extra)]
    forged = write_zip(tmp_path / "renamed.zip", items)
    assert unzip(forged, tmp_path / "x", "-o") == FORGED_REPORT  # the attack is real
    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "zz/: a folder entry" in out, out


@pytest.mark.parametrize(
    "name", ["../index.html", "/tmp/index.html", "captures\\1\\page.html", "index.html\0.txt"]
)
async def test_unsafe_member_names_are_findings(genuine, tmp_path, capsys, name):
    app, bundle = genuine
    forged = write_zip(
        tmp_path / "names.zip", [*genuine_members(bundle), Member.of(name, FORGED_REPORT)]
    )
    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "an unsafe name" in out, out


ZIP_BOMB_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from pathlib import Path
    from watcher.evidence.verify import verify_bundle
    report = verify_bundle(Path(sys.argv[1]))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent, so a child
    # of a grown pytest process reported pytest's size (320 MB late in a full run).
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    peak = int(status.split()[0]) * 1024
    failures = [f"{f.item}: {f.message}" for f in report.findings if not f.ok]
    print(json.dumps({"failures": failures, "peak": peak}))
    """
)


def zip_bomb(name: str, gib: int = 2) -> Member:
    """A member of ``gib`` GiB of zeros in ~2 MB: one deflated MiB repeated (full flushes
    make every block start afresh, so the copies join into one valid stream)."""
    packer, mib = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(1 << 20)
    block = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(gib * 1024):
        crc = zlib.crc32(mib, crc)
    return Member(name.encode(), block * (gib * 1024) + packer.flush(), crc, gib << 30)


@pytest.mark.parametrize("how", ["replaces posts.json", "added"])
async def test_a_zip_bomb_costs_no_memory(genuine, tmp_path, how):
    _, bundle = genuine
    items = genuine_members(bundle)
    if how == "added":
        items.append(zip_bomb("images/bomb.jpg"))
    else:
        items = [zip_bomb("posts.json") if m.name == b"posts.json" else m for m in items]
    forged = write_zip(tmp_path / "bomb.zip", items)
    assert forged.stat().st_size < 5_000_000
    limit = 1 << 30  # address space: 1 GiB, half of what the bomb inflates to
    child = subprocess.run(
        [sys.executable, "-c", ZIP_BOMB_CHILD, str(forged), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout)
    bomb = "posts.json" if how != "added" else "images/bomb.jpg"
    assert any(f.startswith(bomb) for f in result["failures"]), result
    assert result["peak"] < 300 * 1024 * 1024, result  # peak RSS of the whole verify


# -- 5. the offline report opens the dealer's page with its scripts -------------------------
def dealer_page(beacon: str) -> str:
    """A listing page that, when a browser runs it, renames itself and calls home."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>shop</title>"
        f"<script>document.title = 'ran from ' + location.protocol;"
        f"new Image().src = '{beacon}?script';</script>"
        f"<link rel=stylesheet href='{beacon}?css'></head><body>"
        '<div class="listing" data-id="L1"><p class="desc">carved ivory</p>'
        f'<div class="photos"></div></div><img src="{beacon}?img"></body></html>'
    )


async def open_as_file(browser, path: Path) -> tuple[str, list[str]]:
    """(title, http requests made) when ``path`` is opened from file:// in Chromium."""
    requests: list[str] = []
    async with browser.context() as context:
        context.on("request", lambda r: requests.append(r.url))
        page = await context.new_page()
        await page.goto(path.as_uri(), wait_until="load")
        title = await page.title()
    return title, [url for url in requests if not url.startswith("file:")]


async def test_the_offline_report_never_runs_the_dealers_page(site, make_app, browser, tmp_path):
    beacon = f"{site.base_url}/beacon"
    site.route("/shop/evil", dealer_page(beacon))
    app = make_app(hostile_target("evil", f"{site.base_url}/shop/evil"))
    summary = await run_capture(app, app.watchlist.target("evil"))
    assert summary.status == "ok", summary
    (bundle,) = export_bundle(app, Selection(target="evil"), tmp_path / "out")
    folder = tmp_path / "opened"
    with zipfile.ZipFile(bundle) as opened:
        opened.extractall(folder)
        html_name = next(n for n in opened.namelist() if "/page.html" in n)

    # The control: the page as kept, opened as HTML, does run and call home from file://.
    control = tmp_path / "control.html"
    control.write_bytes((folder / html_name).read_bytes())
    title, requests = await open_as_file(browser, control)
    assert title == "ran from file:" and any(u.startswith(beacon) for u in requests), requests

    report = folder / "index.html"
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto(report.as_uri())
        links = await page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    # In-page anchors (the summary links its sections) open the report itself.
    local = {link.split("#")[0] for link in links if link.startswith("file:")}
    shipped = {p.as_uri() for p in folder.glob("captures/*/*") if "html" in p.name}
    assert shipped, sorted(p.name for p in folder.rglob("*"))
    for uri in sorted({report.as_uri()} | local | shipped):
        if uri.endswith((".wacz", ".zip")):
            continue  # a download, not a page
        title, requests = await open_as_file(browser, Path(uri.removeprefix("file://")))
        assert "ran from" not in title, uri
        assert requests == [], (uri, requests)
