"""RFC 3161 trusted timestamps of the custody chain's head.

A timestamp from an independent authority (TSA) proves the chain head, and so every entry
before it, existed at that time: it pins the log against being rewritten later, even by
someone holding the signing key. The ASN.1 work is left to the ``openssl`` program, which
is widely installed and widely trusted by reviewers, rather than to our own encoder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from watcher.errors import WatcherError
from watcher.timeutil import to_iso

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_OPENSSL_TIMEOUT = 30.0
# Bound what we read from a TSA: a real response is a few kilobytes.
_MAX_RESPONSE = 1 << 20


def request_timestamp(digest_hex: str, tsa_url: str, timeout: float = 10) -> bytes:
    """Ask the TSA at ``tsa_url`` to timestamp a SHA-256 digest; returns the DER response.

    The request carries a nonce and asks for the TSA's certificate, so the response can be
    verified later with the CA certificate alone. Raises WatcherError when the TSA cannot
    be reached or does not grant the timestamp.
    """
    query = _openssl(
        ["ts", "-query", "-digest", _checked_digest(digest_hex), "-sha256", "-cert"],
        what="build the timestamp request",
    )
    response = _post(query, tsa_url, timeout)
    status = _reply_text(response, f"the answer from {tsa_url}")
    if not re.search(r"^Status: Granted", status, re.MULTILINE):
        reason = _status_line(status)
        raise WatcherError(f"the timestamp authority {tsa_url} refused the request ({reason})")
    return response


def verify_timestamp(response_der: bytes, digest_hex: str, ca_cert_pem_path: Path) -> str:
    """Check a timestamp response covers ``digest_hex`` and chains to the CA; returns genTime.

    genTime is returned as watcher's UTC ISO form. Raises WatcherError when the response
    does not verify (other digest, other authority, damaged response).
    """
    digest = _checked_digest(digest_hex)
    with tempfile.TemporaryDirectory(prefix="watcher-ts-") as tmp:
        response_path = Path(tmp) / "response.tsr"
        response_path.write_bytes(response_der)
        result = _run_openssl(
            [
                "ts",
                "-verify",
                "-digest",
                digest,
                "-in",
                str(response_path),
                "-CAfile",
                str(ca_cert_pem_path),
            ]
        )
    if result.returncode != 0:
        detail = _first_error(result.stderr)
        raise WatcherError(
            f"the trusted timestamp does not verify against {ca_cert_pem_path}: {detail}. "
            "Either the log head it covers was changed, or it was issued by another authority"
        )
    return timestamp_gen_time(response_der)


def timestamp_gen_time(response_der: bytes) -> str:
    """The time a timestamp response states (genTime), as UTC ISO, without verifying it."""
    text = _reply_text(response_der, "the stored response")
    match = re.search(r"^Time stamp: (.+)$", text, re.MULTILINE)
    if not match:
        raise WatcherError("the timestamp response holds no time; it is damaged or was refused")
    return _parse_openssl_time(match.group(1).strip())


def _checked_digest(digest_hex: str) -> str:
    digest = digest_hex.lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise WatcherError(f"{digest_hex!r} is not a SHA-256 digest (64 hex characters)")
    return digest


def _post(query: bytes, tsa_url: str, timeout: float) -> bytes:
    if not tsa_url.startswith(("http://", "https://")):
        raise WatcherError(f"the timestamp authority URL {tsa_url!r} must start with http(s)://")
    request = urllib.request.Request(
        tsa_url,
        data=query,
        method="POST",
        headers={"Content-Type": "application/timestamp-query"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read(_MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        raise WatcherError(
            f"the timestamp authority {tsa_url} refused the request (HTTP {exc.code}); "
            "check the URL in the configuration"
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WatcherError(
            f"cannot reach the timestamp authority {tsa_url} ({reason}); "
            "check the network and the URL, the log itself is unaffected"
        ) from exc
    if len(body) > _MAX_RESPONSE:
        raise WatcherError(f"the timestamp authority {tsa_url} sent an oversized response")
    return body


def _reply_text(response_der: bytes, source: str) -> str:
    """``openssl ts -reply -text`` of a response: its status and, when granted, its fields."""
    with tempfile.TemporaryDirectory(prefix="watcher-ts-") as tmp:
        response_path = Path(tmp) / "response.tsr"
        response_path.write_bytes(response_der)
        result = _run_openssl(["ts", "-reply", "-in", str(response_path), "-text"])
    if result.returncode != 0:
        raise WatcherError(
            f"{source} is not a timestamp response ({_first_error(result.stderr)}); "
            "check the URL points at an RFC 3161 timestamp authority"
        )
    return result.stdout.decode("utf-8", "replace")


def _status_line(text: str) -> str:
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.startswith(("Status", "Failure info")) and "unspecified" not in line
    ]
    return "; ".join(lines) or "no status given"


def _parse_openssl_time(text: str) -> str:
    # openssl prints e.g. "May  4 10:20:30 2026 GMT" or, with accuracy digits,
    # "May  4 10:20:30.123 2026 GMT".
    cleaned = re.sub(r"\s+", " ", text.replace(" GMT", ""))
    cleaned = re.sub(r"(\d{2}:\d{2}:\d{2})\.(\d+)", lambda m: f"{m[1]}.{m[2][:6]:0<6}", cleaned)
    for form in ("%b %d %H:%M:%S.%f %Y", "%b %d %H:%M:%S %Y"):
        try:
            return to_iso(datetime.strptime(cleaned, form).replace(tzinfo=UTC))
        except ValueError:
            continue
    raise WatcherError(f"cannot read the timestamp's time {text!r}")


def _openssl(args: list[str], what: str) -> bytes:
    result = _run_openssl(args)
    if result.returncode != 0:
        raise WatcherError(f"openssl could not {what}: {_first_error(result.stderr)}")
    return result.stdout


def _run_openssl(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("openssl")
    if binary is None:
        raise WatcherError(
            "trusted timestamps need the openssl program; install it (e.g. apt install openssl)"
        )
    try:
        return subprocess.run(
            [binary, *args], capture_output=True, timeout=_OPENSSL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WatcherError(f"running openssl failed: {exc}") from exc


def _first_error(stderr: bytes) -> str:
    """openssl's first real complaint, shortened to its reason text."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("Using configuration from"):
            continue
        # "40E7...:error:17800067:time stamp routines:func:message imprint mismatch:file:line:"
        parts = line.split(":")
        if len(parts) > 5 and parts[1] == "error":
            return parts[5]
        return line
    return "no detail given"
