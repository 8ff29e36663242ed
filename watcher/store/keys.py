"""The Ed25519 key that signs chain-of-custody entries, and the ECDSA key that signs WACZs.

The private key is generated on first run and kept outside the evidence folder, readable by
its owner only (mode 0600): anyone who can read it can forge custody entries. The public key
travels with every exported bundle so that a third party can check the signatures; what it
proves depends on the reader comparing its fingerprint with one the team published elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from watcher.errors import WatcherError
from watcher.privatefile import read_private, write_private


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
        private = _read_private_key(path, "the custody signing key")
        if not isinstance(private, Ed25519PrivateKey):
            raise WatcherError(
                f"{path} holds a key that is not Ed25519; watcher signs with Ed25519"
            )
        return cls(private)

    def _save(self, path: Path) -> None:
        _write_private_key(path, self._private, "the custody signing key")

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


class WaczSigningKey:
    """The ECDSA P-384 key that signs each capture's web archive (WACZ), as the WACZ Signing
    and Verification spec's anonymous form has it (wacz-auth 0.1.0).

    The spec names no curve; ReplayWeb.page (wabac.js) imports an anonymous ``publicKey`` as
    P-384 and checks an IEEE P1363 (r || s) signature of the ``hash`` string with SHA-256, as
    ArchiveWeb.page signs: that is what is made here, so the player shows our archives as
    signed. Signatures are deterministic (RFC 6979): the same archive gives the same bytes.
    Kept like the custody key (``data/keys/``, 0600); announced in the custody log, which is
    what vouches for it.
    """

    CURVE = ec.SECP384R1()
    ALGORITHM = "ECDSA P-384 with SHA-256, IEEE P1363 signature"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private = private_key
        self.public_key_b64 = wacz_public_key_b64(private_key.public_key())
        self.fingerprint = _wacz_fingerprint(self.public_key_b64)
        self.key_id = self.fingerprint[:16]

    @classmethod
    def generate(cls) -> WaczSigningKey:
        """A new key held in memory only (tests, or before it is saved)."""
        return cls(ec.generate_private_key(cls.CURVE))

    @classmethod
    def load_or_create(cls, path: Path) -> tuple[WaczSigningKey, bool]:
        """The key in ``path``, created (0600) when missing; and whether it was just created."""
        if path.exists():
            private = _read_private_key(path, "the web archive signing key")
            if not (
                isinstance(private, ec.EllipticCurvePrivateKey)
                and private.curve.name == cls.CURVE.name
            ):
                raise WatcherError(
                    f"{path} holds a key that is not ECDSA P-384; watcher signs web archives "
                    "with P-384: move it away to start a new key"
                )
            return cls(private), False
        key = cls.generate()
        _write_private_key(path, key._private, "the web archive signing key")
        return key, True

    def signed_data(self, digest: str, created: str, software: str) -> dict[str, str]:
        """The ``signedData`` of ``datapackage-digest.json`` for a datapackage ``digest``."""
        der = self._private.sign(
            digest.encode("utf-8"), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        )
        r, s = decode_dss_signature(der)
        size = (self.CURVE.key_size + 7) // 8
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return {
            "hash": digest,
            "created": created,
            "software": software,
            "version": "0.1.0",  # of the WACZ signing spec
            "signature": base64.b64encode(raw).decode("ascii"),
            "publicKey": self.public_key_b64,
        }

    def __repr__(self) -> str:
        return f"WaczSigningKey(key_id={self.key_id!r})"


def wacz_public_key_b64(public: ec.EllipticCurvePublicKey) -> str:
    """A public key as WACZ ``publicKey`` holds it: base64 of its DER SubjectPublicKeyInfo."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def _wacz_fingerprint(public_key_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest()


def verify_wacz_signature(signed_data: dict[str, object]) -> str | None:
    """What is wrong with a WACZ's anonymous ``signedData`` signature; None when it holds.

    Checks the ``signature`` of ``hash`` with ``publicKey`` (P-384, SHA-256, r || s as
    written by :class:`WaczSigningKey` and ArchiveWeb.page; a DER signature is read too).
    """
    try:
        digest = str(signed_data["hash"])
        public = serialization.load_der_public_key(base64.b64decode(str(signed_data["publicKey"])))
        signature = base64.b64decode(str(signed_data["signature"]), validate=True)
    except (KeyError, ValueError, TypeError, binascii.Error):
        return "its signedData lacks a readable hash, publicKey or signature"
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return "its publicKey is not an ECDSA key"
    size = (public.curve.key_size + 7) // 8
    if len(signature) == 2 * size:
        signature = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
    try:
        public.verify(signature, digest.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return "its signature does not verify with the publicKey it names (archive altered?)"
    return None


def wacz_key_fingerprint(public_key_b64: str) -> str:
    """The fingerprint of a WACZ ``publicKey``: SHA-256 hex of its DER bytes."""
    return _wacz_fingerprint(public_key_b64)


def _read_private_key(path: Path, what: str) -> object:
    """The unencrypted PEM private key in ``path``, refused when others can read it.

    Like ssh: a key that group or others can read may already have been copied, and
    signatures made with it prove nothing.
    """
    # A link is followed: the keys folder may point at a safer volume.
    data = read_private(
        path,
        what,
        "signatures made with a copy of it prove nothing",
        "check nobody copied it",
        follow_links=True,
    )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise WatcherError(
            f"{path} is not a watcher signing key (an unencrypted PEM key); "
            "restore it from a backup, or move it away to start a new key"
        ) from exc


def _write_private_key(path: Path, private: object, what: str) -> None:
    pem = private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise WatcherError(
            f"cannot make the folder {path.parent} for the {what} ({exc.strerror}); "
            "check the data folder is writable"
        ) from exc
    # overwrite=False: never replace a key another process has just created.
    write_private(path, pem, what, overwrite=False)


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
