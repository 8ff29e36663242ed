"""Dealers: accounts tied by evidence, grouped into the one identity behind them. Pure.

An :class:`Observation` says "this account showed this key in this post": a contact (phone,
messenger handle, link; from post text or a photo, whatever recorded it), a photo (the
original photo's SHA-256, so near-duplicates share a key), a forward (the key is the account
forwarded from). Accounts that showed the same key are tied; each tie keeps every
observation behind it. A tie's weight is the sum of its keys' weights (capped at 1): a
phone number alone joins two accounts, one reposted photo does not, and a key that more
than ``common_after`` accounts showed (the stock photo every shop uses, a marketplace link)
is *common*: listed as evidence, but it can never join accounts by itself.

A person's word wins: a confirmed tie always joins, a rejected one never does, whatever
evidence arrives later. Dealers are the connected components over joining ties.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

# Keys by strength. A phone number is a dealer's till: sharing one is near proof; a messenger
# handle almost as much; an outbound link (a shop page) less; one reposted photo or one
# forward is what front men and fans do, so it takes two of them to join.
WEIGHTS = {
    "phone": 1.0,
    "telegram": 0.9,
    "wechat": 0.9,
    "line": 0.9,
    "whatsapp": 0.9,
    "zalo": 0.9,
    "link": 0.5,
    "photo": 0.3,
    "forward": 0.3,
}
DEFAULT_WEIGHT = 0.5
COMMON_WEIGHT = 0.05  # a key many accounts showed
COMMON_CAP = 0.1  # all common keys of a tie together: under any threshold that joins
JOIN_AT = 0.5
COMMON_AFTER = 3  # a key seen on more accounts than this is common
AUTHOR_PREFIX = "author:"  # an account seen only as an author or forwarder, not a target


@dataclass(frozen=True, slots=True)
class Observation:
    """One account showing one key in one post."""

    kind: str  # phone, telegram, ..., link, photo, forward
    key: str  # normalised value: E.164, handle, URL, photo SHA-256, forwarded account
    account: str  # a target name, or AUTHOR_PREFIX + name
    post_id: str | None = None
    at: str | None = None  # when it was seen (UTC ISO-8601)
    detail: str = ""  # as written (a contact), the photo this post had (a photo)
    target: str = ""  # the watched page it was captured on


@dataclass(frozen=True, slots=True)
class SharedKey:
    """A key both accounts of a tie showed, with every sighting of it on either."""

    kind: str
    key: str
    weight: float
    common: bool  # seen on more than ``common_after`` accounts
    accounts: int  # how many accounts showed it in all
    seen: tuple[Observation, ...]  # sightings on the tie's two accounts, oldest first


@dataclass(frozen=True, slots=True)
class Tie:
    """Two accounts and the keys they share."""

    a: str
    b: str
    keys: tuple[SharedKey, ...]  # strongest first
    weight: float
    verdict: str = ""  # "confirmed", "rejected" or "" (nobody said)

    @property
    def id(self) -> str:
        return tie_id(self.a, self.b)

    @property
    def joins(self) -> bool:
        if self.verdict:
            return self.verdict == "confirmed"
        return self.weight >= JOIN_AT

    def other(self, account: str) -> str:
        return self.b if account == self.a else self.a

    def summary(self) -> str:
        """``phone +85512345678, 3 photos`` : the strongest keys in words."""
        counts: dict[str, int] = defaultdict(int)
        words = []
        for k in self.keys:
            if k.kind in ("photo", "forward"):
                counts[k.kind] += 1
            elif len(words) < 3:
                words.append(f"{k.kind} {k.key}" + (" (common)" if k.common else ""))
        for kind, n in counts.items():
            noun = {"photo": "photo", "forward": "forward"}[kind]
            words.append(f"{n} {noun}{'s' if n != 1 else ''} shared")
        return ", ".join(words)


@dataclass(frozen=True, slots=True)
class Dealer:
    """A group of accounts joined by ties; ``name`` is given by the store."""

    accounts: tuple[str, ...]  # the anchor (first seen) first
    ties: tuple[Tie, ...]  # every tie among its accounts, strongest first (rejected too)
    name: str = ""

    @property
    def anchor(self) -> str:
        return self.accounts[0]


@dataclass(frozen=True, slots=True)
class Rules:
    """How ties are weighed (the watchlist's ``dealers:`` can change these)."""

    common_after: int = COMMON_AFTER
    join_at: float = JOIN_AT
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))


def tie_id(a: str, b: str) -> str:
    """A tie's stable id: the same two accounts, the same id, whatever order or evidence."""
    first, second = sorted((a, b))
    return "t" + hashlib.sha256(f"{first}\0{second}".encode()).hexdigest()[:8]


