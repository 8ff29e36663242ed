"""What ``watcher verify`` trusts: keys and a timestamp authority named from outside the bundle.

A bundle carries its own public key and TSA certificate, but anyone who alters a bundle can
replace those too: a key is only worth something when its fingerprint matches one the team
published through another channel (a signed letter, the team's website, read out on the
phone). The anchors come from ``--key`` (a key file or a fingerprint, repeatable) and from
``WATCHER_TRUSTED_KEYS`` (the same, separated by ``:`` or ``,``); the timestamp authority's
CA certificate from ``--tsa-ca``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import WatcherError
from watcher.store.keys import fingerprint_of, public_pem_of_file

TRUSTED_KEYS_ENV = "WATCHER_TRUSTED_KEYS"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Spaces and dashes a person may type when copying a fingerprint read out in groups.
_SEPARATORS = re.compile(r"[\s\-]+")
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Anchor:
    """One trusted key: its full fingerprint and where the user named it."""

    fingerprint: str
    source: str


@dataclass(frozen=True, slots=True)
class Trust:
    """Everything a verification may rely on that does not come from the bundle."""

    anchors: tuple[Anchor, ...] = ()
    tsa_ca: Path | None = None

    @classmethod
    def of(cls, *fingerprints: str, tsa_ca: Path | None = None, source: str = "given") -> Trust:
        """Trust in the keys with these fingerprints (for callers that hold them already)."""
        return cls(tuple(Anchor(fp, source) for fp in fingerprints), tsa_ca)

    @property
    def fingerprints(self) -> frozenset[str]:
        """The trusted keys' fingerprints."""
        return frozenset(a.fingerprint for a in self.anchors)

    def source_of(self, fingerprint: str) -> str | None:
        """Where the key with this fingerprint was named as trusted; None when it was not."""
        return next((a.source for a in self.anchors if a.fingerprint == fingerprint), None)


def gather_trust(
    keys: Iterable[str] = (),
    tsa_ca: str | None = None,
    environ: dict[str, str] | None = None,
) -> Trust:
    """Anchors from ``--key`` values and ``WATCHER_TRUSTED_KEYS``; the ``--tsa-ca`` file.

    Raises WatcherError naming any entry that is neither a key file nor a fingerprint.
    """
    env = os.environ if environ is None else environ
    anchors = [read_anchor(spec, f"--key {spec}") for spec in keys]
    for spec in re.split(r"[:,]", env.get(TRUSTED_KEYS_ENV, "")):
        if spec.strip():
            anchors.append(read_anchor(spec.strip(), TRUSTED_KEYS_ENV))
    ca = None
    if tsa_ca is not None:
        ca = Path(tsa_ca).expanduser()
        if not ca.is_file():
            raise WatcherError(
                f"--tsa-ca {tsa_ca}: no such file; give the CA certificate (PEM) your "
                "timestamp authority publishes"
            )
    return Trust(tuple(anchors), ca)


def read_anchor(spec: str, source: str) -> Anchor:
    """A trusted key from a PEM key file (public or private) or a 64-hex fingerprint."""
    path = Path(spec).expanduser()
    if path.is_file():
        return Anchor(_fingerprint_in_file(path, source), source)
    fingerprint = parse_fingerprint(spec)
    if fingerprint is None:
        raise WatcherError(_not_an_anchor(spec, source))
    return Anchor(fingerprint, source)


def parse_fingerprint(text: str) -> str | None:
    """The 64-hex fingerprint ``text`` spells (spaces and dashes allowed); None otherwise."""
    cleaned = _SEPARATORS.sub("", text).lower()
    return cleaned if _HEX64.fullmatch(cleaned) else None


def format_fingerprint(fingerprint: str) -> str:
    """A fingerprint in groups of four, easier to read out and compare by eye."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def _fingerprint_in_file(path: Path, source: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise WatcherError(f"{source}: cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) <= _MAX_KEY_FILE:
        try:
            return fingerprint_of(public_pem_of_file(data))
        except ValueError:
            # A text file holding the published fingerprint is as good as the key.
            written = parse_fingerprint(data.decode("ascii", "replace"))
            if written is not None:
                return written
    raise WatcherError(
        f"{source}: {path} holds neither an Ed25519 key (PEM) nor a key fingerprint; give the "
        "team's public key file or its fingerprint (printed by `watcher key`)"
    )


def _not_an_anchor(spec: str, source: str) -> str:
    cleaned = _SEPARATORS.sub("", spec).lower()
    if re.fullmatch(r"[0-9a-f]{16}", cleaned):
        return (
            f"{source}: {spec!r} is a short key id, which a forger can match; give the full "
            "64-character fingerprint (printed by `watcher key`) or the key file"
        )
    return (
        f"{source}: {spec!r} is neither a key file nor a key fingerprint (64 hex characters); "
        "give the team's public key file or the fingerprint printed by `watcher key`"
    )
