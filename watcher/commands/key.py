"""``watcher key``: the team's custody signing key, as the team publishes it.

``watcher verify`` trusts a bundle only through a key the reader names from outside the
bundle. This prints what the team hands out for that: the key's full fingerprint (for a
signed letter, the team's website, reading out on the phone) and, with ``--pem``, the public
key file itself. The private key never leaves ``data/keys/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from watcher.app import CUSTODY_KEY_NAME, resolve_data_dir
from watcher.evidence.trust import format_fingerprint
from watcher.store.keys import SigningKey


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher key`` to the command line."""
    key = sub.add_parser(
        "key", parents=[common], help="print the team's signing key fingerprint, to publish"
    )
    key.add_argument("--pem", action="store_true", help="print the public key file (PEM) only")


def cmd_key(args: argparse.Namespace) -> int:
    """Print the key id and fingerprint (or the public PEM) of this data folder's key."""
    data_dir = resolve_data_dir(Path(args.watchlist), args.data)
    key = SigningKey.load(data_dir / "keys" / CUSTODY_KEY_NAME)
    if args.pem:
        print(key.public_pem(), end="")
        return 0
    print(f"custody signing key {key.key_id}")
    print(f"fingerprint: {format_fingerprint(key.fingerprint)}")
    print(
        "Publish this fingerprint where a prosecutor can find it without the bundle (a signed "
        "letter with the evidence, the team's website, read out on the phone). They check a "
        f"bundle with: watcher verify BUNDLE --key {key.fingerprint}"
    )
    return 0


COMMANDS = {"key": cmd_key}
