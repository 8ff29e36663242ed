"""Subcommands that live in their own modules (listed in ``watcher.cli.COMMAND_MODULES``)."""

from __future__ import annotations

import argparse


def add_private_network_option(parser: argparse.ArgumentParser, default: bool | None) -> None:
    """``--allow-private-network``, worded alike wherever a command opens a page itself;
    ``default`` None: not given keeps what the watchlist's target says."""
    parser.add_argument(
        "--allow-private-network",
        action="store_true",
        default=default,
        help="let the page reach this machine or the local network (a page on your own "
        "test server); refused by default, like a target without allow_private_network",
    )
