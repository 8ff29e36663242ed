"""Signed web archives: every capture's WACZ carries a WACZ Signing and Verification 0.1.0
anonymous signature by the data folder's web archive key, which the custody log announces.

No PyPI tool checks the anonymous form offline: py-wacz's ``--verify-auth`` goes through
authsign, whose Verifier (like harvard-lil's wacz-signing) handles only the domain
certificate form. So the signature is checked here three more ways: py-wacz's validate
(digest hash, ``created``), a from-scratch verification written from the spec with
``cryptography``, and Chromium's WebCrypto called exactly as ReplayWeb.page's wabac.js
``verifyWACZSignature`` calls it (P-384 SPKI key, ECDSA with SHA-256, r || s signature).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.conftest import channel_target
from watcher.app import WACZ_KEY_NAME, App
from watcher.capture.archive import build_wacz, build_warc
from watcher.evidence.bundle import Selection, export_bundle
from watcher.evidence.trust import Trust
from watcher.evidence.verify import verify_bundle, wacz_signature
from watcher.pipeline import run_capture
from watcher.store.custody import WACZ_KEY_ANNOUNCED
from watcher.store.keys import WaczSigningKey

BIN = Path(sys.executable).parent


@pytest.fixture
async def captured(site, make_app):
    """A channel captured twice (a post added between), so two archives were made."""
    site.channel("dealer")
    site.add_post("dealer", "象牙 手镯 老料", images=[site.add_photo("p1", seed=21)])
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"))
    await run_capture(app, app.watchlist.target("dealer"))
    site.add_post("dealer", "ចម្លាក់ភ្លុក 12cm")
    await run_capture(app, app.watchlist.target("dealer"))
    return app


def exported_waczs(app: App, tmp_path: Path) -> tuple[Path, list[bytes]]:
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    with zipfile.ZipFile(bundle) as z:
        return bundle, [z.read(n) for n in sorted(z.namelist()) if n.endswith(".wacz")]


def digest_of(wacz: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(wacz)) as z:
        return json.loads(z.read("datapackage-digest.json"))


def from_the_spec(wacz: bytes) -> bool:
    """The anonymous signature checked straight from the spec's steps, nothing of ours."""
    with zipfile.ZipFile(io.BytesIO(wacz)) as z:
        package = z.read("datapackage.json")
        digest = json.loads(z.read("datapackage-digest.json"))
        for resource in json.loads(package)["resources"]:
            data = z.read(resource["path"])
            if "sha256:" + hashlib.sha256(data).hexdigest() != resource["hash"]:
                return False
    signed = digest["signedData"]
    expected = "sha256:" + hashlib.sha256(package).hexdigest()
    if not digest["hash"] == signed["hash"] == expected:
        return False
    key = serialization.load_der_public_key(base64.b64decode(signed["publicKey"]))
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    raw = base64.b64decode(signed["signature"])
    assert len(raw) == 96  # r || s, 48 bytes each, as WebCrypto signs and verifies
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    try:
        key.verify(der, signed["hash"].encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except Exception:  # InvalidSignature: the answer, not an error
        return False
    return True


# What ReplayWeb.page (wabac.js src/wacz/certutils.ts) does with an anonymous signedData.
WABAC_VERIFY = """async ({hash, signature, publicKey}) => {
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey(
    "spki", bytes(publicKey), {name: "ECDSA", namedCurve: "P-384"}, true, ["verify"]);
  return await crypto.subtle.verify(
    {name: "ECDSA", hash: "SHA-256"}, key, bytes(signature), new TextEncoder().encode(hash));
}"""


async def test_every_exported_archive_is_signed_and_verify_checks_it(captured, tmp_path):
    bundle, waczs = exported_waczs(captured, tmp_path)
    # Two captures; the second's archive refers to the first's photos (revisits), so it
    # travels twice: made whole for replay, and as collected. Every one is signed.
    assert len(waczs) == 4

    report = verify_bundle(bundle, Trust.of(captured.custody.key.fingerprint))
    assert report.ok, [f"{f.item}: {f.message}" for f in report.findings if not f.ok]
    checked = [f for f in report.findings if f.item.endswith("(WACZ signature)")]
    assert len(checked) == 2 and all(f.ok for f in checked)
    key = captured.wacz_key
    announcement = captured.custody.entries(subject_prefix=f"{WACZ_KEY_ANNOUNCED}:")
    assert len(announcement) == 1
    assert announcement[0].details["public_key"] == key.public_key_b64
    assert all(f"key {key.key_id}" in f.message for f in checked)
    assert all(f"custody entry {announcement[0].seq}" in f.message for f in checked)
    for wacz in waczs:
        assert digest_of(wacz)["signedData"]["publicKey"] == key.public_key_b64


async def test_the_key_is_kept_like_the_custody_key_and_announced_once(captured, tmp_path):
    key_file = captured.data_dir / "keys" / WACZ_KEY_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    # Another process on the same data folder reuses the key and does not announce it again.
    again = App.open(captured.watchlist, captured.data_dir, browser=captured.browser)
    try:
        assert again.wacz_key.public_key_b64 == captured.wacz_key.public_key_b64
        assert len(again.custody.entries(subject_prefix=f"{WACZ_KEY_ANNOUNCED}:")) == 1
    finally:
        await again.close()
    # A key file that others can read is refused, like the custody key.
    key_file.chmod(0o644)
    with pytest.raises(Exception, match="can be read by other users"):
        WaczSigningKey.load_or_create(key_file)


async def test_signature_checks_from_the_spec_py_wacz_and_webcrypto(
    captured, tmp_path, browser, site
):
    _, waczs = exported_waczs(captured, tmp_path)
    wacz = waczs[-1]
    assert from_the_spec(wacz)

    path = tmp_path / "archive.wacz"
    path.write_bytes(wacz)
    validate = subprocess.run(
        [BIN / "wacz", "validate", "-f", path], capture_output=True, text=True, timeout=120
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Has signature" in validate.stdout  # and its `created` matched the datapackage's

    signed = digest_of(wacz)["signedData"]
    forged = dict(signed, hash="sha256:" + "0" * 64)
    async with browser.context() as context:
        page = await context.new_page()
        await page.goto(f"{site.base_url}/")  # WebCrypto needs a secure context: loopback is one
        assert await page.evaluate(WABAC_VERIFY, signed) is True
        assert await page.evaluate(WABAC_VERIFY, forged) is False


def test_a_damaged_or_resigned_archive_is_named(tmp_path):
    warc = build_warc([], [], {"target": "t"})
    key = WaczSigningKey.generate()
    created = "2026-11-20T02:15:00Z"
    signed = build_wacz(warc, "capture.warc.gz", "http://x.test/", "t", created, key)
    # Signing is deterministic: the same capture still gives the same bytes (one blob).
    assert signed == build_wacz(warc, "capture.warc.gz", "http://x.test/", "t", created, key)
    assert wacz_signature(io.BytesIO(signed))[1] == ""
    unsigned = build_wacz(warc, "capture.warc.gz", "http://x.test/", "t", created)
    assert wacz_signature(io.BytesIO(unsigned)) == (None, "")

    def rewritten(change) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(signed)) as src, zipfile.ZipFile(out, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, change(name, src.read(name)))
        return out.getvalue()

    def new_signed_data(name: str, data: bytes, **fields: str) -> bytes:
        if name != "datapackage-digest.json":
            return data
        digest = json.loads(data)
        digest["signedData"].update(fields)
        return json.dumps(digest).encode()

    other = WaczSigningKey.generate().signed_data(
        digest_of(signed)["hash"], created, "someone else"
    )
    flipped = base64.b64encode(bytes(96)).decode()
    cases = {
        "signature does not verify": rewritten(
            lambda n, d: new_signed_data(n, d, signature=flipped)
        ),
        # Another key's valid signature with the first key's name: still not the first key's.
        "does not verify with the publicKey": rewritten(
            lambda n, d: new_signed_data(n, d, signature=other["signature"])
        ),
        "created at another time": rewritten(
            lambda n, d: new_signed_data(n, d, created="2020-01-01T00:00:00Z")
        ),
        "differs from the hash in datapackage-digest.json": rewritten(
            lambda n, d: (
                d.replace(b'"title": "t"', b'"title": "u"') if n == "datapackage.json" else d
            )
        ),
        "its pages/pages.jsonl differs": rewritten(
            lambda n, d: (
                d.replace(b"http://x.test/", b"http://y.test/") if n == "pages/pages.jsonl" else d
            )
        ),
    }
    for expected, data in cases.items():
        signed_data, problem = wacz_signature(io.BytesIO(data))
        assert signed_data is None and expected in problem, (expected, problem)
