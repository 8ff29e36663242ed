"""``watcher verify``: check a bundle's every byte, its custody chain and its signatures.

Each check gives a verdict a person can read. Nothing is trusted from the bundle except
through a hash or a signature, and the signatures only through a key the verifier names from
outside the bundle (:mod:`watcher.evidence.trust`): a bundle whose every check holds but
whose key nobody vouched for is *intact*, not *verified*.

The zip is read the way ``unzip`` would extract it, so that both see the same files: every
member must be a plain file with a plain name, listed in the manifest, present once, with no
extra field that names it otherwise. Members are hashed as streams, their sizes checked
against the manifest before a byte is inflated, so a zip bomb costs no memory.
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

from watcher.errors import WatcherError
from watcher.evidence.trust import Trust
from watcher.store.custody import KEY_ROTATED, WACZ_KEY_ANNOUNCED, CustodyEntry, verify_chain
from watcher.store.keys import (
    fingerprint_of,
    key_id_of,
    verify_signature,
    verify_wacz_signature,
    wacz_key_fingerprint,
)
from watcher.store.timestamp import verify_timestamp

_OWN_FILES = ("manifest.json", "manifest.sig")
VERIFIED, UNANCHORED, NOT_VERIFIED = "VERIFIED", "UNANCHORED", "NOT VERIFIED"
# Names export writes: ASCII letters, digits, '.', '_', '-' in '/'-separated parts that do
# not start with a dot. Anything else ('..', '/abs', 'a\\b', NUL, non-ASCII whose decoding
# differs between tools) is a name unzip may place elsewhere than the verifier reads it.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
# The only extra field export's zip writer may add: zip64 sizes, for a member past 2 GiB.
# Others are refused: 0x7075 (Info-ZIP Unicode Path) makes unzip write the member under
# another name, 0x6375 (Unicode Comment), 0x756e / 0x7875 (Unix modes, links, owners).
_ZIP64_EXTRA = 0x0001
_EXTRA_NAMES = {0x7075: "a Unicode Path", 0x6375: "a Unicode Comment", 0x756E: "a Unix mode"}
# Members whose content is parsed (the rest are only hashed, as a stream). A genuine custody
# log of years of captures stays far below this; a larger one is refused, not loaded.
_MAX_PARSED = 256 * 1024 * 1024
_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict: what was checked, whether it holds, and why not."""

    item: str
    ok: bool
    message: str = "ok"


@dataclass(slots=True)
class VerifyReport:
    """Every finding for one bundle, and who signed it.

    ``key_id`` and ``fingerprint`` are computed from the public key that checked the
    manifest's signature, never read from a file name or from ``manifest.sig``.
    """

    bundle: str
    key_id: str | None = None
    fingerprint: str | None = None
    anchored_by: str | None = None  # where the verifier named the key (or its announcer)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when every check holds: nothing in the bundle changed since it was signed."""
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def verdict(self) -> str:
        """VERIFIED (intact, signed by an anchored key), UNANCHORED (intact) or NOT VERIFIED."""
        if not self.intact:
            return NOT_VERIFIED
        return VERIFIED if self.anchored_by else UNANCHORED

    @property
    def ok(self) -> bool:
        """True only for an intact bundle signed by a key the verifier trusts."""
        return self.verdict == VERIFIED

    def add(self, item: str, ok: bool, message: str = "ok") -> None:
        """Record one verdict."""
        self.findings.append(Finding(item, ok, message))


@dataclass(slots=True)
class _Contents:
    """What was read of the bundle: hashes of every listed member, bytes of parsed ones."""

    sha256: dict[str, str] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)


