"""A bundle for one case names nothing of another, and still proves its place in the chain.

The team watches a dealer (case A) and, for an informant, another channel (case B). A bundle
for A goes to a court where B's existence must not surface: it carries A's custody entries in
full and every other entry as its signed header alone. `watcher verify` checks that the
withheld entries still link and are signed, and that the bundle's captures are exactly those
whose entries it carries in full. Each attack on that proof is built from the genuine
bundle; the manifest is re-signed with the team's own key, so the only thing left to catch
the attack is the custody proof itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlite_utils

from tests.conftest import channel_target
from tests.reliability.forger import KEY_FILE, listed, members, signed_bundle, verify
from watcher.evidence.bundle import Selection, export_bundle
from watcher.pipeline import run_capture
from watcher.store.custody import GENESIS, CustodyEntry, canonical_json, entry_hash
from watcher.store.keys import SigningKey
from watcher.store.migrations import MIGRATIONS

SECRET_NAME = "informant-lead-7"
SECRET_SLUG = "wildtrade_secret_ch"
SECRET_TEXT = "pangolin scales via the northern route"


@pytest.fixture(autouse=True)
def no_trusted_keys_from_the_environment(monkeypatch):
    monkeypatch.delenv("WATCHER_TRUSTED_KEYS", raising=False)


def old_entries(db_path: Path, key: SigningKey) -> None:
    """Custody entries as watcher wrote them before m010 (format 1), naming case B."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(db_path)
    MIGRATIONS.apply(db, stop_before="m010_custody_redactable")
    prev = GENESIS
    for seq in (1, 2):
        details = {"target": SECRET_NAME, "url": f"https://t.me/s/{SECRET_SLUG}", "n": seq}
        at, subject = f"2026-01-0{seq}T00:00:00.000Z", f"target:{SECRET_NAME}"
        digest = entry_hash(seq, at, "target_paused", subject, details, prev, key.key_id)
        entry = CustodyEntry(
            seq, at, "target_paused", subject, details, prev, digest, key.key_id,
            key.sign(digest.encode()),
        )  # fmt: skip
        row = entry.to_json()
        row["details"] = canonical_json(details)
        db["custody"].insert(row)
        prev = digest
    db.close()


@pytest.fixture
async def two_cases(site, make_app, tmp_path):
    """(app, bundle of case A): A and B captured in turns, B paused and exported on its own,
    on a data folder whose log began before m010."""
    key = SigningKey.load_or_create(tmp_path / "data" / KEY_FILE)
    old_entries(tmp_path / "data" / "watcher.db", key)
    site.channel("dealer")
    site.add_post("dealer", "carved bangle, inbox", images=[site.add_photo("p1", seed=11)])
    site.channel(SECRET_SLUG)
    site.add_post(SECRET_SLUG, SECRET_TEXT, images=[site.add_photo("p2", seed=23)])
    app = make_app(
        channel_target("dealer", f"{site.base_url}/s/dealer"),
        channel_target(SECRET_NAME, f"{site.base_url}/s/{SECRET_SLUG}"),
    )
    for name in ("dealer", SECRET_NAME, "dealer", SECRET_NAME):
        await run_capture(app, app.watchlist.target(name))
    app.custody.append("target_paused", f"target:{SECRET_NAME}", {"until": None, "by": 7})
    export_bundle(app, Selection(target=SECRET_NAME), tmp_path / "b-out")
    (bundle,) = export_bundle(app, Selection(target="dealer"), tmp_path / "out")
    return app, bundle


def log_of(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in members(bundle)["custody.jsonl"].splitlines()]


def with_log(app, bundle: Path, out: Path, lines: list[dict]) -> Path:
    """The bundle with another custody log, its manifest updated and re-signed with the
    team's own key: only the custody proof can tell."""
    files = members(bundle)
    files["custody.jsonl"] = b"".join(
        json.dumps(line, sort_keys=True).encode() + b"\n" for line in lines
    )
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig")
    manifest["files"]["custody.jsonl"] = listed(files["custody.jsonl"])
    return signed_bundle(out, manifest, files, app.custody.key)


def withheld(lines: list[dict]) -> list[int]:
    """Positions of the withheld entries inside the log (not its head: the manifest names
    the head, which catches any change to it on its own)."""
    return [i for i, line in enumerate(lines[:-1]) if line.get("redacted")]


async def test_a_bundle_for_case_a_names_nothing_of_case_b(two_cases, capsys) -> None:
    app, bundle = two_cases
    raw = bundle.read_bytes()
    files = members(bundle)
    for secret in (SECRET_NAME, SECRET_SLUG, SECRET_TEXT, "informant"):
        needle = secret.encode()
        assert needle not in raw
        leaks = [name for name, data in files.items() if needle in data or needle in name.encode()]
        assert leaks == [], f"{secret!r} in {leaks}"
    lines = log_of(bundle)
    # The whole chain travels: B's entries too (old format, paused, captures, its export),
    # as headers; A's captures in full.
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert len(withheld(lines)) == 5 and lines[-1]["redacted"]  # the head: B's export
    full = [line["subject"] for line in lines if not line.get("redacted")]
    dealer_captures = json.loads(files["manifest.json"])["captures"]
    assert sorted(s for s in full if s.startswith("capture:")) == sorted(
        f"capture:{c}" for c in dealer_captures
    )
    key = app.custody.key.fingerprint
    code, out = verify(bundle, "--key", key, capsys=capsys)
    assert code == 0 and "VERIFIED" in out, out
    assert "withheld" in out, out


