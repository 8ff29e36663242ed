"""The watcher command line. Errors print as one plain message (a traceback with --debug)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from watcher import __version__
from watcher.alert.console import format_summary
from watcher.app import App
from watcher.capture.pool import configured_endpoints
from watcher.capture.pool import read_state as read_browser_state
from watcher.commands import (
    data_dir_of,
    dealers,
    detect,
    key,
    ocr,
    open_archive,
    probe,
    run_with_app,
    session,
)
from watcher.errors import WatcherError, WatchlistError
from watcher.kinds import CaptureFailed
from watcher.models import CaptureStatus, Event, EventKind
from watcher.pipeline import run_capture
from watcher.scheduler import read_schedule_file
from watcher.steps.record import STORE_BUG
from watcher.store.check_modes import BROWSER, check_mode
from watcher.store.db import OutboxRow, Store
from watcher.timeutil import format_duration, parse_iso, to_iso
from watcher.watchlist import Watchlist, address_of, check_watchlist, load_watchlist

log = logging.getLogger("watcher")


def common_options(*, defaults: bool) -> argparse.ArgumentParser:
    """--watchlist, --data and --debug, as a parent parser.

    The top-level parser takes them with their defaults; every subcommand takes a copy whose
    defaults are SUPPRESS. argparse copies a subparser's whole namespace over the top level's,
    so a subcommand copy with real defaults would reset `watcher --data DIR status` to the
    default folder; with SUPPRESS it only writes what was typed after the command.
    """

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--watchlist",
        default=default("watchlist.yaml"),
        help="watchlist file (default ./watchlist.yaml)",
    )
    common.add_argument(
        "--data",
        default=default(None),
        help="data folder (default: WATCHER_DATA or data/ by the watchlist)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and debug logs",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand; the common options go before or after it."""
    parser = argparse.ArgumentParser(
        prog="watcher", parents=[common_options(defaults=True)], description=__doc__
    )
    # Passed to every subcommand, COMMAND_MODULES' too (their `add_commands(sub, common)`).
    common = common_options(defaults=False)
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("validate", parents=[common], help="check the watchlist and list every problem")
    check = sub.add_parser("check", parents=[common], help="capture targets once and show changes")
    check.add_argument("names", nargs="*", metavar="NAME", help="targets (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON object per event")
    check.add_argument(
        "--full", action="store_true", help="full captures, even where a light check is due"
    )
    sub.add_parser("status", parents=[common], help="targets with their last capture")
    run = sub.add_parser(
        "run", parents=[common], help="watch every target until stopped (the daemon)"
    )
    run.add_argument(
        "--quiet", action="store_true", help="print only the alerts, not a line per capture"
    )
    alerts = sub.add_parser("alerts", parents=[common], help="recent events and their delivery")
    alerts.add_argument(
        "--limit", type=_not_negative, default=20, help="how many events (default 20)"
    )
    export = sub.add_parser("export", parents=[common], help="build an evidence bundle (zip)")
    export.add_argument("--target", help="one target's captures")
    export.add_argument("--tag", help="captures of every target with this tag (a case tag)")
    export.add_argument(
        "--dealer", help="a dealer's dossier: the captures of its accounts (watcher dealers)"
    )
    export.add_argument("--post", dest="post_id", help="captures that saw this post id")
    export.add_argument("--capture", dest="capture_id", type=int, help="one capture by number")
    export.add_argument("--since", help="from this UTC time, e.g. 2026-11-01T00:00:00Z")
    export.add_argument("--until", help="up to this UTC time")
    export.add_argument(
        "--all", action="store_true", help="every capture in the archive (can be very large)"
    )
    export.add_argument("--out", default=".", help="folder for the bundle (default: here)")
    export.add_argument(
        "--max-mb", type=int, default=1900, help="split bundles larger than this (default 1900)"
    )
    verify = sub.add_parser(
        "verify", parents=[common], help="check an evidence bundle, byte by byte"
    )
    verify.add_argument("bundles", nargs="+", metavar="BUNDLE")
    verify.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="FILE|FINGERPRINT",
        help="a key you trust (the team's published key file or fingerprint); repeatable. "
        "Also read from WATCHER_TRUSTED_KEYS (separated by : or ,)",
    )
    verify.add_argument(
        "--tsa-ca",
        metavar="FILE",
        help="CA certificate of the timestamp authority you trust (not the bundle's copy)",
    )
    demo = sub.add_parser("demo", parents=[common], help="watch the bundled demo site")
    demo.add_argument("--seconds", type=float, default=60.0, help="how long to watch (default 60)")
    demo.add_argument(
        "--port", type=_port, default=None, help="the demo site's port (default 8765)"
    )
    demo.add_argument(
        "--site-only",
        action="store_true",
        help="only serve the demo site until Ctrl-C, to try check, run and probe against it",
    )
    for module in command_modules():
        module.add_commands(sub, common)
    _add_help_texts(parser, sub)
    return parser


