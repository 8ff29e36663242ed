"""Dealers from the archive: the evidence that ties accounts, a person's word on ties,
dealer names, and whether a dealer's accounts are gone.

The evidence is read from what captures already record: ``contacts`` (phones, handles,
links, from post text or from photos: every source writes there), ``image_seen_before``
events (a photo reposted from another post: the original photo is the key), and each
version's ``forwarded_from``. In a watched *group* (a target whose posts have more than one
author) a post is its author's, not the group's: the author is the account.

The grouping itself is :mod:`watcher.detect.dealers` (pure). Functions take a
:class:`Store` first; ``translated`` turns SQLite errors into ``StoreError``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, timedelta

from watcher.detect.dealers import (
    AUTHOR_PREFIX,
    Dealer,
    Observation,
    Rules,
    Tie,
    auto_name,
    build_ties,
    group,
)
from watcher.errors import WatcherError
from watcher.kinds import EventKind, ImageSeenBefore
from watcher.store.db import Store, translated
from watcher.timeutil import parse_iso, to_iso, utc_now

_PHONE_KINDS = ("phone", "whatsapp", "zalo", "wechat")  # as store.links: one number, one key
VERDICTS = ("confirmed", "rejected")
VERDICTS_SAID = {"confirm": "confirmed", "reject": "rejected"}  # as a person types them
SILENT_AFTER_S = 14 * 86400.0


@dataclass(frozen=True, slots=True)
class Gone:
    """An account that went away: how, and since when."""

    account: str
    how: str  # blocked, failing, silent
    since: str  # UTC ISO-8601


# -- the evidence ---------------------------------------------------------------------------
@translated
def group_targets(store: Store) -> set[str]:
    """Targets whose posts have more than one author: groups, where the author is the account."""
    rows = store.db.execute(
        "SELECT p.target FROM posts p JOIN post_versions v ON v.id = p.current_version_id "
        "WHERE COALESCE(v.author, '') != '' GROUP BY p.target HAVING COUNT(DISTINCT v.author) > 1"
    ).fetchall()
    return {r[0] for r in rows}


@translated
def is_group(store: Store, target: str) -> bool:
    """Whether ``target``'s posts have more than one author (one target: uses its index)."""
    row = store.db.execute(
        "SELECT COUNT(DISTINCT v.author) FROM posts p JOIN post_versions v "
        "ON v.id = p.current_version_id WHERE p.target = ? AND COALESCE(v.author, '') != ''",
        [target],
    ).fetchone()
    return bool(row and row[0] > 1)


def _author_account(author: str | None) -> str | None:
    return AUTHOR_PREFIX + author.strip() if author and author.strip() else None


@translated
def _authors(store: Store, groups: set[str]) -> dict[tuple[str, str], str]:
    """(target, post id) -> author account, for the posts of groups."""
    if not groups:
        return {}
    marks = ",".join("?" * len(groups))
    rows = store.db.execute(
        "SELECT p.target, p.post_id, v.author FROM posts p JOIN post_versions v "
        f"ON v.id = p.current_version_id WHERE p.target IN ({marks})",
        sorted(groups),
    ).fetchall()
    return {(t, p): a for t, p, a in ((r[0], r[1], _author_account(r[2])) for r in rows) if a}