def verify_bundle(path: Path, trust: Trust | None = None) -> VerifyReport:
    """Check ``path``: zip layout, file hashes, signatures, custody chain, collection hashes.

    ``trust`` names the keys (and timestamp authority) the verifier relies on; without one
    an intact bundle is UNANCHORED, never VERIFIED.
    """
    trust = trust or Trust()
    report = VerifyReport(str(path))
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        report.add(path.name, False, f"cannot be opened as a bundle ({exc})")
        return report
    with bundle:
        readable = _check_layout(path, bundle, report)
        manifest_bytes = _read_own(bundle, readable, "manifest.json", report)
        signature_bytes = _read_own(bundle, readable, "manifest.sig", report)
        try:
            manifest = json.loads(manifest_bytes or b"")
            signature = json.loads(signature_bytes or b"")
            listed = manifest["files"]
            if not isinstance(listed, dict) or not isinstance(signature, dict):
                raise ValueError("not a JSON object")
        except (ValueError, KeyError, TypeError) as exc:
            report.add("manifest.json", False, f"missing or unreadable manifest ({exc})")
            return report
        contents = _check_files(bundle, readable, listed, report)
        keys = _keys(contents, report)
        signer = _check_signature(manifest_bytes or b"", signature, contents, report)
        entries = _check_chain(contents, manifest, keys, report)
        _check_collection_hashes(contents, manifest, entries, report)
        _check_wacz_signatures(bundle, readable, contents, manifest, entries, report)
        _check_timestamp(contents, entries, trust, report)
        _check_anchor(signer, keys, entries, trust, report)
    return report


# -- the zip itself -------------------------------------------------------------------------
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


def _check_layout(
    path: Path, bundle: zipfile.ZipFile, report: VerifyReport
) -> dict[str, zipfile.ZipInfo]:
    """The members that unzip and this verifier read alike, by name; a finding for each other.

    A name that appears twice is refused in every copy: Python reads the last, ``unzip -n``
    extracts the first.
    """
    infos = bundle.infolist()
    counts = Counter(info.filename for info in infos)
    if bundle.comment:
        report.add(path.name, False, "the zip carries a comment, which export never writes")
    readable: dict[str, zipfile.ZipInfo] = {}
    refused: set[str] = set()
    reported: set[tuple[str, str]] = set()
    with path.open("rb") as raw:
        for info in infos:
            problem = _member_problem(info, raw)
            if problem is None and counts[info.filename] > 1:
                problem = (
                    f"appears {counts[info.filename]} times in the zip (unzip and a verifier "
                    "may read different copies)"
                )
            if problem is None:
                readable[info.filename] = info
                continue
            refused.add(info.filename)
            if (info.orig_filename, problem) not in reported:
                reported.add((info.orig_filename, problem))
                report.add(_shown(info.orig_filename), False, problem)
    return {name: info for name, info in readable.items() if name not in refused}


def _member_problem(info: zipfile.ZipInfo, raw) -> str | None:
    name = info.orig_filename
    if info.is_dir() or info.external_attr & 0x10:
        return "a folder entry, which export never writes (unzip may create what it names)"
    if name != info.filename or not _SAFE_NAME.fullmatch(name):
        return "an unsafe name (absolute, '..', backslash or unusual characters)"
    mode = info.external_attr >> 16
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "not a plain file (a link or device to unzip)"
    if info.comment:
        return "carries a comment, which export never writes"
    problem = _extra_problem(info.extra)
    if problem:
        return problem
    # unzip also reads the local header before a member's data: it must name the same file
    # and carry no extra field of its own that renames it.
    try:
        raw.seek(info.header_offset)
        header = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
        name_length, extra_length = header[-2], header[-1]
        local_name = raw.read(name_length)
        local_extra = raw.read(extra_length)
    except (OSError, struct.error):
        return "its local header cannot be read"
    if header[0] != b"PK\x03\x04" or local_name != name.encode("utf-8"):
        return "its local header names another file than the zip's directory"
    return _extra_problem(local_extra, "its local header")


def _extra_problem(extra: bytes, where: str = "it") -> str | None:
    offset = 0
    while offset < len(extra):
        if offset + 4 > len(extra):
            return f"{where} carries a damaged extra field"
        kind, length = struct.unpack_from("<HH", extra, offset)
        offset += 4 + length
        if offset > len(extra):
            return f"{where} carries a damaged extra field"
        if kind != _ZIP64_EXTRA:
            what = _EXTRA_NAMES.get(kind, "an")
            return (
                f"{where} carries {what} extra field (0x{kind:04x}), which export never writes "
                "and which can make unzip write it under another name or form"
            )
    return None