# `watcher --help` and `watcher COMMAND --help`: what it is for in one line, then an example
# to copy. Investigators read these, so plain words only (no reST from the docstrings).
# Commands in watcher/commands/ give theirs where they add their parser.
HELP_TEXTS: dict[str, tuple[str, str]] = {
    "watcher": (
        "Watch the accounts in your watchlist, alert on changes, keep evidence of each.",
        "Examples:\n"
        "  watcher validate                       check watchlist.yaml\n"
        "  watcher check                          capture every target once\n"
        "  watcher run                            watch until stopped\n"
        "  watcher export --target ivory-dealer-kh\n"
        "\n"
        "Every command has its own help: watcher COMMAND --help",
    ),
    "validate": (
        "Check the watchlist and list every problem with its line and how to fix it.",
        "Example:\n  watcher validate --watchlist cases/watchlist.yaml",
    ),
    "check": (
        "Capture the named targets (all when none are named) once, store and compare.",
        "Examples:\n  watcher check\n  watcher check ivory-dealer-kh --json",
    ),
    "status": (
        "Each target's last capture, outcome and posts, and alerts waiting to be sent.",
        "Example:\n  watcher status",
    ),
    "run": (
        "Watch every target on its schedule and alert the team, until stopped (Ctrl-C).",
        "Example:\n  watcher run --watchlist /etc/watcher/watchlist.yaml",
    ),
    "alerts": (
        "Recent events (and why a capture failed) with their delivery to each chat.",
        "Examples:\n  watcher alerts\n  watcher alerts --limit 100",
    ),
    "export": (
        "Build a signed evidence bundle (zip) of the chosen captures for a case file.",
        "Examples:\n"
        "  watcher export --target ivory-dealer-kh --since 2026-11-01T00:00:00Z\n"
        "  watcher export --tag case-17 --out /media/usb\n"
        "  watcher export --dealer ivory-kh-3f9a   one dealer's dossier (watcher dealers)\n"
        "  watcher export --all                  every capture (can be very large)",
    ),
    "verify": (
        "Check an evidence bundle byte by byte: hashes, signature, custody chain.",
        "Example:\n  watcher verify watcher-evidence-ivory-dealer-kh-20261101T120000Z.zip "
        "--key team-key.pem",
    ),
    "key": (
        "Print this team's signing key id and fingerprint, to publish for bundle readers.",
        "Examples:\n  watcher key\n  watcher key --pem > team-key.pem",
    ),
    "demo": (
        "Watch the bundled demo site for a while and print its alerts.",
        "Example:\n  watcher demo --seconds 30",
    ),
}