def build_ties(
    observations: Iterable[Observation],
    verdicts: dict[str, str] | None = None,
    rules: Rules | None = None,
    judged: Iterable[tuple[str, str]] = (),
) -> list[Tie]:
    """Every pair of accounts that share a key, weighed; ``verdicts`` by tie id; ``judged``
    the pairs a person gave a verdict on (kept even when they share only common keys)."""
    rules, verdicts = rules or Rules(), verdicts or {}
    by_key: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    done: set[tuple[str, str, str, str | None]] = set()
    for seen in observations:
        # One post giving a number as a phone and as a WhatsApp is one sighting.
        if (mark := (seen.kind, seen.key, seen.account, seen.post_id)) in done:
            continue
        done.add(mark)
        by_key[(seen.kind, seen.key)].append(seen)
        if seen.kind == "forward":
            # The account forwarded from is the key's other holder.
            by_key[(seen.kind, seen.key)].append(
                Observation("forward", seen.key, seen.key, None, seen.at, "forwarded from")
            )
    pairs: dict[tuple[str, str], list[SharedKey]] = defaultdict(list)
    common_keys: dict[str, list[tuple[str, str]]] = defaultdict(list)  # account -> its common keys
    holders: dict[tuple[str, str], list[str]] = {}
    by_account: dict[tuple[str, str], dict[str, list[Observation]]] = {}
    for (kind, key), seen in by_key.items():
        mine: dict[str, list[Observation]] = defaultdict(list)
        for s in seen:
            mine[s.account].append(s)
        if len(mine) < 2:
            continue
        accounts = sorted(mine)
        holders[(kind, key)], by_account[(kind, key)] = accounts, mine
        if len(accounts) > rules.common_after:
            # Every pair of a stock photo's 200 accounts would be 20,000 ties of nothing: a
            # common key is only evidence on ties that stand on something else.
            for a in accounts:
                common_keys[a].append((kind, key))
            continue
        for i, a in enumerate(accounts):
            for b in accounts[i + 1 :]:
                pairs[(a, b)].append(_shared(kind, key, mine, a, b, rules, common=False))
    for a, b in judged:
        pairs.setdefault(tuple(sorted((a, b))), [])  # type: ignore[arg-type]
    for (a, b), keys in pairs.items():
        theirs = set(common_keys.get(a, ())) & set(common_keys.get(b, ()))
        for kind, key in sorted(theirs):
            keys.append(_shared(kind, key, by_account[(kind, key)], a, b, rules, common=True))
    ties = []
    for (a, b), keys in pairs.items():
        if not keys:
            continue  # a pair a person judged that shares nothing any more
        strong = sum(k.weight for k in keys if not k.common)
        weak = min(COMMON_CAP, sum(k.weight for k in keys if k.common))
        ordered = tuple(sorted(keys, key=lambda k: (k.common, -k.weight, k.kind, k.key)))
        tie = Tie(a, b, ordered, round(min(1.0, strong + weak), 3), verdicts.get(tie_id(a, b), ""))
        ties.append(tie)
    return sorted(ties, key=lambda t: (-t.weight, t.a, t.b))


def _shared(
    kind: str,
    key: str,
    mine: dict[str, list[Observation]],
    a: str,
    b: str,
    rules: Rules,
    common: bool,
) -> SharedKey:
    seen = tuple(sorted([*mine[a], *mine[b]], key=lambda s: s.at or ""))
    weight = COMMON_WEIGHT if common else rules.weights.get(kind, DEFAULT_WEIGHT)
    return SharedKey(kind, key, weight, common, len(mine), seen)


def group(ties: list[Tie], first_seen: dict[str, str] | None = None) -> list[Dealer]:
    """Dealers: the connected components over joining ties (two accounts or more).

    An account's place is by ``first_seen`` (then name): the first is the dealer's anchor.
    """
    first_seen = first_seen or {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for tie in ties:
        if tie.joins:
            parent[find(tie.a)] = find(tie.b)
    members: dict[str, list[str]] = defaultdict(list)
    for account in list(parent):
        members[find(account)].append(account)
    dealers = []
    for accounts in members.values():
        if len(accounts) < 2:
            continue
        inside = set(accounts)
        ordered = sorted(accounts, key=lambda a: (first_seen.get(a) or "~", a))
        mine = tuple(t for t in ties if t.a in inside and t.b in inside)
        dealers.append(Dealer(tuple(ordered), mine))
    return sorted(dealers, key=lambda d: (first_seen.get(d.anchor) or "~", d.anchor))


def auto_name(anchor: str) -> str:
    """A dealer's first name: its first account in a slug, and a short id so two dealers
    whose accounts look alike are never confused (``ivory-dealer-kh-3f9a``)."""
    plain = anchor.removeprefix(AUTHOR_PREFIX)
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40] or "dealer"
    return f"{slug}-{hashlib.sha256(anchor.encode()).hexdigest()[:4]}"


def shown(account: str) -> str:
    """An account as a person reads it: a target by name, another account marked as such."""
    if account.startswith(AUTHOR_PREFIX):
        return f"{account.removeprefix(AUTHOR_PREFIX)} (not watched)"
    return account