def _shown(name: str) -> str:
    return name.encode("unicode_escape").decode("ascii")


def _read_own(
    bundle: zipfile.ZipFile, readable: dict[str, zipfile.ZipInfo], name: str, report: VerifyReport
) -> bytes | None:
    info = readable.get(name)
    if info is None:
        return None
    try:
        return _read_bounded(bundle, info, _MAX_PARSED)
    except _DAMAGED_MEMBER as exc:
        report.add(name, False, f"damaged inside the zip, cannot be read back ({exc})")
    except _TooLarge:
        report.add(name, False, f"too large to be a manifest ({info.file_size} bytes)")
    return None


class _TooLarge(Exception):
    pass


def _read_bounded(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # The size in the zip's directory may lie; reading one byte past the limit tells.
    if info.file_size > limit:
        raise _TooLarge
    with bundle.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge
    return data


def _stream_hash(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> str | None:
    """SHA-256 of a member read in chunks; None when it inflates past ``size`` bytes."""
    digest, seen = sha256(), 0
    with bundle.open(info) as member:
        while block := member.read(_CHUNK):
            seen += len(block)
            if seen > size:
                return None
            digest.update(block)
    return digest.hexdigest() if seen == size else None


# -- files ----------------------------------------------------------------------------------
def _parsed(name: str) -> bool:
    """Members whose content the checks read, not only hash."""
    return (
        name == "custody.jsonl"
        or name.startswith(("keys/", "timestamps/"))
        or (name.startswith("captures/") and name.endswith("/capture.json"))
    )


def _check_files(
    bundle: zipfile.ZipFile,
    readable: dict[str, zipfile.ZipInfo],
    listed: dict,
    report: VerifyReport,
) -> _Contents:
    contents = _Contents()
    for name, expected in sorted(listed.items()):
        info = readable.get(name)
        try:
            sha, size = str(expected["sha256"]), int(expected["size"])
        except (KeyError, TypeError, ValueError):
            report.add(name, False, "the manifest's entry for it is damaged")
            continue
        if not _SAFE_NAME.fullmatch(name) or name in _OWN_FILES:
            report.add(_shown(name), False, "the manifest lists an unsafe name")
            continue
        if info is None:
            if name not in bundle.NameToInfo:
                report.add(name, False, "missing from the bundle")
            continue  # present but refused: reported by _check_layout
        # A parsed member is read (bounded) even when altered: the chain check can then say
        # which entry was removed. Any other member is never inflated past its listed size.
        parsed = _parsed(name)
        if info.file_size != size and not parsed:
            report.add(
                name, False, f"altered: {info.file_size} bytes, the manifest says {size} bytes"
            )
            continue
        try:
            if parsed:
                data = _read_bounded(bundle, info, _MAX_PARSED)
                got = sha256(data).hexdigest()
            else:
                data, got = None, _stream_hash(bundle, info, size)
        except _DAMAGED_MEMBER as exc:
            report.add(name, False, f"damaged inside the zip, cannot be read back ({exc})")
            continue
        except _TooLarge:
            report.add(name, False, f"altered: too large ({info.file_size} bytes) to be ours")
            continue
        if data is not None:
            contents.data[name] = data
        if info.file_size != size:
            report.add(
                name, False, f"altered: {info.file_size} bytes, the manifest says {size} bytes"
            )
            continue
        if got != sha:
            report.add(name, False, "altered: its SHA-256 differs from the manifest")
            continue
        contents.sha256[name] = got
        report.add(name, True, f"sha256 {sha[:16]}…")
    for name in sorted(set(readable) - set(listed) - set(_OWN_FILES)):
        report.add(name, False, "not listed in the manifest (added after export)")
    return contents


def _keys(contents: _Contents, report: VerifyReport) -> dict[str, str]:
    """key id -> PEM of every key file, by the id computed from the key, not its file name."""
    keys: dict[str, str] = {}
    for name, data in sorted(contents.data.items()):
        if not (name.startswith("keys/") and name.endswith(".pem")):
            continue
        named = name[len("keys/") : -len(".pem")]
        pem = data.decode("ascii", "replace")
        try:
            real = key_id_of(pem)
        except ValueError:
            report.add(name, False, "not an Ed25519 public key")
            continue
        if real != named:
            report.add(name, False, f"holds key {real}: its file name names another key ({named})")
        keys[real] = pem
    return keys


# -- signatures and the custody chain -------------------------------------------------------
def _check_signature(
    manifest_bytes: bytes, signature: dict, contents: _Contents, report: VerifyReport
) -> str | None:
    """The PEM of the key that signed the manifest, or None (and a finding)."""
    named = str(signature.get("key_id"))
    data = contents.data.get(f"keys/{named}.pem")
    if data is None:
        report.add("manifest.sig", False, f"names key {named}, which the bundle lacks")
        return None
    pem = data.decode("ascii", "replace")
    if not verify_signature(pem, manifest_bytes, str(signature.get("signature", ""))):
        report.add(
            "manifest.sig",
            False,
            "the manifest's signature does not match (manifest or key altered)",
        )
        return None
    report.key_id, report.fingerprint = key_id_of(pem), fingerprint_of(pem)
    if report.key_id != named:
        report.add(
            "manifest.sig",
            False,
            f"names key {named}, but the key that checks it is {report.key_id}",
        )
    else:
        report.add("manifest.sig", True, f"signed by key {report.key_id}")
    return pem


def _check_chain(
    contents: _Contents, manifest: dict, keys: dict[str, str], report: VerifyReport
) -> list[CustodyEntry]:
    try:
        entries = [
            CustodyEntry.from_json(json.loads(line))
            for line in contents.data.get("custody.jsonl", b"").decode("utf-8").splitlines()
            if line.strip()
        ]
    except (ValueError, KeyError, TypeError) as exc:
        report.add("custody.jsonl", False, f"unreadable custody log ({exc})")
        return []
    problems = verify_chain(entries, keys)
    for problem in problems:
        report.add("custody chain", False, problem.message)
    head = manifest.get("custody_head")
    if head and (not entries or not isinstance(head, dict) or entries[-1].hash != head.get("hash")):
        report.add("custody chain", False, "the log does not end at the head the manifest names")
        return entries
    if not problems:
        withheld = sum(e.redacted for e in entries)
        shown = (
            f" ({withheld} of other captures withheld: header and hash only)" if withheld else ""
        )
        report.add(
            "custody chain", True, f"{len(entries)} entries{shown}, hashes and signatures hold"
        )
    return entries


def _check_collection_hashes(
    contents: _Contents, manifest: dict, entries: list[CustodyEntry], report: VerifyReport
) -> None:
    """Each capture against its custody entry; the captures are exactly those whose
    ``captured`` entries the log carries in full."""
    captured = {e.subject: e for e in entries if e.action == "captured" and not e.redacted}
    listed = manifest.get("captures", [])
    listed = listed if isinstance(listed, list) else []
    for capture_id in listed:
        item = f"capture #{capture_id}"
        entry = captured.pop(f"capture:{capture_id}", None)
        try:
            record = json.loads(contents.data.get(f"captures/{capture_id}/capture.json") or b"{}")
            artifacts = [(a["path"], a["sha256"]) for a in record.get("artifacts", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            report.add(item, False, "its capture.json is unreadable")
            continue
        if entry is None:
            report.add(
                item, False, "its 'captured' entry is missing from the custody log, or withheld"
            )
            continue
        details = entry.details or {}
        found = details.get("artifacts", [])
        at_collection = {a.get("sha256") for a in found if isinstance(a, dict)}
        wrong = [
            path
            for path, sha in artifacts
            if sha not in at_collection or contents.sha256.get(path) != sha
        ]
        report.add(
            item,
            not wrong,
            "files match the hashes taken at collection"
            if not wrong
            else f"differs from the hashes taken at collection: {', '.join(wrong)}",
        )
    for subject in sorted(captured):
        report.add(
            "custody.jsonl",
            False,
            f"carries the entry of {subject.replace(':', ' #')} in full, but the bundle does not "
            "hold that capture (export withholds every other capture's entry)",
        )


# -- web archives ---------------------------------------------------------------------------
# The parts of a WACZ that are parsed; an archive's own manifest is a few KiB.
_MAX_WACZ_JSON = 16 * 1024 * 1024


def _check_wacz_signatures(
    bundle: zipfile.ZipFile,
    readable: dict[str, zipfile.ZipInfo],
    contents: _Contents,
    manifest: dict,
    entries: list[CustodyEntry],
    report: VerifyReport,
) -> None:
    """Each intact WACZ's signature (WACZ Signing and Verification 0.1.0, anonymous form),
    and that its key is one the custody log announced.

    The log's entries are signed by the custody key, which the manifest's signer vouches
    for: a WACZ signed by an announced key is as trusted as the bundle's verdict says. An
    archive made before watcher signed archives carries no signature: said in a note (its
    bytes are still checked against the hashes taken at collection).
    """
    chain_ok = bool(entries) and not any(
        f.item == "custody chain" and not f.ok for f in report.findings
    )
    announced = {
        str(e.details.get("public_key")): e for e in entries if e.action == WACZ_KEY_ANNOUNCED
    }
    unsigned = []
    for path in _wacz_paths(contents, manifest):
        info = readable.get(path)
        if info is None or path not in contents.sha256:
            continue  # missing or altered: already reported
        item = f"{path} (WACZ signature)"
        try:
            signed, problem = _wacz_signature(bundle, info)
        except (
            *_DAMAGED_MEMBER,
            zipfile.LargeZipFile,
            _TooLarge,
            AttributeError,
            TypeError,
        ) as exc:
            report.add(item, False, f"cannot be read as a WACZ ({exc})")
            continue
        if problem:
            report.add(item, False, problem)
            continue
        if signed is None:
            unsigned.append(path)
            continue
        entry = announced.get(str(signed.get("publicKey")))
        key_id = wacz_key_fingerprint(str(signed.get("publicKey")))[:16]
        if entry is None:
            report.add(
                item,
                False,
                f"signed by key {key_id}, which the custody log never announced (not the "
                "team's web archive key)",
            )
        elif not chain_ok:
            report.add(
                item,
                False,
                f"signed by key {key_id}, but the custody log that announces it does not verify",
            )
        else:
            report.add(
                item,
                True,
                f"signed by web archive key {key_id}, announced in custody entry {entry.seq}",
            )
    if unsigned:
        report.notes.append(
            f"{len(unsigned)} web archive(s) carry no WACZ signature (made before watcher "
            "signed archives); their bytes are checked against the hashes taken at collection"
        )


def _wacz_paths(contents: _Contents, manifest: dict) -> list[str]:
    paths = []
    for capture_id in manifest.get("captures", []):
        try:
            record = json.loads(contents.data.get(f"captures/{capture_id}/capture.json") or b"{}")
            paths += [a["path"] for a in record.get("artifacts", []) if a.get("kind") == "wacz"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # reported by the collection hashes check
    return paths


def _wacz_signature(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[dict | None, str]:
    with tempfile.TemporaryFile() as spool:
        with bundle.open(info) as member:
            shutil.copyfileobj(member, spool, _CHUNK)
        spool.seek(0)
        return wacz_signature(spool)


def wacz_signature(wacz_file: BinaryIO) -> tuple[dict | None, str]:
    """(signedData or None, problem) of a WACZ; the problem is "" when there is none.

    Checks as the WACZ signing spec's verification steps: every file against
    ``datapackage.json``, that file against ``datapackage-digest.json``, then the signature
    of that hash with the ``publicKey`` it carries (who owns that key is the caller's
    question). An unsigned, intact WACZ gives (None, ""). Raises the zip and JSON errors of
    a file that is not a WACZ.
    """
    with zipfile.ZipFile(wacz_file) as wacz:
        names = {i.filename: i for i in wacz.infolist()}
        if "datapackage.json" not in names or "datapackage-digest.json" not in names:
            return None, "not a WACZ: no datapackage.json and datapackage-digest.json"
        package_bytes = _read_bounded(wacz, names["datapackage.json"], _MAX_WACZ_JSON)
        digest = json.loads(_read_bounded(wacz, names["datapackage-digest.json"], _MAX_WACZ_JSON))
        package = json.loads(package_bytes)
        package_hash = "sha256:" + sha256(package_bytes).hexdigest()
        if not isinstance(digest, dict) or digest.get("hash") != package_hash:
            return None, "its datapackage.json differs from the hash in datapackage-digest.json"
        for resource in package.get("resources", []):
            inner = names.get(str(resource.get("path")))
            if inner is None:
                return None, f"lacks {resource.get('path')}, which its datapackage lists"
            got = "sha256:" + (_stream_hash(wacz, inner, inner.file_size) or "")
            if got != resource.get("hash"):
                return None, f"its {inner.filename} differs from its datapackage's hash"
    signed = digest.get("signedData")
    if signed is None:
        return None, ""
    if not isinstance(signed, dict) or signed.get("hash") != package_hash:
        return None, "its signedData signs another hash than its datapackage's"
    if signed.get("created") != package.get("created"):
        return None, "its signedData was created at another time than its datapackage"
    problem = verify_wacz_signature(signed)
    return (None, problem) if problem else (signed, "")


def _check_timestamp(
    contents: _Contents, entries: list[CustodyEntry], trust: Trust, report: VerifyReport
) -> None:
    response = contents.data.get("timestamps/head.tsr")
    if response is None:
        if trust.tsa_ca is not None:
            report.notes.append("no trusted timestamp in this bundle (--tsa-ca not used)")
        return  # no TSA configured at export: nothing claimed, nothing to check
    if trust.tsa_ca is None:
        # The CA certificate in the bundle is whatever the bundle's author chose: a forger
        # runs their own authority as easily as their own key.
        report.notes.append(
            "the bundle holds a timestamp, not checked: its authority is trusted only through "
            "--tsa-ca FILE (the CA certificate your timestamp authority publishes)"
        )
        return
    if not entries:
        report.add("trusted timestamp", False, "timestamp present without its custody log")
        return
    try:
        when = verify_timestamp(response, entries[-1].hash, trust.tsa_ca)
    except WatcherError as exc:
        report.add("trusted timestamp", False, f"does not verify: {exc}")
        return
    report.add("trusted timestamp", True, f"custody head existed by {when} (RFC 3161)")


def _check_anchor(
    signer: str | None,
    keys: dict[str, str],
    entries: list[CustodyEntry],
    trust: Trust,
    report: VerifyReport,
) -> None:
    """Whether the manifest's signer is a key the verifier named, or one such a key announced.

    The manifest names the custody head, whose hash covers every entry before it, so a
    trusted signer of the manifest vouches for the whole log. A key the log rotated to is
    trusted when the rotation entry that announces it was signed by a trusted key.
    """
    if signer is None or not trust.anchors:
        return
    trusted = {anchor.fingerprint: anchor.source for anchor in reversed(trust.anchors)}
    known = dict(keys)
    for entry in entries:
        if entry.action != KEY_ROTATED:
            continue
        details = entry.details or {}
        pem, new = known.get(entry.key_id), details.get("new_public_key")
        try:
            sound = (
                pem is not None
                and isinstance(new, str)
                and entry.holds()
                and verify_signature(pem, entry.hash.encode("utf-8"), entry.signature)
                and key_id_of(new) == details.get("new_key_id")
            )
        except ValueError:
            sound = False
        if not sound:
            continue
        known[key_id_of(new)] = new
        announcer = fingerprint_of(pem)
        if announcer in trusted:
            trusted.setdefault(fingerprint_of(new), f"{trusted[announcer]}, then key rotation")
    source = trusted.get(fingerprint_of(signer))
    if source is None:
        report.add(
            "signing key",
            False,
            f"{report.key_id} is not one of the keys you trust ({len(trust.anchors)} named)",
        )
    else:
        report.anchored_by = source
