"""The ``watcher`` command line. Errors print as one plain message (a traceback with --debug)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from watcher import __version__
from watcher.alert.console import format_summary
from watcher.app import App, resolve_data_dir
from watcher.errors import WatcherError, WatchlistError
from watcher.models import CaptureSummary
from watcher.pipeline import run_capture
from watcher.watchlist import Watchlist, load_watchlist

log = logging.getLogger("watcher")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--watchlist", default="watchlist.yaml", help="watchlist file (default ./watchlist.yaml)"
    )
    common.add_argument(
        "--data", default=None, help="data folder (default: WATCHER_DATA or data/ by the watchlist)"
    )
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")

    parser = argparse.ArgumentParser(prog="watcher", parents=[common], description=__doc__)
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("validate", parents=[common], help="check the watchlist and list every problem")
    check = sub.add_parser("check", parents=[common], help="capture targets once and show changes")
    check.add_argument("names", nargs="*", metavar="NAME", help="targets (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON object per event")
    sub.add_parser("status", parents=[common], help="targets with their last capture")
    demo = sub.add_parser("demo", parents=[common], help="watch the bundled demo site")
    demo.add_argument("--seconds", type=float, default=60.0, help="how long to watch (default 60)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except WatcherError as exc:
        if args.debug:
            raise
        print(f"watcher: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_validate(args: argparse.Namespace) -> int:
    """``watcher validate``: exit 1 and list every problem, or say the file is fine."""
    try:
        watchlist = load_watchlist(args.watchlist)
    except WatchlistError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.watchlist}: ok, {len(watchlist.targets)} target(s)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``watcher check``: capture the named targets once and report what changed."""
    watchlist = load_watchlist(args.watchlist)
    targets = watchlist.select(args.names)
    summaries = asyncio.run(_check(watchlist, _data_dir(args), targets))
    for summary in summaries:
        if args.json:
            for event in summary.events:
                print(event.to_json_line())
        else:
            print(format_summary(summary))
    return 0 if all(s.status == "ok" for s in summaries) else 2


async def _check(watchlist: Watchlist, data_dir: Path, targets) -> list[CaptureSummary]:
    app = App.open(watchlist, data_dir)
    try:
        return list(await asyncio.gather(*(run_capture(app, t) for t in targets)))
    finally:
        await app.close()


def cmd_status(args: argparse.Namespace) -> int:
    """``watcher status``: one line per target."""
    watchlist = load_watchlist(args.watchlist)
    from watcher.store.db import Store

    data_dir = _data_dir(args)
    store = Store(data_dir / "watcher.db")
    try:
        print(f"{'TARGET':24} {'PLATFORM':9} {'LAST CAPTURE':25} {'OUTCOME':10} POSTS (deleted)")
        for target in watchlist.targets:
            st = store.target_status(target.name, target.platform)
            outcome = st.last_status or "never"
            if st.failure_streak:
                outcome = f"{outcome} x{st.failure_streak} ({st.last_reason})"
            print(
                f"{st.name:24} {st.platform:9} {st.last_capture_at or '-':25} {outcome:10} "
                f"{st.live_posts} ({st.deleted_posts})"
            )
    finally:
        store.close()
    print(f"data: {data_dir}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``watcher demo``: run the bundled demo site and watch it, printing alerts."""
    from watcher.demo.runner import run_demo

    return asyncio.run(run_demo(args))


def _data_dir(args: argparse.Namespace) -> Path:
    return resolve_data_dir(Path(args.watchlist), args.data)


COMMANDS = {
    "validate": cmd_validate,
    "check": cmd_check,
    "status": cmd_status,
    "demo": cmd_demo,
}

if __name__ == "__main__":
    sys.exit(main())