def _add_help_texts(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    for name, target in (("watcher", parser), *sub.choices.items()):
        if name in HELP_TEXTS:
            target.description, target.epilog = HELP_TEXTS[name]
            # Keeps the examples' line breaks (the default formatter would join them).
            target.formatter_class = argparse.RawDescriptionHelpFormatter


# Commands that live beside their subject: each module has `add_commands(sub, common)`
# (adds its subparsers) and `COMMANDS` (name -> handler), like the built-ins below.
COMMAND_MODULES: tuple[ModuleType, ...] = (session, detect, probe, key, dealers, ocr)


def command_modules() -> list[ModuleType]:
    """The modules that contribute subcommands."""
    return list(COMMAND_MODULES)


def handler_for(command: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs ``command``."""
    if command in COMMANDS:
        return COMMANDS[command]
    for module in command_modules():
        if command in module.COMMANDS:
            return module.COMMANDS[command]
    raise KeyError(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        # "skipped: maximum number of running instances" is the coalescing we asked for.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
    handler = handler_for(args.command)
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
        checked = check_watchlist(args.watchlist)
    except WatchlistError as exc:
        print(exc, file=sys.stderr)
        return 1
    # Warnings do not fail the check: the file works, but probably not as meant.
    warned = f", {len(checked.warnings)} warning(s)" if checked.warnings else ""
    print(f"{args.watchlist}: ok, {len(checked.watchlist.targets)} target(s){warned}")
    for warning in checked.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``watcher check``: capture the named targets once and report what changed."""
    watchlist = load_watchlist(args.watchlist)
    targets = watchlist.select(args.names)
    summaries = run_with_app(
        args,
        lambda app: asyncio.gather(*(run_capture(app, t, args.full) for t in targets)),
        watchlist=watchlist,
    )
    for summary in summaries:
        if args.json:
            for event in summary.events:
                print(event.to_json_line())
        else:
            print(format_summary(summary))
    return 0 if all(s.status == CaptureStatus.OK for s in summaries) else 2


def cmd_status(args: argparse.Namespace) -> int:
    """``watcher status``: one line per target."""
    watchlist = load_watchlist(args.watchlist)
    data_dir = data_dir_of(args)
    store = Store(data_dir / "watcher.db")
    # Written by a running `watcher run`; absent when no daemon is running.
    schedule = read_schedule_file(data_dir)
    try:
        header = f"{'TARGET':24} {'PLATFORM':9} {'LAST CAPTURE':25} {'OUTCOME':10} POSTS (deleted)"
        if schedule:
            header += f"  {'NEXT RUN':25} INTERVAL"
        print(header)
        for target in watchlist.targets:
            st = store.target_status(target.name, target.platform)
            outcome = st.last_status or "never"
            if st.failure_streak:
                outcome = f"{outcome} x{st.failure_streak} ({st.last_reason})"
            line = (
                f"{st.name:24} {st.platform:9} {st.last_capture_at or '-':25} {outcome:10} "
                f"{st.live_posts} ({st.deleted_posts})"
            )
            if schedule:
                line = f"{line:<87}  {_schedule_columns(schedule.get(target.name))}"
            if st.failure_streak and st.last_reason == STORE_BUG:
                # A target the store refuses is blind: it must not read like a flaky site.
                line = (
                    _red(line)
                    + "\n"
                    + _red(
                        f"  {st.name}: watcher cannot store its captures (a bug, not the site); "
                        f"report it with the output of 'watcher check {st.name} --debug'"
                    )
                )
            marked = check_mode(store, target.name)
            if target.full_every and marked is not None and marked.mode == BROWSER:
                # Checks that need the browser cost ~10x the CPU: say which, and why.
                line += f"\n  {st.name}: light checks need the browser, since {marked.decided_at}: "
                line += marked.reason
            print(line)
        _print_alert_backlog(store)
        _print_browsers(watchlist, data_dir)
    finally:
        store.close()
    print(f"data: {data_dir}")
    return 0


def _print_browsers(watchlist: Watchlist, data_dir: Path) -> None:
    """The remote browser hosts: slots in use, up or down, the last error (nothing is
    printed when captures use the local browser)."""
    endpoints = configured_endpoints(watchlist)
    if not endpoints:
        return
    state = read_browser_state(data_dir)
    rows = {row.get("name"): row for row in state.get("endpoints", [])}
    when = state.get("updated_at", "-")
    note = "" if state.get("running") else f" (watcher run is not running; as it left them, {when})"
    print(f"browsers: {len(endpoints)}{note}")
    for endpoint in endpoints:
        row = rows.get(endpoint.label(), {})
        # Slots in use are only true while the watcher that wrote them runs.
        live = bool(state.get("running"))
        used = f"{row.get('in_use', 0) if live else '-'}/{endpoint.slots}"
        checks = (
            f"{row.get('checks_in_use', 0) if live else '-'}/"
            f"{row.get('check_slots', endpoint.slots * 2)}"
        )
        health = row.get("state", "not used yet")
        if health == "down" and row.get("retry_in_s") and live:
            health = f"down, tried again in {row['retry_in_s']} s"
        line = (
            f"  {endpoint.label():24} {endpoint.protocol():10} {address_of(endpoint.url):22} "
            f"slots {used:6} checks {checks:6} {health}"
        )
        if row.get("captures") or row.get("lost"):
            line += f"; {row.get('captures', 0)} captures, {row.get('lost', 0)} lost mid-capture"
        if row.get("version"):
            line += f"; Chromium {row['version']}"
        print(_red(line) if row.get("state") == "down" else line)
        if row.get("last_error"):
            print(f"    last error ({row.get('last_error_at') or '-'}): {row['last_error']}")


def _red(text: str) -> str:
    # Colour only for a terminal (or FORCE_COLOR), never when NO_COLOR is set.
    wanted = sys.stdout.isatty() or bool(os.environ.get("FORCE_COLOR"))
    return f"\033[31m{text}\033[0m" if wanted and not os.environ.get("NO_COLOR") else text


def _print_alert_backlog(store: Store) -> None:
    backlog = store.outbox_backlog()
    print(
        f"alerts: {backlog.get('pending', 0)} waiting to be sent, "
        f"{backlog.get('failed', 0)} failed for good"
    )
    for row in store.outbox_failures()[:5]:
        print(f"  not delivered to chat {row.chat_id}: {row.last_error}")


def _schedule_columns(entry: dict[str, Any] | None) -> str:
    if not entry:
        return f"{'-':25} -"
    interval = entry.get("interval")
    every = format_duration(float(interval)) if isinstance(interval, int | float) else "-"
    return f"{entry.get('next_run_at') or '-':25} {every}"


def cmd_run(args: argparse.Namespace) -> int:
    """``watcher run``: the always-on daemon; SIGTERM or Ctrl-C stops it cleanly."""
    from watcher.daemon import run_daemon
    from watcher.malloc import keep_big_buffers_out_of_the_heap

    keep_big_buffers_out_of_the_heap()
    return asyncio.run(run_daemon(Path(args.watchlist), data_dir_of(args), quiet=args.quiet))


def cmd_alerts(args: argparse.Namespace) -> int:
    """``watcher alerts``: the most recent events, oldest first, with their delivery per chat."""
    store = Store(data_dir_of(args) / "watcher.db")
    try:
        events = _recent_events(store, args.limit) if args.limit else []
        if not events:
            print("no events yet" if args.limit else "no events shown (--limit 0)")
        for event in events:
            post = f" post {event.post_id}" if event.post_id else ""
            print(f"#{event.id} {event.created_at or '-'} {event.kind} {event.target}{post}")
            if event.kind == EventKind.CAPTURE_FAILED:
                print(f"    why: {_failure_reason(store, event)}")
            for row in store.outbox_for_event(event.id) if event.id is not None else []:
                print(f"    {_delivery(row)}")
    finally:
        store.close()
    return 0


def _recent_events(store: Store, limit: int) -> list[Event]:
    # Store.events reads forwards from an id; page through and keep the last `limit`.
    recent: deque[Event] = deque(maxlen=limit)
    after = 0
    while page := store.events(after_id=after, limit=1000):
        recent.extend(page)
        after = page[-1].id or after
    return list(recent)


def _failure_reason(store: Store, event: Event) -> str:
    """Why a capture failed: as the event recorded it, else as its capture row did."""
    failed = event.payload if isinstance(event.payload, CaptureFailed) else None
    reason, message = (failed.reason, failed.message) if failed else (None, None)
    if not message and event.capture_id is not None:
        row = store.capture(event.capture_id)
        reason, message = (row.reason, row.message) if row else (reason, message)
    if reason and message and not message.startswith(reason):
        return f"{reason}: {message}"
    return message or reason or "not recorded"


def _not_negative(value: str) -> int:
    # argparse prints this after "argument --limit:" and exits 2, as for any bad option.
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count: give 0 or more, e.g. 20")
    return number


def _delivery(row: OutboxRow) -> str:
    text = f"{row.sink} chat {row.chat_id}: {row.status}"
    if row.status != "sent" and row.attempts:
        text += f" after {row.attempts} attempt(s)"
    if row.status != "sent" and row.last_error:
        text += f" ({row.last_error})"
    return text


def cmd_demo(args: argparse.Namespace) -> int:
    """``watcher demo``: run the bundled demo site and watch it, printing alerts."""
    from watcher.demo.runner import main as demo_main

    return demo_main(args)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: write a number such as 8799")
    return int(text)


def cmd_export(args: argparse.Namespace) -> int:
    """``watcher export``: write a signed evidence bundle and log the export in custody."""
    from watcher.evidence.bundle import Selection, export_bundle

    selection = Selection(
        target=args.target,
        tag=args.tag,
        since=_utc_arg(args.since, "--since"),
        until=_utc_arg(args.until, "--until"),
        post_id=args.post_id,
        capture_id=args.capture_id,
    )
    if args.dealer:
        selection = _dealer_selection(args, selection)
    # Everything is rarely what a case needs and can be gigabytes: it has to be asked for.
    if args.all and selection.describe():
        raise WatcherError(
            f"--all exports every capture; drop it to export only {selection.in_words()}"
        )
    if not args.all and not selection.describe():
        raise WatcherError(
            "say what to export: --target NAME, --tag TAG, --post POST_ID, --capture NUMBER "
            "and/or --since/--until TIME; or --all for every capture in the archive"
        )

    async def export(app: App) -> tuple[list[Path], str]:
        # In the loop but not async: the export reads SQLite, whose connection is this thread's.
        paths = export_bundle(app, selection, Path(args.out), max_bytes=args.max_mb * 1_000_000)
        return paths, app.custody.key.key_id

    paths, key_id = run_with_app(args, export)
    for path in paths:
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    print(f"signed with custody key {key_id}; check with `watcher verify`")
    return 0


def _dealer_selection(args: argparse.Namespace, selection: Any) -> Any:
    """The selection of a dealer's dossier: its name as the archive knows it, and the pages
    its posts were captured on."""
    from dataclasses import replace

    from watcher.commands.dealers import rules_from
    from watcher.evidence.dossier import dealer_targets
    from watcher.store.dealers import find_dealer

    with open_archive(args) as store:
        dealer = find_dealer(store, args.dealer, rules_from(args))
    return replace(selection, dealer=dealer.name, targets=tuple(dealer_targets(dealer)))


def cmd_verify(args: argparse.Namespace) -> int:
    """``watcher verify``: a verdict per item; exit 0 only for intact bundles signed by a key
    the user trusts, 3 when intact but signed by a key nobody named, 1 otherwise."""
    from watcher.evidence.trust import format_fingerprint, gather_trust
    from watcher.evidence.verify import UNANCHORED, VERIFIED, verify_bundle

    trust = gather_trust(args.key, args.tsa_ca)
    verdicts = set()
    for name in args.bundles:
        if Path(name).is_dir():
            print(f"NOT VERIFIED: {name}: {_folder_not_bundle(Path(name))}")
            verdicts.add("folder")  # neither verified nor intact: exit 1
            continue
        report = verify_bundle(Path(name), trust)
        for finding in report.findings:
            # The timestamp and the custody log's extent (what was withheld) are always shown.
            shown = finding.item in ("trusted timestamp", "custody chain")
            if not finding.ok or args.debug or shown:
                print(f"  {'OK  ' if finding.ok else 'FAIL'} {finding.item}: {finding.message}")
        for note in report.notes:
            print(f"  NOTE {note}")
        checked = len(report.findings)
        key = report.key_id or "unknown"
        if report.verdict == VERIFIED:
            print(
                f"VERIFIED: {name} ({checked} checks; signing key {key}, "
                f"trusted through {report.anchored_by})"
            )
        elif report.verdict == UNANCHORED:
            print(
                f"NOT VERIFIED: {name}: intact, but signed by an unanchored key "
                f"{format_fingerprint(report.fingerprint or '')} (id {key}); compare it with "
                "your team's published key (the team prints it with `watcher key`; the "
                "bundle's index.html says how to get it), then verify again with --key "
                f"FINGERPRINT ({checked} checks)"
            )
        else:
            print(f"NOT VERIFIED: {name} ({checked} checks; signing key {key})")
        verdicts.add(report.verdict)
    if verdicts == {VERIFIED}:
        return 0
    return 3 if verdicts <= {VERIFIED, UNANCHORED} else 1


def _folder_not_bundle(folder: Path) -> str:
    """Why a folder cannot be verified, and which file to give instead."""
    # The manifest's hashes and signature vouch for the zip as exported; files unzipped
    # from it could have been changed, added or left out in between.
    zips = sorted(p.name for p in folder.glob("*.zip"))
    if zips:
        return (
            f"a folder, not a bundle; it holds {len(zips)} bundle(s): "
            f"watcher verify {folder / zips[0]}"
        )
    return (
        "a folder, not a bundle; pass the .zip file `watcher export` wrote, not its unzipped files"
    )


def _utc_arg(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    moment = parse_iso(value)
    if moment is None:
        raise WatcherError(f"{flag} {value!r} is not a time; write e.g. 2026-11-01T00:00:00Z")
    return to_iso(moment)


COMMANDS = {
    "validate": cmd_validate,
    "check": cmd_check,
    "status": cmd_status,
    "run": cmd_run,
    "alerts": cmd_alerts,
    "export": cmd_export,
    "verify": cmd_verify,
    "demo": cmd_demo,
}

if __name__ == "__main__":
    sys.exit(main())
