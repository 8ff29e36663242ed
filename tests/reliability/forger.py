"""What a forger does with a genuine bundle, shared by the forgery and redaction attacks.

Read its members, change them, sign a manifest of the result with some key and write the zip
laid out as ``watcher export`` lays it out (manifest, signature, then the files by name);
and ``watcher verify`` run in this process, as an investigator would run it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from watcher.cli import main as cli_main
from watcher.store.blobs import sha256_hex
from watcher.store.keys import SigningKey

KEY_FILE = Path("keys") / "custody-ed25519.pem"


def verify(*args: object, capsys) -> tuple[int, str]:
    """``watcher verify ARGS``: (exit code, what it printed)."""
    capsys.readouterr()
    code = cli_main(["verify", *map(str, args)])
    return code, capsys.readouterr().out


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def listed(data: bytes) -> dict[str, object]:
    """A file's entry in the manifest's ``files``."""
    return {"sha256": sha256_hex(data), "size": len(data)}


def signed_bundle(
    out: Path, manifest: dict, files: dict[str, bytes], key: SigningKey, key_id: str = ""
) -> Path:
    """``files`` zipped behind ``manifest``, signed with ``key`` under ``key_id`` (the key's
    own id unless the forger names another)."""
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    signature = {"key_id": key_id or key.key_id, "signature": key.sign(manifest_bytes)}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("manifest.json", manifest_bytes)
        dst.writestr("manifest.sig", json.dumps(signature).encode())
        for name, data in sorted(files.items()):
            dst.writestr(name, data)
    return out
