"""Chromium crashing or hanging mid-capture: the capture fails cleanly, the browser comes
back, the next captures succeed. A dedicated Browser: the shared one must not be harmed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import hostile_target, listing, shop_page
from watcher.app import App
from watcher.capture import browser as browser_module
from watcher.capture import page as page_module
from watcher.capture.browser import Browser
from watcher.models import CaptureStatus
from watcher.pipeline import run_capture
from watcher.watchlist import load_watchlist


def browser_process(pids: list[int]) -> int:
    """The main Chromium process (the one without ``--type=``: renderers, GPU... have one)."""
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(a.startswith(b"--type=") for a in args):
            return pid
    pytest.fail(f"no Chromium browser process among {pids}")


@pytest.fixture
async def own_app(tmp_path, site):
    site.route("/ok", shop_page(listing("a", "fine")))
    site.route("/slow", shop_page(listing("a", "slow")), delay=4)
    path = tmp_path / "watchlist.yaml"
    targets = hostile_target("ok", f"{site.base_url}/ok", timeout=6)
    targets += hostile_target("slow", f"{site.base_url}/slow", timeout=6)
    path.write_text("targets:\n" + targets)
    browser = Browser(max_concurrent=2)
    app = App.open(load_watchlist(path), tmp_path / "data", browser=browser)
    yield app, browser
    await app.close()
    await browser.close()


@pytest.fixture
def own_chromium(own_app, chromium_pids):
    """The main process of own_app's Chromium: other browsers this test process runs (the
    session's shared one) are there before own_app's first capture and are left alone."""
    others = set(chromium_pids())

    def pid() -> int:
        return browser_process([p for p in chromium_pids() if p not in others])

    return pid


async def capture(app, name: str):
    return await asyncio.wait_for(run_capture(app, app.watchlist.target(name)), 60)


@pytest.mark.parametrize("kill_at", [0.5, 2.0])
async def test_chromium_killed_mid_capture(own_app, own_chromium, kill_at):
    app, browser = own_app
    assert (await capture(app, "ok")).status == CaptureStatus.OK
    running = asyncio.create_task(capture(app, "slow"))
    await asyncio.sleep(kill_at)
    os.kill(own_chromium(), signal.SIGKILL)
    failed = await running
    assert failed.status == CaptureStatus.FAILED and failed.capture_id is not None
    assert failed.reason in {"network", "browser", "BrowserError", "TargetClosedError"}, failed
    for _ in range(2):  # the browser comes back and keeps working
        assert (await capture(app, "ok")).status == CaptureStatus.OK
    assert browser.launches == 2


async def test_chromium_hung_mid_capture_is_bounded_and_replaced(
    own_app, own_chromium, monkeypatch
):
    # Shorter bounds than production's so the test is quick; the logic is the same.
    monkeypatch.setattr(browser_module, "BROWSER_CALL_TIMEOUT_S", 2.0)
    monkeypatch.setattr(page_module, "SCREENSHOT_EVAL_TIMEOUT_S", 2.0)
    monkeypatch.setattr(page_module, "SCREENSHOT_TIMEOUT_S", 2.0)
    app, _ = own_app
    assert (await capture(app, "ok")).status == CaptureStatus.OK
    pid = own_chromium()
    running = asyncio.create_task(capture(app, "slow"))
    await asyncio.sleep(0.5)
    os.kill(pid, signal.SIGSTOP)  # hung, not dead: the connection stays open
    try:
        started = time.monotonic()
        hung = await running
        assert time.monotonic() - started < 30
        assert hung.status == CaptureStatus.FAILED
        after = await capture(app, "ok")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert after.status == CaptureStatus.OK, after
