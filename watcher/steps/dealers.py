"""Finding: the dealer who comes back. An account with no history (a target at its first
capture, a new author in a watched group) that ties to a dealer whose accounts all went away
(blocked, failing, or silent for ``dealers.silent_after``) makes one ``dealer_returned``
event: "this looks like <dealer> (accounts X, Y, gone since D): same phone ...".

Runs after the capture's other findings are stored (in the same transaction), since the
ties are read from the contacts and photo events this capture just recorded. Once per new
account, ever (``dealer_returns``).
"""

from __future__ import annotations

import logging

from watcher.app import App
from watcher.detect.dealers import AUTHOR_PREFIX, Rules, Tie
from watcher.detect.diff import PostDiff
from watcher.kinds import DealerReturned
from watcher.models import Event, EventKind
from watcher.store.dealers import announced, could_tie, dealers, gone, is_group

log = logging.getLogger(__name__)
MAX_SAME = 3  # shared keys named in the alert


def rules_of(app: App) -> Rules:
    """The tie rules of the watchlist's ``dealers:`` section."""
    return Rules(common_after=app.watchlist.dealers.common_after)


def new_accounts(
    app: App, target: str, baseline: bool, diff: PostDiff, capture_id: int
) -> list[str]:
    """The accounts this capture saw for the first time: the target at its first capture;
    in a group, authors of new posts that no earlier capture saw."""
    fresh = []
    authored = any(c.post.author for c in diff.new)
    if not baseline and not authored:
        return []  # the common case, every capture of a page: nothing new to look at
    if authored and is_group(app.store, target):
        authors = {
            c.post.author.strip() for c in diff.new if c.post.author and c.post.author.strip()
        }
        for author in sorted(authors):
            row = app.store.db.execute(
                "SELECT 1 FROM post_versions WHERE author = ? AND capture_id < ? LIMIT 1",
                [author, capture_id],
            ).fetchone()
            if row is None:
                fresh.append(AUTHOR_PREFIX + author)
    elif baseline:
        fresh.append(target)
    return [a for a in fresh if not announced(app.store, a)]


def find_returning_dealers(
    app: App, target: str, baseline: bool, diff: PostDiff, capture_id: int, now: str
) -> list[Event]:
    """One ``dealer_returned`` event per new account tied to a dealer that went away."""
    fresh = new_accounts(app, target, baseline, diff, capture_id)
    if not any(could_tie(app.store, account) for account in fresh):
        return []  # tied to nothing: no need to group the whole archive
    config = app.watchlist.dealers
    events = []
    for dealer in dealers(app.store, rules_of(app)):
        for account in fresh:
            if account not in dealer.accounts:
                continue
            others = [a for a in dealer.accounts if a != account and a not in fresh]
            went = [gone(app.store, a, now, config.silent_after) for a in others]
            if not others or any(g is None for g in went):
                continue  # some of its accounts are live: a front man, not a return
            last = max(went, key=lambda g: g.since or "")
            mine = [t for t in dealer.ties if account in (t.a, t.b) and t.joins]
            same, photos = _evidence(mine)
            log.info("%s: new account %s looks like dealer %s", target, account, dealer.name)
            events.append(
                Event(
                    EventKind.DEALER_RETURNED,
                    target,
                    _first_post(diff, account),
                    DealerReturned(
                        account=account,
                        dealer=dealer.name,
                        accounts=tuple(others),
                        gone_since=last.since,
                        how=last.how,
                        same=tuple(same),
                        photos_seen=photos,
                        tie_ids=tuple(t.id for t in mine),
                    ),
                )
            )
    return events


def _evidence(ties: list[Tie]) -> tuple[list[str], int]:
    same: list[str] = []
    photos: set[str] = set()
    for tie in sorted(ties, key=lambda t: -t.weight):
        for key in tie.keys:
            if key.kind == "photo":
                photos.add(key.key)
            elif key.kind != "forward" and not key.common:
                words = f"{key.kind} {key.key}"
                if words not in same and len(same) < MAX_SAME:
                    same.append(words)
    return same, len(photos)


def _first_post(diff: PostDiff, account: str) -> str | None:
    author = account.removeprefix(AUTHOR_PREFIX) if account.startswith(AUTHOR_PREFIX) else None
    for captured in diff.new:
        if author is None or (captured.post.author or "").strip() == author:
            return captured.post.post_id
    return None
