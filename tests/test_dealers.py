"""Dealers: accounts tied by shared contacts, photos and forwards, grouped, named, confirmed or
rejected by a person; on real SQLite files filled the way captures fill them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_links import REPOST, Archive
from watcher.demo.images import encode, make_photo, variant
from watcher.detect.dealers import Observation, Rules, build_ties, group, tie_id
from watcher.errors import WatcherError
from watcher.store.dealers import (
    dealers,
    find_dealer,
    find_tie,
    observations,
    record_verdict,
    rename,
)


@pytest.fixture
def archive(tmp_path: Path):
    made = Archive(tmp_path / "data")
    yield made
    made.store.close()


def _accounts(store) -> list[tuple[str, ...]]:
    return [d.accounts for d in dealers(store)]


def test_a_shared_phone_ties_two_accounts_with_its_evidence(archive: Archive):
    archive.post("dealer", "1", "Ivory bangle, call 012 345 678")
    archive.post("bystander", "5", "ceramic cats, call 097 123 4567")
    archive.post("front", "10", "new stock WhatsApp +855 12 345 678")

    (dealer,) = dealers(archive.store)
    assert dealer.accounts == ("dealer", "front")  # the first seen account anchors it
    assert dealer.name.startswith("dealer-")
    (tie,) = dealer.ties
    (key,) = tie.keys
    assert (key.kind, key.key, tie.joins) == ("phone", "+85512345678", True)
    assert [(s.account, s.post_id, s.detail) for s in key.seen] == [
        ("dealer", "1", "012 345 678"),
        ("front", "10", "+855 12 345 678"),
    ]
    assert key.seen[0].at == "2026-11-01T10:01:00Z"
    # The name is kept: a second look finds the same dealer under the same name.
    assert find_dealer(archive.store, dealer.name).accounts == dealer.accounts


def test_a_stock_photo_on_many_accounts_does_not_make_them_one_dealer(archive: Archive):
    stock = encode(make_photo(5))
    archive.post("shop1", "1", "ceramic elephant", (stock,))
    for n, name in enumerate(["shop2", "shop3", "shop4", "shop5"], start=2):
        archive.post(name, str(n), "statue", (variant(5, **REPOST),))
    assert _accounts(archive.store) == []
    ties = build_ties(observations(archive.store))
    assert ties and all(k.common and k.accounts == 5 for t in ties for k in t.keys)
    # Two accounts sharing two photos nobody else has are tied: the rule only spares the
    # stock photo.
    archive.post("shop1", "7", "bangle", (encode(make_photo(6)),))
    archive.post("shop1", "8", "tusk", (encode(make_photo(7)),))
    archive.post("shop2", "17", "bangle", (variant(6, **REPOST),))
    archive.post("shop2", "18", "tusk", (variant(7, **REPOST),))
    assert _accounts(archive.store) == [("shop1", "shop2")]


def test_a_common_phone_is_weak_too_and_the_threshold_is_configurable():
    seen = [Observation("link", "https://market.example/", f"acc{i}") for i in range(5)]
    seen += [Observation("phone", "+85512345678", a) for a in ("acc0", "acc1")]
    assert [d.accounts for d in group(build_ties(seen))] == [("acc0", "acc1")]
    loose = Rules(common_after=10)
    assert [d.accounts for d in group(build_ties(seen, rules=loose))] == [
        ("acc0", "acc1", "acc2", "acc3", "acc4")
    ]


def test_a_rejected_tie_stays_rejected_whatever_comes_later(archive: Archive):
    archive.post("dealer", "1", "call 012 345 678")
    archive.post("cousin", "2", "call +855 12 345 678")
    (dealer,) = dealers(archive.store)
    tie = find_tie(dealer, "cousin,dealer")
    assert tie.id == tie_id("dealer", "cousin")
    record_verdict(archive.store, tie, "rejected", "cli:test")
    assert _accounts(archive.store) == []
    # More and stronger evidence later: still the team's call.
    archive.post("cousin", "3", "tg @ivory_kh, WhatsApp 012 345 678")
    archive.post("dealer", "4", "t.me/ivory_kh")
    assert _accounts(archive.store) == []
    (again,) = build_ties(observations(archive.store), {tie.id: "rejected"})
    assert len(again.keys) == 2 and again.weight == 1.0 and not again.joins


def test_a_confirmed_tie_joins_even_when_weak(archive: Archive):
    archive.post("a", "1", "bangle", (encode(make_photo(11)),))
    archive.post("b", "2", "bangle", (variant(11, **REPOST),))
    assert _accounts(archive.store) == []  # one reposted photo is not enough
    (tie,) = build_ties(observations(archive.store))
    record_verdict(archive.store, tie, "confirmed", "cli:test")
    assert _accounts(archive.store) == [("a", "b")]


def test_a_renamed_dealer_answers_to_both_names(archive: Archive):
    archive.post("dealer", "1", "call 012 345 678")
    archive.post("front", "2", "call +855 12 345 678")
    (dealer,) = dealers(archive.store)
    rename(archive.store, dealer, "tiger-bones-pp")
    assert dealers(archive.store)[0].name == "tiger-bones-pp"
    assert find_dealer(archive.store, dealer.name).name == "tiger-bones-pp"
    with pytest.raises(WatcherError, match="one word"):
        rename(archive.store, dealer, "two words")
    with pytest.raises(WatcherError, match="no dealer named nobody; known: tiger-bones-pp"):
        find_dealer(archive.store, "nobody")