@translated
def observations(store: Store) -> list[Observation]:
    """Every key every account showed: contacts, reposted photos, forwards."""
    groups = group_targets(store)
    authors = _authors(store, groups)

    def account(target: str, post_id: str | None) -> str:
        return authors.get((target, post_id or ""), target)

    found = []
    # Only values two pages gave (or a group, where two authors may share a page) can tie
    # anything: an account's own number on its every post is read no further.
    marks = ",".join("?" * len(groups))
    in_group = f" OR SUM(target IN ({marks})) > 0" if groups else ""
    for kind, value, target, post_id, raw, seen_at in store.db.execute(
        "SELECT kind, value, target, post_id, raw, MIN(seen_at) FROM contacts WHERE value IN "
        f"(SELECT value FROM contacts GROUP BY value HAVING COUNT(DISTINCT target) > 1{in_group})"
        " GROUP BY kind, value, target, post_id ORDER BY MIN(id)",
        sorted(groups),
    ):
        phone = kind in _PHONE_KINDS and str(value).startswith("+")
        found.append(
            Observation(
                "phone" if phone else kind,
                value,
                account(target, post_id),
                post_id,
                seen_at,
                raw or "",
                target,
            )
        )
    for target, post_id, details, at in store.db.execute(
        "SELECT target, post_id, details, created_at FROM events WHERE kind = ? ORDER BY id",
        [str(EventKind.IMAGE_SEEN_BEFORE)],
    ):
        repost = ImageSeenBefore.from_json(json.loads(details or "{}"))
        first = repost.first_seen
        original = first.image_sha256 or repost.image_sha256
        if not first.target or not original:
            continue
        found.append(
            Observation(
                "photo",
                original,
                account(first.target, first.post_id),
                first.post_id,
                first.seen_at,
                original,
                first.target,
            )
        )
        found.append(
            Observation(
                "photo",
                original,
                account(target, post_id),
                post_id,
                at,
                repost.image_sha256 or "",
                target,
            )
        )
    for target, post_id, extra, seen_at in store.db.execute(
        "SELECT p.target, p.post_id, v.extra, MIN(v.seen_at) FROM post_versions v "
        "JOIN posts p ON p.id = v.post_row WHERE v.extra LIKE '%forwarded_from%' "
        "GROUP BY p.id ORDER BY MIN(v.id)"
    ):
        source = _author_account(json.loads(extra or "{}").get("forwarded_from"))
        if source:
            found.append(
                Observation(
                    "forward", source, account(target, post_id), post_id, seen_at, "", target
                )
            )
    return found


@translated
def first_seen(store: Store) -> dict[str, str]:
    """When watcher first saw each account: a target's first capture, an author's first post."""
    seen = {
        r[0]: r[1]
        for r in store.db.execute("SELECT target, MIN(started_at) FROM captures GROUP BY target")
    }
    groups = group_targets(store)
    if groups:
        marks = ",".join("?" * len(groups))
        for author, at in store.db.execute(
            "SELECT v.author, MIN(v.seen_at) FROM post_versions v JOIN posts p "
            f"ON p.id = v.post_row WHERE p.target IN ({marks}) AND COALESCE(v.author, '') != '' "
            "GROUP BY v.author",
            sorted(groups),
        ):
            seen[AUTHOR_PREFIX + author.strip()] = at
    return seen


# -- a person's word --------------------------------------------------------------------------
@translated
def verdicts(store: Store) -> dict[str, str]:
    """The latest verdict on each tie, by tie id."""
    rows = store.db.execute(
        "SELECT tie, verdict FROM dealer_verdicts WHERE id IN "
        "(SELECT MAX(id) FROM dealer_verdicts GROUP BY tie)"
    )
    return {r[0]: r[1] for r in rows}


@translated
def record_verdict(store: Store, tie: Tie, verdict: str, by: str) -> None:
    """Keep a person's word on a tie: confirmed always joins, rejected never joins again."""
    if verdict not in VERDICTS:
        raise WatcherError(f"a tie can be confirmed or rejected, not {verdict!r}")
    with store.transaction():
        store.db["dealer_verdicts"].insert(
            {
                "tie": tie.id,
                "account_a": tie.a,
                "account_b": tie.b,
                "verdict": verdict,
                "by": by,
                "at": utc_now(),
            }
        )


# -- dealers and their names ------------------------------------------------------------------
@translated
def all_ties(store: Store, rules: Rules | None = None) -> list[Tie]:
    """Every tie in the archive, with the team's verdicts on them."""
    pairs = store.db.execute("SELECT DISTINCT account_a, account_b FROM dealer_verdicts")
    return build_ties(observations(store), verdicts(store), rules, [tuple(r) for r in pairs])


