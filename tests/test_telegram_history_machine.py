"""A Telegram chat read through an account, driven through random histories, against a model.

Hypothesis plays a group's history: messages posted, edited, deleted, restored (an admin's
deletion undone, as a scripted fake can), with a small reading window. After every capture
the store (a real SQLite file written by the real pipeline, the rendering screenshotted by
the real Chromium) is compared with a plain model.

WHAT IS FAKED, AND WHY: Telegram cannot be reached from here, so the chat is served by
``ScriptedTelegram`` (tests/test_telegram_account.py), a stand-in for Telethon's
``TelegramClient`` that answers with Telethon's own message objects. Everything of watcher
runs for real.

The model says plainly what a capture reads and what follows from it: every message newer
than the newest one watcher has seen, and at least the WINDOW most recent ones (the whole
history when it is shorter). A stored post missing from what was read, and not older than
the oldest message read, is deleted; one older than that is never judged; a deleted one read
again is restored; a changed text is an edit.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import watcher.steps.telegram_account as source
from tests.machines import MachineHarness, machine_settings
from tests.test_telegram_account import ScriptedTelegram, Sleeps, telegram_target
from watcher.capture.tgapi.accounts import TelegramAccounts, TelegramSession
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture

WINDOW = 3
WORDS = ("ivory bangle", "rhino horn", "pangolin scales", "白料 手镯")
KINDS = ("new_post", "edited_post", "deleted_post", "restored_post")
SEEN: Counter[str] = Counter()  # events the captures raised, over the whole run


def run_machine(tmp: Path, max_examples: int, steps: int) -> None:
    window, source.WINDOW = source.WINDOW, WINDOW
    os.environ.setdefault("WATCHER_TELEGRAM_API_ID", "123456")
    os.environ.setdefault("WATCHER_TELEGRAM_API_HASH", "0123456789abcdef")
    chosen = machine_settings(
        max_examples,
        steps,
        # The same histories every run in make test: a random run met no edit once in ~6
        # (the coverage line below then failed with nothing wrong); `make soak` varies them.
        derandomize=not os.environ.get("WATCHER_TG_HISTORY_RANDOM"),
    )
    try:
        with MachineHarness(tmp) as harness:
            harness.run_machine(_chat_machine(harness), chosen)
        print(f"telegram history machine: {dict(SEEN)}")
    finally:
        source.WINDOW = window


def _chat_machine(harness: MachineHarness) -> type[RuleBasedStateMachine]:
    class ChatHistory(RuleBasedStateMachine):
        @initialize(start=st.integers(0, 6))
        def open(self, start: int) -> None:
            name = harness.fresh_name("chat")
            self.app = harness.open_app(name, "targets:\n" + telegram_target())
            self.chat = ScriptedTelegram()
            accounts = TelegramAccounts(
                self.app.data_dir,
                factory=lambda session, creds: self.chat,
                sleep=Sleeps(),
                per_minute=60000,
            )
            accounts.sessions.save(TelegramSession("acct", "1BVtsOK-machine-session-xyz", 1))
            self.app._telegram = accounts
            self.next_id, self.edits = 1, 0
            self.stored: dict[int, str] = {}  # what watcher should hold: id -> text
            self.deleted: set[int] = set()  # stored posts watcher should hold as deleted
            self.captures = 0
            for n in range(1, start + 1):
                self.chat.post(n, f"ivory bangle #{n}")
            self.next_id = start + 1

        def teardown(self) -> None:
            harness.close_app(self)

        # -- what the group does, then watcher looks ------------------------------------------
        # One step is a few changes and a capture: captures are the costly part, and every
        # one of them is compared with the model.
        @rule(
            changes=st.lists(
                st.sampled_from(
                    ["post", "post", "edit", "delete", "delete_newest", "restore", "restore"]
                ),
                min_size=1,
                max_size=4,
            ),
            data=st.data(),
        )
        def happen_then_capture(self, changes: list[str], data: st.DataObject) -> None:
            for change in changes:
                getattr(self, f"_{change}")(data)
            self.capture()

        def _post(self, data: st.DataObject) -> None:
            word = data.draw(st.sampled_from(WORDS))
            self.chat.post(self.next_id, f"{word} #{self.next_id}")
            self.next_id += 1

        def _edit(self, data: st.DataObject) -> None:
            if self.chat.messages:
                msg_id = data.draw(st.sampled_from(sorted(self.chat.messages)))
                self.edits += 1
                self.chat.edit(msg_id, f"edited #{msg_id} ({self.edits}00$)")

        def _delete(self, data: st.DataObject) -> None:
            if self.chat.messages:
                self.chat.delete(data.draw(st.sampled_from(sorted(self.chat.messages))))

        def _delete_newest(self, data: st.DataObject) -> None:
            # No newer message is left to show it was not just off a page, yet through an
            # account watcher knows it read that far.
            if self.chat.messages:
                self.chat.delete(max(self.chat.messages))

        def _restore(self, data: st.DataObject) -> None:
            if self.chat.removed:
                self.chat.restore(data.draw(st.sampled_from(sorted(self.chat.removed))))

        def capture(self) -> None:
            expected = self._expect()
            summary = harness.run(run_capture(self.app, self.app.watchlist.target("traders")))
            assert summary.status == CaptureStatus.OK, (summary.reason, summary.events)
            self.captures += 1
            got = Counter(str(e.kind) for e in summary.events if str(e.kind) in KINDS)
            assert got == expected, (got, expected)
            SEEN.update(got)
            SEEN["captures"] += 1

        def _expect(self) -> Counter[str]:
            """What the capture about to run should find, and the model updated with it."""
            newest_first = sorted(self.chat.messages, reverse=True)
            last_seen = max(self.stored, default=None)
            read = []
            for msg_id in newest_first:
                if len(read) >= WINDOW and (last_seen is None or msg_id <= last_seen):
                    break
                read.append(msg_id)
            whole = len(read) == len(newest_first)
            oldest = 0 if whole else min(read, default=None)
            baseline = self.captures == 0
            events: Counter[str] = Counter()
            for msg_id in read:
                text = self.chat.messages[msg_id].message
                if msg_id not in self.stored:
                    events["new_post"] += not baseline
                else:
                    if msg_id in self.deleted:
                        events["restored_post"] += 1
                        self.deleted.discard(msg_id)
                    if self.stored[msg_id] != text:
                        events["edited_post"] += 1
                self.stored[msg_id] = text
            for msg_id in self.stored:
                gone = msg_id not in read and msg_id not in self.deleted
                if gone and oldest is not None and msg_id >= oldest:
                    events["deleted_post"] += 1
                    self.deleted.add(msg_id)
            return +events

        @invariant()
        def store_matches_the_model(self) -> None:
            if not hasattr(self, "app") or not self.captures:
                return
            live = {p.post_id: p.text for p in self.app.store.live_posts("traders")}
            hidden = {p.post_id for p in self.app.store.hidden_posts("traders")}
            assert hidden == {str(i) for i in self.deleted}
            assert live == {str(i): t for i, t in self.stored.items() if i not in self.deleted}

    return ChatHistory


def test_random_chat_histories_match_the_model(tmp_path: Path) -> None:
    SEEN.clear()
    run_machine(
        tmp_path, max_examples=int(os.environ.get("WATCHER_TG_HISTORY_EXAMPLES", 6)), steps=6
    )
    # The changes were met, so the comparison meant something (returns need a deletion
    # captured first: rarer in short runs; tests/test_telegram_account.py has one for sure).
    assert all(SEEN[kind] for kind in ("new_post", "edited_post", "deleted_post")), dict(SEEN)


@pytest.mark.soak
def test_many_random_chat_histories_match_the_model(tmp_path: Path, monkeypatch) -> None:
    # New histories every run (make soak): what the fixed ones of make test do not meet.
    monkeypatch.setenv("WATCHER_TG_HISTORY_RANDOM", "1")
    SEEN.clear()
    run_machine(tmp_path, max_examples=60, steps=12)
    assert all(SEEN[kind] for kind in ("new_post", "edited_post", "deleted_post")), dict(SEEN)
