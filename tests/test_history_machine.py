"""A listing page driven through random histories, captured for real, checked against a model.

Hypothesis plays a dealer's page: posts added, edited, hidden, shown again, bumped to the top
(out of their time's place, as a pinned post or a bumped listing), pushed off the first page,
shown twice, an empty page, a server error. After every capture the store (a real SQLite
file written by the real pipeline, the page loaded by the real Chromium from a loopback
site) is compared with a plain model of what a person looking at the page would say
happened: which posts exist, which are deleted, how many versions each has, which events the
capture raised. Any store error in a capture fails the test.

The model's one judgement call is deletion: a post missing from the page is deleted when the
page still shows, among its posts in chronological order, one older and one newer than it
(otherwise it may have scrolled off). When a bumped post leaves too few posts to tell which
one is out of place, either verdict is accepted and the model adopts the store's.

Bounded for ``make test`` (a few hundred steps); ``make soak`` runs thousands.
"""

from __future__ import annotations

import html
import os
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.conftest import SHOP_SELECTORS, channel_target
from tests.machines import MachineHarness, machine_settings
from watcher.demo.site import DemoSite
from watcher.models import CaptureStatus, EventKind
from watcher.pipeline import run_capture

PAGE = 4  # posts the first page shows; older ones are pushed off it
WORDS = ("ivory bangle", "rhino horn cup", "pangolin scales", "tiger tooth", "白料 手镯", "ស្បែក")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
POST_KINDS = {
    EventKind.NEW_POST,
    EventKind.EDITED_POST,
    EventKind.DELETED_POST,
    EventKind.RESTORED_POST,
}