def test_the_old_style_whole_log_bundle_still_verifies(tmp_path, capsys) -> None:
    """A bundle exported before this change (format 1, every entry in full) still verifies."""
    key = SigningKey.generate()
    prev, lines = GENESIS, []
    for seq in (1, 2, 3):
        details = {"n": seq}
        at = f"2026-01-0{seq}T00:00:00.000Z"
        digest = entry_hash(seq, at, "exported", f"bundle:{seq}", details, prev, key.key_id)
        entry = CustodyEntry(
            seq, at, "exported", f"bundle:{seq}", details, prev, digest, key.key_id,
            key.sign(digest.encode()),
        )  # fmt: skip
        lines.append(json.dumps(entry.to_json(), sort_keys=True) + "\n")
        prev = digest
    files = {
        "custody.jsonl": "".join(lines).encode(),
        f"keys/{key.key_id}.pem": key.public_pem().encode(),
    }
    manifest = {
        "format": "watcher-bundle-1",
        "captures": [],
        "custody_head": json.loads(lines[-1]),
        "files": {n: listed(d) for n, d in files.items()},
    }
    bundle = signed_bundle(tmp_path / "old.zip", manifest, files, key)
    code, out = verify(bundle, "--key", key.fingerprint, capsys=capsys)
    assert code == 0 and "VERIFIED" in out, out


def unredacted_genuinely(app, lines: list[dict]) -> list[dict]:
    """B's capture entry shown in full, exactly as the team's log holds it."""
    at = next(i for i in withheld(lines) if lines[i]["action"] == "captured")
    lines[at] = next(e for e in app.custody.entries() if e.seq == lines[at]["seq"]).to_json()
    return lines


def unredacted_falsely(app, lines: list[dict]) -> list[dict]:
    """A withheld entry given made-up content (a harmless-looking capture of A)."""
    at = withheld(lines)[-1]
    lines[at] |= {"subject": "capture:1", "details": {"target": "dealer"}, "salt": "0" * 32}
    del lines[at]["redacted"]
    return lines


def altered_body_hash(app, lines: list[dict]) -> list[dict]:
    at = withheld(lines)[-1]
    lines[at]["body_hash"] = "f" * 64
    return lines


def dropped(app, lines: list[dict]) -> list[dict]:
    del lines[withheld(lines)[-1]]
    return lines


def dropped_and_renumbered(app, lines: list[dict]) -> list[dict]:
    at = withheld(lines)[-1]
    del lines[at]
    for line in lines[at:]:
        line["seq"] -= 1
    return lines


def dropped_head(app, lines: list[dict]) -> list[dict]:
    del lines[-1]
    return lines


def reordered(app, lines: list[dict]) -> list[dict]:
    first, second = withheld(lines)[-2:]
    lines[first], lines[second] = lines[second], lines[first]
    return lines


def old_entry_altered(app, lines: list[dict]) -> list[dict]:
    lines[0]["at"] = "2025-12-31T00:00:00.000Z"  # a withheld old-format entry
    return lines


def hidden_capture(app, lines: list[dict]) -> list[dict]:
    """One of A's own captures withheld: its files would go unchecked."""
    at = next(i for i, line in enumerate(lines) if line.get("subject", "").startswith("capture:"))
    entry = next(e for e in app.custody.entries() if e.seq == lines[at]["seq"])
    lines[at] = entry.redacted_form().to_json()
    return lines


@pytest.mark.parametrize(
    ("attack", "finding"),
    [
        (unredacted_genuinely, "does not hold that capture"),
        (unredacted_falsely, "details do not give the hash"),
        (altered_body_hash, "hash does not match"),
        (dropped, "missing"),
        (dropped_and_renumbered, "does not link"),
        (dropped_head, "does not end at the head"),
        (reordered, "out of order"),
        (old_entry_altered, "format upgrade does not match"),
        (hidden_capture, "withheld"),
    ],
)
async def test_tampering_with_the_custody_proof_is_not_verified(
    two_cases, tmp_path, capsys, attack, finding
) -> None:
    app, bundle = two_cases
    forged = with_log(app, bundle, tmp_path / "forged.zip", attack(app, log_of(bundle)))
    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "NOT VERIFIED" in out, out
    assert finding in out, out


async def test_an_entry_from_another_chain_is_not_verified(
    two_cases, site, make_app, tmp_path, capsys
) -> None:
    """Another data folder signed by the same key (a copied key): its entries are signed
    alike, but they are not links of this chain."""
    app, bundle = two_cases
    other_dir = tmp_path / "other"
    (other_dir / KEY_FILE).parent.mkdir(parents=True)
    shutil.copy2(tmp_path / "data" / KEY_FILE, other_dir / KEY_FILE)
    other = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), data="other")
    assert other.custody.key.fingerprint == app.custody.key.fingerprint
    for _ in range(12):
        other.custody.append("target_paused", "target:someone", {"n": 1})
    lines = log_of(bundle)
    at = withheld(lines)[-1]
    swapped_in = next(e for e in other.custody.entries() if e.seq == lines[at]["seq"])
    lines[at] = swapped_in.redacted_form().to_json()
    forged = with_log(app, bundle, tmp_path / "forged.zip", lines)
    code, out = verify(forged, "--key", app.custody.key.fingerprint, capsys=capsys)
    assert code == 1 and "NOT VERIFIED" in out, out
    assert "does not link" in out, out
