"""``watcher dealers`` and ``watcher dealer NAME``: the dealers behind the accounts.

    watcher dealers                          every dealer: its accounts and strongest ties
    watcher dealer NAME                      one dealer with the evidence of every tie
    watcher dealer NAME --reject TIE         these two accounts are not the same dealer
    watcher dealer NAME --confirm TIE        they are, whatever the evidence weighs
    watcher dealer NAME --rename NEW         call the dealer NEW (old names still work)

Only the data folder is read (and the team's verdicts and names written); no browser.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
from pathlib import Path

from watcher.commands import open_archive
from watcher.detect.dealers import Dealer, Rules, SharedKey, Tie, shown
from watcher.errors import WatcherError
from watcher.store.dealers import (
    dealers,
    find_dealer,
    find_tie,
    gone,
    names_of,
    record_verdict,
    rename,
)
from watcher.timeutil import utc_now
from watcher.watchlist import load_watchlist

STRONGEST = 3  # ties shown per dealer in the list
SIGHTINGS = 4  # sightings shown per shared key


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher dealers`` and ``watcher dealer`` to the command line."""
    sub.add_parser(
        "dealers",
        parents=[common],
        help="dealers: groups of accounts tied by shared contacts, photos, forwards",
        description="Every dealer: the accounts tied by shared phones, handles, links, photos "
        "or forwards, with the strongest ties.",
        epilog="Examples:\n  watcher dealers\n  watcher dealers --data /srv/watcher/data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    one = sub.add_parser(
        "dealer",
        parents=[common],
        help="one dealer with the evidence of each tie; confirm, reject, rename",
        description="One dealer: its accounts and every tie with its evidence (which posts, "
        "photos, contacts, when). A tie is named by its id (as listed) or by its two "
        "accounts separated by a comma.",
        epilog="Examples:\n  watcher dealer ivory-kh-3f9a\n"
        "  watcher dealer ivory-kh-3f9a --reject t1a2b3c4d\n"
        "  watcher dealer ivory-kh-3f9a --confirm ivory-kh,ivory-kh2\n"
        "  watcher dealer ivory-kh-3f9a --rename tiger-bones-pp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    one.add_argument("name", metavar="NAME", help="the dealer's name (or one of its accounts)")
    verdict = one.add_mutually_exclusive_group()
    verdict.add_argument("--confirm", metavar="TIE", help="these accounts are one dealer")
    verdict.add_argument("--reject", metavar="TIE", help="these accounts are not one dealer")
    verdict.add_argument("--rename", metavar="NEW", help="give the dealer a name")


def rules_from(args: argparse.Namespace) -> Rules:
    """The watchlist's ``dealers:`` rules when it can be read, else the defaults (dealers
    need only the archive)."""
    with contextlib.suppress(WatcherError):
        if Path(args.watchlist).is_file():
            return Rules(common_after=load_watchlist(args.watchlist).dealers.common_after)
    return Rules()


def cmd_dealers(args: argparse.Namespace) -> int:
    """``watcher dealers``: every dealer with its accounts and strongest ties."""
    with open_archive(args) as store:
        found = dealers(store, rules_from(args))
        now = utc_now()
        lines = []
        for dealer in found:
            lines += dealer_lines(dealer, {a: gone(store, a, now) for a in dealer.accounts})
    if not found:
        print("no dealers: no accounts are tied by a shared contact, photos or forwards")
        return 0
    print(f"dealers: {len(found)}")
    print("\n".join(lines))
    print("one dealer with its evidence: watcher dealer NAME")
    return 0


def dealer_lines(dealer: Dealer, went: dict, ties: int = STRONGEST) -> list[str]:
    """A dealer's head: name, accounts (marked when gone), its strongest ties."""
    accounts = [_account(a, went.get(a)) for a in dealer.accounts]
    lines = [f"{dealer.name}: {len(dealer.accounts)} accounts: {', '.join(accounts)}"]
    joining = [t for t in dealer.ties if t.joins]
    for tie in joining[:ties]:
        lines.append(f"  {_tie_head(tie)}")
    if len(joining) > ties:
        lines.append(f"  ... and {len(joining) - ties} more ties")
    return lines


def _account(account: str, went) -> str:
    return shown(account) + (f" ({went.how} since {went.since[:10]})" if went else "")


def _tie_head(tie: Tie) -> str:
    verdict = f" [{tie.verdict} by a person]" if tie.verdict else ""
    pair = f"{shown(tie.a)} <-> {shown(tie.b)}"
    return f"{tie.id}  {pair}  weight {tie.weight:.2f}: {tie.summary()}{verdict}"


def _key_lines(key: SharedKey) -> list[str]:
    common = f"  (common: seen on {key.accounts} accounts, does not join)" if key.common else ""
    lines = [f"    {key.kind} {key.key}  weight {key.weight:.2f}{common}"]
    for seen in key.seen[:SIGHTINGS]:
        where = f"post {seen.post_id}" if seen.post_id else "forwarded from"
        on = f" on {seen.target}" if seen.target and seen.target != seen.account else ""
        detail = f'  "{seen.detail}"' if seen.detail and key.kind != "photo" else ""
        photo = f"  photo {seen.detail}" if key.kind == "photo" and seen.detail else ""
        lines.append(f"      {shown(seen.account)} {where}{on}  {seen.at or ''}{detail}{photo}")
    if len(key.seen) > SIGHTINGS:
        lines.append(f"      ... and {len(key.seen) - SIGHTINGS} more sightings")
    return lines


def cmd_dealer(args: argparse.Namespace) -> int:
    """``watcher dealer NAME``: one dealer with the evidence of every tie."""
    with open_archive(args) as store:
        rules = rules_from(args)
        dealer = find_dealer(store, args.name, rules)
        by = f"cli:{getpass.getuser()}"
        if args.confirm or args.reject:
            tie = find_tie(dealer, args.confirm or args.reject)
            verdict = "confirmed" if args.confirm else "rejected"
            record_verdict(store, tie, verdict, by)
            print(f"tie {tie.id} ({shown(tie.a)} <-> {shown(tie.b)}) {verdict}; kept for good")
            return 0
        if args.rename:
            rename(store, dealer, args.rename)
            print(f"{dealer.name} is now called {args.rename.strip()}")
            return 0
        now = utc_now()
        went = {a: gone(store, a, now) for a in dealer.accounts}
        names = [n for n in names_of(store, dealer.anchor) if n != dealer.name]
    print("\n".join(dealer_lines(dealer, went, ties=0)))
    if names:
        print(f"  also called: {', '.join(names)}")
    print(f"ties: {len(dealer.ties)} (reject one: watcher dealer {dealer.name} --reject TIE)")
    for tie in dealer.ties:
        print(f"  {_tie_head(tie)}")
        for key in tie.keys:
            print("\n".join(_key_lines(key)))
    return 0


COMMANDS = {"dealers": cmd_dealers, "dealer": cmd_dealer}
