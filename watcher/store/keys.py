"""The Ed25519 key that signs chain-of-custody entries.

The private key is generated on first run and kept outside the evidence folder, readable by
its owner only (mode 0600): anyone who can read it can forge custody entries. The public key
travels with every exported bundle so that a third party can check the signatures; what it
proves depends on the reader comparing its fingerprint with one the team published elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from watcher.errors import WatcherError


class SigningKey:
    """An Ed25519 private key with its short id and full fingerprint (see :func:`key_id_of`)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.key_id = _key_id(private_key.public_key())
        self.fingerprint = _fingerprint(private_key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        """A new key held in memory only (tests, or before :meth:`save`)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key in ``path``, created (mode 0600, folder 0700) when the file does not exist.

        Refuses a key file that group or others can read, like ssh does: such a key may
        already have been copied, and signatures made with it prove nothing.
        """
        if path.exists():
            return cls._load(path)
        key = cls.generate()
        key._save(path)
        return key

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """The existing key in ``path`` (never creates one); same checks as on first use."""
        if not path.exists():
            raise WatcherError(
                f"no custody signing key at {path} yet; watcher creates it at the first "
                "capture (run `watcher check`), or give the right --data folder"
            )
        return cls._load(path)

    @classmethod
    def _load(cls, path: Path) -> SigningKey:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise WatcherError(
                    f"the custody signing key {path} can be read by other users "
                    f"(mode {mode:o}); run `chmod 600 {path}` and check nobody copied it"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise WatcherError(f"cannot read the custody signing key {path}: {exc}") from exc
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise WatcherError(
                f"{path} is not a watcher signing key (an unencrypted Ed25519 PEM key); "
                "restore it from a backup, or move it away to start a new key"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise WatcherError(
                f"{path} holds a key that is not Ed25519; watcher signs with Ed25519"
            )
        return cls(private)

    def _save(self, path: Path) -> None:
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL: never overwrite a key another process has just created; the mode is set
            # at creation so the key is never readable by others, not even for a moment.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise WatcherError(
                f"cannot write the custody signing key {path}: {exc.strerror or exc}; "
                "check the folder is writable"
            ) from exc

    def sign(self, data: bytes) -> str:
        """The Ed25519 signature of ``data``, base64-encoded."""
        return base64.b64encode(self._private.sign(data)).decode("ascii")

    def public_pem(self) -> str:
        """The public key as PEM text (SubjectPublicKeyInfo), for export with bundles."""
        return (
            self._private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def __repr__(self) -> str:
        # Never show key material, even by accident in a log line.
        return f"SigningKey(key_id={self.key_id!r})"


def key_id_of(public_pem: str) -> str:
    """The id of a PEM public key: first 16 hex chars of SHA-256 of its raw bytes.

    A name for people and file names, not an anchor of trust: 64 bits can be ground out
    by a patient forger. Trust is decided on the whole :func:`fingerprint_of`.
    """
    return _key_id(_load_public(public_pem))


def fingerprint_of(public_pem: str) -> str:
    """The fingerprint of a PEM public key: SHA-256 hex (64 chars) of its raw bytes.

    Raises ValueError when ``public_pem`` is not an Ed25519 public key.
    """
    return _fingerprint(_load_public(public_pem))


def public_pem_of_file(data: bytes) -> str:
    """The public key of a PEM file holding an Ed25519 public or private key.

    A team member may point at the data folder's private key file: only its public half is
    used. Raises ValueError for anything else.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a PEM key (or an encrypted one)") from exc
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def verify_signature(public_pem: str, data: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid Ed25519 signature of ``data`` by that key.

    Any malformed input (bad PEM, bad base64) is simply "does not verify".
    """
    try:
        public = _load_public(public_pem)
        signature = base64.b64decode(signature_b64, validate=True)
        public.verify(signature, data)
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


def _load_public(public_pem: str) -> Ed25519PublicKey:
    public = serialization.load_pem_public_key(public_pem.encode("ascii"))
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return public


def _key_id(public: Ed25519PublicKey) -> str:
    return _fingerprint(public)[:16]


def _fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()
