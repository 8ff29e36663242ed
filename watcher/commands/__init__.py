"""Subcommands that live in their own modules (listed in ``watcher.cli.COMMAND_MODULES``), and
what they share: the ``--allow-private-network`` option, and how a command opens the data
folder it works on (the archive alone, or the whole app for one event loop)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from watcher.app import DB_NAME, App, resolve_data_dir
from watcher.errors import WatcherError
from watcher.lock import DataFolderLock
from watcher.store.db import Store
from watcher.watchlist import Watchlist, load_watchlist

T = TypeVar("T")


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


def data_dir_of(args: argparse.Namespace) -> Path:
    """The data folder a command works on: ``--data``, else beside the watchlist."""
    return resolve_data_dir(Path(args.watchlist), args.data)


@contextlib.contextmanager
def open_archive(args: argparse.Namespace) -> Iterator[Store]:
    """The archive alone (no watchlist, browser or keys needed), closed on leaving; a data
    folder without one is refused with how to make one."""
    data_dir = data_dir_of(args)
    if not (data_dir / DB_NAME).is_file():
        raise WatcherError(
            f"no archive in {data_dir} (no {DB_NAME}); give --data or run `watcher check` first"
        )
    store = Store(data_dir / DB_NAME)
    try:
        yield store
    finally:
        store.close()


def run_with_app(
    args: argparse.Namespace,
    work: Callable[[App], Awaitable[T]],
    *,
    lock: bool = False,
    watchlist: Watchlist | None = None,
) -> T:
    """Open the app on the command's watchlist and data folder, ``await work(app)`` and close
    the app, all in one event loop (the browser and its tasks belong to the loop that started
    them). ``lock``: hold the data folder as ``watcher run`` does, for a command that must
    not run beside it; ``watchlist``: already read by the command (to check its arguments
    before anything is opened)."""
    watchlist = watchlist or load_watchlist(args.watchlist)
    data_dir = data_dir_of(args)

    async def run() -> T:
        app = App.open(watchlist, data_dir)
        try:
            return await work(app)
        finally:
            await app.close()

    with DataFolderLock(data_dir) if lock else contextlib.nullcontext():
        return asyncio.run(run())