@translated
def dealers(store: Store, rules: Rules | None = None) -> list[Dealer]:
    """Every dealer, named: a new dealer gets its name now (kept from then on)."""
    found = group(all_ties(store, rules), first_seen(store))
    return _named(store, found)


def _named(store: Store, found: list[Dealer]) -> list[Dealer]:
    names: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for name, anchor, given_by, at in store.db.execute(
        "SELECT name, anchor, given_by, at FROM dealer_names ORDER BY at, name"
    ):
        names[anchor].append((name, given_by, at))
    out, new = [], []
    for dealer in found:
        # The name a person gave wins, then the oldest; a dealer that swallowed another keeps
        # the name of its earliest account's.
        candidates = [
            (given_by != "person", at if given_by != "person" else _desc(at), name, anchor)
            for anchor in dealer.accounts
            for name, given_by, at in names.get(anchor, [])
        ]
        if candidates:
            out.append(replace(dealer, name=min(candidates)[2]))
            continue
        name = auto_name(dealer.anchor)
        new.append({"name": name, "anchor": dealer.anchor, "given_by": "auto", "at": utc_now()})
        out.append(replace(dealer, name=name))
    if new:
        with store.transaction():
            store.db["dealer_names"].insert_all(new, ignore=True)
    return out


def _desc(at: str) -> str:
    # The latest name a person gave sorts first.
    return "".join(chr(0x10FFFF - ord(c)) for c in at)


@translated
def names_of(store: Store, anchor: str) -> list[str]:
    """Every name a dealer anchored on ``anchor`` has gone by."""
    rows = store.db.execute("SELECT name FROM dealer_names WHERE anchor = ? ORDER BY at", [anchor])
    return [r[0] for r in rows]


def find_dealer(store: Store, name: str, rules: Rules | None = None) -> Dealer:
    """The dealer going by ``name`` (or by one of its earlier names, or holding the account
    ``name``); WatcherError listing the dealers otherwise."""
    every = dealers(store, rules)
    for dealer in every:
        if dealer.name == name:
            return dealer
    rows = store.db.execute("SELECT anchor FROM dealer_names WHERE name = ?", [name]).fetchall()
    anchors = {r[0] for r in rows} | {name, AUTHOR_PREFIX + name}
    for dealer in every:
        if anchors & set(dealer.accounts):
            return dealer
    known = ", ".join(d.name for d in every) or "none yet (`watcher dealers` lists them)"
    raise WatcherError(f"no dealer named {name}; known: {known}")


def find_tie(dealer: Dealer, wanted: str) -> Tie:
    """A tie of ``dealer`` by its id (``t3f9a1c02``) or by its two accounts (``a,b``)."""
    for tie in dealer.ties:
        accounts = {tie.a, tie.b}
        if wanted == tie.id or set(wanted.split(",")) == accounts:
            return tie
    ids = ", ".join(t.id for t in dealer.ties)
    raise WatcherError(f"{dealer.name} has no tie {wanted}; its ties: {ids}")


@translated
def rename(store: Store, dealer: Dealer, new_name: str) -> None:
    """Give a dealer a name (its old names keep finding it)."""
    clean = new_name.strip()
    if not clean or len(clean) > 80 or any(c.isspace() for c in clean):
        raise WatcherError(
            "a dealer's name is one word of up to 80 characters, e.g. tiger-bones-pp"
        )
    taken = store.db.execute("SELECT anchor FROM dealer_names WHERE name = ?", [clean]).fetchone()
    if taken and taken[0] not in dealer.accounts:
        raise WatcherError(f"the name {clean} is already another dealer's; choose another")
    with store.transaction():
        store.db.execute("DELETE FROM dealer_names WHERE name = ?", [clean])
        store.db["dealer_names"].insert(
            {"name": clean, "anchor": dealer.anchor, "given_by": "person", "at": utc_now()}
        )


