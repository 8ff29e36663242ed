"""The harness the history machines share (tests/test_history_machine.py, the browser's;
tests/test_telegram_history_machine.py, a Telegram account's).

Hypothesis runs a state machine's rules as plain functions, so the machine cannot live in
pytest's event loop: the harness owns a loop of its own and one Chromium started in it, opens
one app per history (a fresh data folder with its watchlist, sharing the browser) and runs
coroutines to the end in that loop. Settings are the same for both machines: no deadline (a
capture takes seconds), no health checks (the steps are slow by nature), no example database
(every run's histories are its own).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from watcher.app import App
from watcher.capture.browser import Browser
from watcher.watchlist import load_watchlist

T = TypeVar("T")


def machine_settings(max_examples: int, steps: int, **more: Any) -> settings:
    """A history machine's settings: ``max_examples`` histories of up to ``steps`` steps."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        **more,
    )


class MachineHarness:
    """A loop and a Chromium for one run of a machine; a context manager (both are closed)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.browser = Browser(max_concurrent=1, allow_private_network=True)
        self._numbers = itertools.count()

    def __enter__(self) -> MachineHarness:
        try:
            self.run(self.browser.start())
        except BaseException:
            self.loop.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.run(self.browser.close())
        finally:
            self.loop.close()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to the end in the harness's loop (from a rule, which is sync)."""
        return self.loop.run_until_complete(work)

    def fresh_name(self, prefix: str) -> str:
        """A name no other history of this run has: ``prefix`` and a number."""
        return f"{prefix}{next(self._numbers)}"

    def open_app(self, name: str, watchlist_yaml: str) -> App:
        """An app over a new folder ``name`` (its watchlist and data), on the shared browser."""
        folder = self.tmp / name
        folder.mkdir()
        path = folder / "watchlist.yaml"
        path.write_text(watchlist_yaml, encoding="utf-8")
        return App.open(load_watchlist(path), folder / "data", browser=self.browser)

    def close_app(self, machine: RuleBasedStateMachine) -> None:
        """A history's teardown: close its app, if its first step got as far as opening one."""
        app = getattr(machine, "app", None)
        if app is not None:
            self.run(app.close())

    @staticmethod
    def run_machine(machine: type[RuleBasedStateMachine], chosen: settings) -> None:
        """Run ``machine``'s histories under ``chosen`` settings."""
        machine.TestCase.settings = chosen
        run_state_machine_as_test(machine, settings=chosen)