@dataclass
class SitePost:
    """One listing as the fake dealer's site holds it."""

    number: int
    text: str
    visible: bool = True
    order: int = 0  # display key: highest first; a bump raises it above every other
    twice: bool = False  # shown a second time further down (a pinned copy)

    @property
    def post_id(self) -> str:
        return f"L{self.number}"

    @property
    def posted_at(self) -> str:
        return (T0 + timedelta(minutes=self.number)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    @property
    def bumped(self) -> bool:
        return self.order != self.number


@dataclass
class ModelPost:
    """What a person knows of one post from the captures so far."""

    texts: list[str]
    deleted: bool = False
    last_capture: int = 0
    last_position: int = 0


@dataclass
class Model:
    posts: dict[str, ModelPost] = field(default_factory=dict)
    ok_captures: int = 0
    streak: int = 0  # failed or blocked captures since the last good one


def _page(shown: list[SitePost]) -> str:
    items = "".join(
        f'<div class="listing" data-id="{p.post_id}"><h3><a class="permalink" '
        f'href="/item/{p.post_id}">{html.escape(p.text)}</a></h3>'
        f'<div class="desc">{html.escape(p.text)}</div><span class="seller">dealer</span>'
        f'<time datetime="{p.posted_at}">{p.posted_at[:10]}</time></div>'
        for p in shown
    )
    return f"<!doctype html><html><body><main>{items}</main></body></html>"


def _shown(site_posts: dict[int, SitePost]) -> list[SitePost]:
    visible = sorted((p for p in site_posts.values() if p.visible), key=lambda p: -p.order)
    window = visible[:PAGE]
    return window + [p for p in window if p.twice]


RULES_RUN: Counter = Counter()  # rule -> times run, printed at the end (pytest -s shows it)


def run_machine(tmp: Path, max_examples: int, steps: int) -> None:
    """Run the state machine in the harness's loop and Chromium (hypothesis rules are sync)."""
    with MachineHarness(tmp) as harness, DemoSite() as site:
        harness.run_machine(_history_machine(harness, site), machine_settings(max_examples, steps))
    print(f"history machine: {sum(RULES_RUN.values())} steps: {dict(RULES_RUN)}")


def _history_machine(harness: MachineHarness, site: DemoSite) -> type[RuleBasedStateMachine]:
    class History(RuleBasedStateMachine):
        @initialize(seeded=st.integers(0, 7))
        def open(self, seeded: int) -> None:
            name = harness.fresh_name("dealer")
            self.path = f"/{name}"
            self.app = harness.open_app(
                name,
                "targets:\n  - name: dealer\n    platform: generic\n"
                f"    url: {site.base_url}{self.path}\n    every: 1m\n"
                "    allow_private_network: true\n"
                + textwrap.indent(textwrap.dedent(SHOP_SELECTORS), "    "),
            )
            self.target = self.app.watchlist.targets[0]
            self.site: dict[int, SitePost] = {}
            self.next_number = 1
            self.next_order = 10**6  # bumps go above every natural position
            self.edits = 0
            self.mode = "normal"
            self.model = Model()
            self.captures = 0
            self._add_posts(WORDS[0], seeded)  # a page with a history already, often past one page

        def teardown(self) -> None:
            harness.close_app(self)

        # -- what the dealer does ----------------------------------------------------------
        @rule(word=st.sampled_from(WORDS), count=st.sampled_from([1, 1, 1, 3]))
        def add(self, word: str, count: int) -> None:
            RULES_RUN["add"] += 1
            self._add_posts(word, count)

        def _add_posts(self, word: str, count: int) -> None:
            for _ in range(count):  # three at once pushes older posts off the first page
                n = self.next_number
                self.next_number += 1
                self.site[n] = SitePost(n, f"{word} #{n}", order=n)

        @precondition(lambda self: self.site)
        @rule(data=st.data(), word=st.sampled_from(WORDS))
        def edit(self, data: st.DataObject, word: str) -> None:
            RULES_RUN["edit"] += 1
            post = data.draw(st.sampled_from(sorted(self.site.values(), key=lambda p: p.number)))
            self.edits += 1
            post.text = f"{word} #{post.number} (price {self.edits}00$)"

        @precondition(lambda self: any(p.visible for p in self.site.values()))
        @rule(data=st.data())
        def hide(self, data: st.DataObject) -> None:
            RULES_RUN["hide"] += 1
            post = data.draw(st.sampled_from([p for p in self.site.values() if p.visible]))
            post.visible = False

        @precondition(lambda self: any(not p.visible for p in self.site.values()))
        @rule(data=st.data())
        def show_again(self, data: st.DataObject) -> None:
            RULES_RUN["show_again"] += 1
            post = data.draw(st.sampled_from([p for p in self.site.values() if not p.visible]))
            post.visible = True

        # At most one post out of its time's place at once (a pinned post, a bumped listing).
        @precondition(lambda self: self.site and not any(p.bumped for p in self.site.values()))
        @rule(data=st.data())
        def bump(self, data: st.DataObject) -> None:
            RULES_RUN["bump"] += 1
            post = data.draw(st.sampled_from(sorted(self.site.values(), key=lambda p: p.number)))
            self.next_order += 1
            post.order = self.next_order

        @precondition(lambda self: any(p.bumped for p in self.site.values()))
        @rule()
        def unbump(self) -> None:
            RULES_RUN["unbump"] += 1
            for post in self.site.values():
                post.order = post.number

        @precondition(lambda self: self.site)
        @rule(data=st.data())
        def show_twice(self, data: st.DataObject) -> None:
            RULES_RUN["show_twice"] += 1
            post = data.draw(st.sampled_from(sorted(self.site.values(), key=lambda p: p.number)))
            post.twice = not post.twice

        @rule(mode=st.sampled_from(["empty", "error"]))
        def break_next_capture(self, mode: str) -> None:
            RULES_RUN["break_next_capture"] += 1
            self.mode = mode

        # -- the watch ---------------------------------------------------------------------
        @rule()
        def capture(self) -> None:
            RULES_RUN["capture"] += 1
            shown = [] if self.mode == "empty" else _shown(self.site)
            served_error = self.mode == "error"
            if served_error:
                site.route(self.path, "<h1>Internal Server Error</h1>", status=500)
            else:
                site.route(self.path, _page(shown))
            self.mode = "normal"
            self.captures += 1
            summary = harness.run(run_capture(self.app, self.target, full=True))
            # A store error is our bug, never the site's: no history may cause one.
            assert summary.reason not in ("StoreError", "IntegrityError"), summary
            unique: list[SitePost] = []
            for post in shown:
                if post not in unique:
                    unique.append(post)
            if site_failed := (summary.status != CaptureStatus.OK):
                self._expect_failure(summary, [] if served_error else unique, served_error)
            else:
                self._expect_capture(summary, unique)
            assert not site_failed or summary.capture_id is not None
            assert site_failed or not served_error, summary

        def _expect_failure(self, summary, unique: list[SitePost], served_error: bool) -> None:
            live = any(not p.deleted for p in self.model.posts.values())
            assert not unique or summary.reason not in ("no_posts", "empty_after_posts"), summary
            if served_error:
                assert summary.reason == "http_error", summary
            elif not unique and live:
                assert summary.status == CaptureStatus.BLOCKED, summary
            else:
                assert summary.status == CaptureStatus.FAILED, summary
            expected = Counter({EventKind.CAPTURE_FAILED: 1} if self.model.streak == 0 else {})
            assert Counter(e.kind for e in self._stored_events(summary)) == expected
            self.model.streak += 1

        def _expect_capture(self, summary, unique: list[SitePost]) -> None:
            model = self.model
            baseline = model.ok_captures == 0
            assert summary.baseline == baseline
            expected: Counter = Counter()
            previous = {pid: p for pid, p in model.posts.items() if not p.deleted}
            shown_ids = {p.post_id for p in unique}
            for position, post in enumerate(unique):
                known = model.posts.get(post.post_id)
                if known is None:
                    model.posts[post.post_id] = ModelPost([post.text])
                    known = model.posts[post.post_id]
                    if not baseline:
                        expected[(EventKind.NEW_POST, post.post_id)] += 1
                else:
                    if known.deleted:
                        expected[(EventKind.RESTORED_POST, post.post_id)] += 1
                        known.deleted = False
                    if known.texts[-1] != post.text:
                        known.texts.append(post.text)
                        expected[(EventKind.EDITED_POST, post.post_id)] += 1
                known.last_capture, known.last_position = self.captures, position
            verdicts = self._deletions(previous, unique, shown_ids)
            stored_deleted = self._stored_deleted()
            for post_id, verdict in verdicts.items():
                if verdict is None:  # a person could not tell: take the store's word
                    verdict = post_id in stored_deleted
                if verdict:
                    model.posts[post_id].deleted = True
                    expected[(EventKind.DELETED_POST, post_id)] += 1
            if model.streak:
                expected[(EventKind.CAPTURE_RECOVERED, None)] += 1
            model.streak = 0
            model.ok_captures += 1
            got = Counter(
                (e.kind, e.post_id)
                for e in self._stored_events(summary)
                if e.kind in POST_KINDS or e.kind == EventKind.CAPTURE_RECOVERED
            )
            assert got == expected, (self._history(), unique)

        def _deletions(self, previous, unique, shown_ids) -> dict[str, bool | None]:
            """Missing live posts: True deleted, False not, None either is defensible."""
            bumped = [p for p in unique if p.bumped]
            in_order = [p for p in unique if not p.bumped]
            # A bumped post at the top that is also the newest is in its place after all.
            if bumped and all(bumped[0].number > p.number for p in in_order):
                in_order, bumped = unique, []
            ambiguous = bool(bumped) and len(unique) <= 3
            verdicts: dict[str, bool | None] = {}
            for post_id in previous:
                if post_id in shown_ids:
                    continue
                number = int(post_id[1:])
                older = any(p.number < number for p in in_order)
                newer = any(p.number > number for p in in_order)
                verdicts[post_id] = None if ambiguous else (older and newer)
            return verdicts

        # -- the store, read back ----------------------------------------------------------
        def _stored_events(self, summary):
            return [
                e
                for e in self.app.store.events("dealer", limit=10_000)
                if e.capture_id == summary.capture_id
            ]

        def _stored_deleted(self) -> set[str]:
            rows = self.app.store.db.execute(
                "SELECT post_id FROM posts WHERE target = 'dealer' AND deleted_at IS NOT NULL"
            ).fetchall()
            return {r[0] for r in rows}

        def _history(self) -> str:
            return "; ".join(
                f"{pid}:{'del' if p.deleted else 'live'}:{len(p.texts)}v"
                for pid, p in sorted(self.model.posts.items())
            )

        @invariant()
        def store_matches_model(self) -> None:
            if not hasattr(self, "app"):
                return
            db = self.app.store.db
            rows = db.execute(
                "SELECT p.post_id, p.deleted_at IS NOT NULL, COUNT(v.id) FROM posts p "
                "JOIN post_versions v ON v.post_row = p.id WHERE p.target = 'dealer' "
                "GROUP BY p.id"
            ).fetchall()
            stored = {r[0]: (bool(r[1]), r[2]) for r in rows}
            model = {pid: (p.deleted, len(p.texts)) for pid, p in self.model.posts.items()}
            assert stored == model, self._history()
            # Every deletion and return is kept, in turn: deleted, restored, deleted, ...
            for (post_id,) in db.execute("SELECT post_id FROM posts WHERE target = 'dealer'"):
                changes = [
                    r[0]
                    for r in db.execute(
                        "SELECT change FROM post_visibility pv JOIN posts p ON p.id = pv.post_row"
                        " WHERE p.target = 'dealer' AND p.post_id = ? ORDER BY pv.id",
                        [post_id],
                    )
                ]
                assert all(
                    change == ("deleted", "restored")[i % 2] for i, change in enumerate(changes)
                ), changes
                if changes:
                    assert changes[0] == "deleted"
                    assert (changes[-1] == "deleted") == stored[post_id][0]

    return History


def test_random_histories_match_the_model(tmp_path: Path) -> None:
    # ~300 steps (239 at 12 steps a history: 71 captures), every rule many times, in about
    # two minutes on 2 cores.
    run_machine(
        tmp_path, max_examples=int(os.environ.get("WATCHER_HISTORY_EXAMPLES", 25)), steps=15
    )


@pytest.mark.soak
def test_random_histories_match_the_model_long(tmp_path: Path) -> None:
    run_machine(tmp_path, max_examples=150, steps=30)


async def test_a_hidden_post_shown_again_is_restored_and_the_watch_goes_on(site, make_app):
    # The report of issue 18: a channel hides post 4 and shows it again; every later capture
    # failed with "UNIQUE constraint failed: posts.target, posts.post_id" and saw nothing.
    site.channel("ivory")
    for n in range(1, 7):
        site.add_post("ivory", f"bangle {n}", posted_at=T0 + timedelta(minutes=n))
    app = make_app(channel_target("ivory", f"{site.base_url}/s/ivory"))
    target = app.watchlist.targets[0]
    await run_capture(app, target)
    (hidden,) = [p for p in site.posts("ivory") if p.id == 4]
    site.delete_post("ivory", 4)
    gone = await run_capture(app, target)
    assert [e.kind for e in gone.events] == [EventKind.DELETED_POST]
    hidden.text = "bangle 4, now 300$"
    site.show_post("ivory", hidden)
    back = await run_capture(app, target)
    assert back.status == CaptureStatus.OK, back.reason
    assert sorted(e.kind for e in back.events) == [EventKind.EDITED_POST, EventKind.RESTORED_POST]
    restored = next(e for e in back.events if e.kind == EventKind.RESTORED_POST)
    assert restored.details["deleted_capture_id"] == gone.capture_id
    assert restored.details["changed_while_hidden"] is True
    site.add_post("ivory", "bangle 7", posted_at=T0 + timedelta(minutes=7))
    later = await run_capture(app, target)
    assert [e.kind for e in later.events] == [EventKind.NEW_POST]
    row = app.store.db.execute("SELECT id FROM posts WHERE post_id LIKE '%/4'").fetchone()
    assert [c.change for c in app.store.visibility(row[0])] == ["deleted", "restored"]
    versions = app.store.db.execute(
        "SELECT COUNT(*) FROM post_versions WHERE post_row = ?", [row[0]]
    ).fetchone()
    assert versions[0] == 2
