"""``watcher verify``: check a bundle's every byte, its custody chain and its signatures.

Each check gives a verdict a person can read; the bundle holds only when all of them do.
Nothing is trusted from the bundle except through a hash or a signature: the key that signed
it is named by fingerprint so it can be compared with the one the team published.
"""

from __future__ import annotations

import json
import lzma
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from watcher.errors import WatcherError
from watcher.store.blobs import sha256_hex
from watcher.store.custody import CustodyEntry, verify_chain
from watcher.store.keys import verify_signature
from watcher.store.timestamp import verify_timestamp

_OWN_FILES = {"manifest.json", "manifest.sig"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict: what was checked, whether it holds, and why not."""

    item: str
    ok: bool
    message: str = "ok"


@dataclass(slots=True)
class VerifyReport:
    """Every finding for one bundle."""

    bundle: str
    key_id: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check holds."""
        return bool(self.findings) and all(f.ok for f in self.findings)

    def add(self, item: str, ok: bool, message: str = "ok") -> None:
        """Record one verdict."""
        self.findings.append(Finding(item, ok, message))


def verify_bundle(path: Path) -> VerifyReport:
    """Check ``path``: file hashes, manifest signature, custody chain, collection hashes."""
    report = VerifyReport(str(path))
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.add(path.name, False, f"cannot be opened as a bundle ({exc})")
        return report
    with bundle:
        read = _read_all(bundle, report)
        files = {name: data for name, data in read.items() if data is not None}
        manifest = _manifest(files, report)
        if manifest is None:
            return report
        keys = _keys(files)
        _check_signature(files, manifest, keys, report)
        _check_files(files, manifest, report, damaged=set(read) - set(files))
        entries = _check_chain(files, manifest, keys, report)
        _check_collection_hashes(files, manifest, entries, report)
        _check_timestamp(files, manifest, entries, report)
    return report


# What zipfile raises for a member whose bytes were damaged in the zip itself: a bad CRC or
# header (BadZipFile), a broken deflate stream (zlib.error), a cut-off one (EOFError), a
# compression method or flag byte flipped to one it cannot read (NotImplementedError,
# RuntimeError, LZMAError), a bad size (ValueError).
_DAMAGED_MEMBER = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
)


def _read_all(bundle: zipfile.ZipFile, report: VerifyReport) -> dict[str, bytes | None]:
    """Every member's bytes; None (and a finding) for one that cannot be read back."""
    files: dict[str, bytes | None] = {}
    for name in bundle.namelist():
        if name.endswith("/"):
            continue
        try:
            files[name] = bundle.read(name)
        except _DAMAGED_MEMBER as exc:
            files[name] = None
            report.add(name, False, f"damaged inside the zip, cannot be read back ({exc})")
    return files


def _manifest(files: dict[str, bytes], report: VerifyReport) -> dict | None:
    try:
        manifest = json.loads(files["manifest.json"])
        json.loads(files["manifest.sig"])
    except (KeyError, ValueError) as exc:
        report.add("manifest.json", False, f"missing or unreadable manifest ({exc})")
        return None
    return manifest


def _keys(files: dict[str, bytes]) -> dict[str, str]:
    return {
        name[len("keys/") : -len(".pem")]: data.decode("ascii", "replace")
        for name, data in files.items()
        if name.startswith("keys/") and name.endswith(".pem")
    }


def _check_signature(
    files: dict[str, bytes], manifest: dict, keys: dict[str, str], report: VerifyReport
) -> None:
    signature = json.loads(files["manifest.sig"])
    key_id = signature.get("key_id")
    report.key_id = key_id
    pem = keys.get(key_id or "")
    if pem is None:
        report.add("manifest.sig", False, f"signed by key {key_id}, which the bundle lacks")
        return
    good = verify_signature(pem, files["manifest.json"], signature.get("signature", ""))
    report.add(
        "manifest.sig",
        good,
        f"signed by custody key {key_id}"
        if good
        else "the manifest's signature does not match (manifest or key altered)",
    )


def _check_files(
    files: dict[str, bytes], manifest: dict, report: VerifyReport, damaged: set[str]
) -> None:
    listed = manifest.get("files", {})
    for name, expected in sorted(listed.items()):
        data = files.get(name)
        if name in damaged:
            continue  # already reported by _read_all
        if data is None:
            report.add(name, False, "missing from the bundle")
        elif sha256_hex(data) != expected.get("sha256") or len(data) != expected.get("size"):
            report.add(name, False, "altered: its SHA-256 differs from the manifest")
        else:
            report.add(name, True, f"sha256 {expected['sha256'][:16]}…")
    for name in sorted(set(files) - set(listed) - _OWN_FILES):
        report.add(name, False, "not listed in the manifest (added after export)")


def _check_chain(
    files: dict[str, bytes], manifest: dict, keys: dict[str, str], report: VerifyReport
) -> list[CustodyEntry]:
    try:
        entries = [
            CustodyEntry.from_json(json.loads(line))
            for line in files.get("custody.jsonl", b"").decode("utf-8").splitlines()
            if line.strip()
        ]
    except (ValueError, KeyError, TypeError) as exc:
        report.add("custody.jsonl", False, f"unreadable custody log ({exc})")
        return []
    problems = verify_chain(entries, keys)
    for problem in problems:
        report.add("custody chain", False, problem.message)
    head = manifest.get("custody_head")
    if head and (not entries or entries[-1].hash != head.get("hash")):
        report.add("custody chain", False, "the log does not end at the head the manifest names")
        return entries
    if not problems:
        report.add("custody chain", True, f"{len(entries)} entries, hashes and signatures hold")
    return entries


def _check_collection_hashes(
    files: dict[str, bytes], manifest: dict, entries: list[CustodyEntry], report: VerifyReport
) -> None:
    captured = {e.subject: e for e in entries if e.action == "captured"}
    for capture_id in manifest.get("captures", []):
        item = f"capture #{capture_id}"
        entry = captured.get(f"capture:{capture_id}")
        record = json.loads(files.get(f"captures/{capture_id}/capture.json", b"{}") or b"{}")
        if entry is None:
            report.add(item, False, "no 'captured' entry in the custody log")
            continue
        at_collection = {a["sha256"] for a in entry.details.get("artifacts", [])}
        wrong = [
            a["path"]
            for a in record.get("artifacts", [])
            if a["sha256"] not in at_collection
            or sha256_hex(files.get(a["path"], b"")) != a["sha256"]
        ]
        report.add(
            item,
            not wrong,
            "files match the hashes taken at collection"
            if not wrong
            else f"differs from the hashes taken at collection: {', '.join(wrong)}",
        )


def _check_timestamp(
    files: dict[str, bytes], manifest: dict, entries: list[CustodyEntry], report: VerifyReport
) -> None:
    response = files.get("timestamps/head.tsr")
    if response is None:
        return  # no TSA configured at export: nothing claimed, nothing to check
    ca = files.get("timestamps/tsa-ca.pem")
    if not entries or ca is None:
        report.add("trusted timestamp", False, "timestamp present without its CA or custody log")
        return
    with tempfile.TemporaryDirectory() as folder:
        ca_path = Path(folder) / "tsa-ca.pem"
        ca_path.write_bytes(ca)
        try:
            when = verify_timestamp(response, entries[-1].hash, ca_path)
        except WatcherError as exc:
            report.add("trusted timestamp", False, f"does not verify: {exc}")
            return
    report.add("trusted timestamp", True, f"custody head existed by {when} (RFC 3161)")