# -- accounts that went away ------------------------------------------------------------------
@translated
def gone(
    store: Store, account: str, now: str, silent_after_s: float = SILENT_AFTER_S
) -> Gone | None:
    """How and since when ``account`` went away (None while it is live): its page blocked or
    failing since its last success, or no new post for ``silent_after_s``."""
    if not account.startswith(AUTHOR_PREFIX):
        last = store.db.execute(
            "SELECT status, started_at FROM captures WHERE target = ? ORDER BY id DESC LIMIT 1",
            [account],
        ).fetchone()
        if last is None:
            return None
        if last[0] != "ok":
            since = store.db.execute(
                "SELECT MIN(started_at) FROM captures WHERE target = ? AND status != 'ok' AND id > "
                "COALESCE((SELECT MAX(id) FROM captures WHERE target = ? AND status = 'ok'), 0)",
                [account, account],
            ).fetchone()[0]
            return Gone(account, "blocked" if last[0] == "blocked" else "failing", since)
        newest = store.db.execute(
            "SELECT MAX(COALESCE(v.posted_at, p.first_seen_at)) FROM posts p JOIN post_versions v "
            "ON v.id = p.current_version_id WHERE p.target = ?",
            [account],
        ).fetchone()[0]
    else:
        newest = store.db.execute(
            "SELECT MAX(COALESCE(v.posted_at, v.seen_at)) FROM post_versions v WHERE v.author = ?",
            [account.removeprefix(AUTHOR_PREFIX)],
        ).fetchone()[0]
    when, moment = parse_iso(newest) if newest else None, parse_iso(now)
    if when and moment and moment - when >= timedelta(seconds=silent_after_s):
        return Gone(account, "silent", to_iso(when.astimezone(UTC)))
    return None


@translated
def could_tie(store: Store, account: str) -> bool:
    """Whether ``account`` shows any key that could tie it to another account: a contact
    another page gave too, a photo seen before, a forwarded post. Without one it is in no
    dealer, and grouping the whole archive to find out can be skipped: done at every new
    account's first capture, that grouping made adding 5,000 targets cost ~O(n^2) (issue 25:
    the second 500 of 1,000 first captures took twice the first 500's time).

    An author in a group, or a group itself, is always read the whole way: its keys are
    spread over the group's posts by author, which these per-page queries do not follow.
    """
    if account.startswith(AUTHOR_PREFIX) or is_group(store, account):
        return True
    db = store.db
    shared_contact = db.execute(
        "SELECT 1 FROM contacts c WHERE c.target = ? AND EXISTS (SELECT 1 FROM contacts d "
        "WHERE d.value = c.value AND d.target != c.target) LIMIT 1",
        [account],
    ).fetchone()
    # A photo it reposted (the event is its own), or one of its photos another account
    # reposted (that event names it inside its details).
    reposted = db.execute(
        "SELECT 1 FROM events WHERE kind = ? AND (target = ? OR "
        "json_extract(details, '$.first_seen.target') = ?) LIMIT 1",
        [str(EventKind.IMAGE_SEEN_BEFORE), account, account],
    ).fetchone()
    forwarded = db.execute(
        "SELECT 1 FROM post_versions v JOIN posts p ON p.id = v.post_row WHERE p.target = ? "
        "AND v.extra LIKE '%forwarded_from%' LIMIT 1",
        [account],
    ).fetchone()
    return bool(shared_contact or reposted or forwarded)


@translated
def announced(store: Store, account: str) -> bool:
    """Whether the team was already told this account looks like a dealer come back."""
    row = store.db.execute("SELECT 1 FROM dealer_returns WHERE account = ?", [account]).fetchone()
    return row is not None


@translated
def record_return(store: Store, account: str, dealer: str, event_id: int, at: str) -> None:
    """Mark ``account`` as announced (call in the capture's transaction, with its event)."""
    store.db["dealer_returns"].insert(
        {"account": account, "dealer": dealer, "event_id": event_id, "at": at}, ignore=True
    )


def silent_days(seconds: float) -> str:
    return f"{seconds / 86400:g} days"
