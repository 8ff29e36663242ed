"""``watcher run`` end to end: the daemon in-process (and once as a real process) against the
fixture site, real Chromium, real SQLite in a temp folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import channel_target
from tests.fakes.telegram_api import FakeTelegram
from watcher.app import App
from watcher.capture.browser import Browser
from watcher.daemon import run_daemon
from watcher.errors import WatcherError
from watcher.lock import DataFolderLock
from watcher.models import CaptureStatus, EventKind
from watcher.pipeline import run_capture
from watcher.store.db import Store
from watcher.timeutil import to_iso
from watcher.watchlist import load_watchlist

FAST = "    jitter: 0s\n"


def watchlist_text(*targets: str, extra: str = "") -> str:
    return extra + "targets:\n" + "".join(targets)


def target(site, name: str) -> str:
    return channel_target(name, f"{site.base_url}/s/{name}", FAST)


@contextlib.asynccontextmanager
async def running_daemon(watchlist: Path, data: Path, **kwargs) -> AsyncIterator[asyncio.Task]:
    """The daemon as a task; stopped (and checked to exit 0) when the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_daemon(watchlist, data, stop=stop, **kwargs))
    try:
        yield task
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 45) == 0


async def until(condition: Callable[[], object], timeout: float = 20.0, task=None) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` (or if the daemon died)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if task is not None and task.done():
            task.result()  # raise the daemon's error
            pytest.fail("the daemon stopped early")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {condition.__name__}")
        await asyncio.sleep(0.2)


def read(data: Path, query: str, params: tuple = ()) -> list[tuple]:
    """A query on the daemon's database from a separate connection (as `watcher status` does)."""
    path = data / "watcher.db"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        try:
            return db.execute(query, params).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def write(data: Path, statement: str) -> None:
    """Change the daemon's database from a separate connection (WAL: it sees the change)."""
    with contextlib.closing(sqlite3.connect(data / "watcher.db", timeout=10)) as db, db:
        db.execute(statement)


def event_kinds(data: Path, target: str | None = None) -> list[str]:
    if target is None:
        return [k for (k,) in read(data, "SELECT kind FROM events ORDER BY id")]
    return [
        k for (k,) in read(data, "SELECT kind FROM events WHERE target = ? ORDER BY id", (target,))
    ]


def captures(data: Path, target: str) -> int:
    rows = read(data, "SELECT COUNT(*) FROM captures WHERE target = ?", (target,))
    return rows[0][0] if rows else 0


def schedule(data: Path) -> dict:
    try:
        return json.loads((data / "schedule.json").read_text())
    except (OSError, ValueError):
        return {}


async def test_new_post_is_stored_while_running_console_only(site, tmp_path, capsys):
    site.channel("dealer")
    site.add_post("dealer", "carving")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(watchlist_text(target(site, "dealer")))
    data = tmp_path / "data"

    async with running_daemon(watchlist, data) as task:
        await until(lambda: captures(data, "dealer") >= 1, task=task)
        site.add_post("dealer", "teak bangle, inbox for price")
        await until(lambda: "new_post" in event_kinds(data), task=task)
        entry = schedule(data)["dealer"]
        assert entry["interval"] == 5 and entry["failure_streak"] == 0
        assert entry["next_run_at"].endswith("Z")

    assert event_kinds(data) == ["new_post"]  # the first capture is the baseline
    out = capsys.readouterr().out
    assert "watching 1 target; data in" in out
    assert "alerts to: console only (no telegram in the watchlist)" in out
    assert "[NEW POST] dealer post dealer/2" in out and "teak bangle" in out
    assert not (data / "schedule.json").exists()  # no daemon, no next run


async def test_watchlist_edits_are_picked_up_live_and_a_broken_edit_is_reported_once(
    site, tmp_path
):
    for name in ("first", "second"):
        site.channel(name)
        site.add_post(name, f"{name} post")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(watchlist_text(target(site, "first")))
    data = tmp_path / "data"

    async with running_daemon(watchlist, data, console=False) as task:
        await until(lambda: captures(data, "first") >= 1, task=task)
        watchlist.write_text(watchlist_text(target(site, "first"), target(site, "second")))
        await until(lambda: captures(data, "second") >= 1, task=task)
        assert set(schedule(data)) == {"first", "second"}

        watchlist.write_text(watchlist_text(target(site, "first"), "  - name: broken one\n"))
        await until(lambda: "watchlist_invalid" in event_kinds(data), task=task)
        seen = captures(data, "first"), captures(data, "second")
        # The running targets go on; the broken content is reported once, not every 2 s.
        await until(
            lambda: captures(data, "first") > seen[0] and captures(data, "second") > seen[1],
            task=task,
        )

    assert event_kinds(data, "watchlist") == ["watchlist_invalid"]
    (details,) = read(data, "SELECT details FROM events WHERE target = 'watchlist'")
    assert "broken one" in json.loads(details[0])["message"]


async def test_failing_target_backs_off_then_recovers_with_one_alert_each(site, tmp_path, make_app):
    site.channel("flaky")
    site.add_post("flaky", "one")
    site.route("/s/flaky", "down", status=503)
    # One failure before the daemon starts, so its first capture makes a streak of two.
    app = make_app(target(site, "flaky"))
    assert (await run_capture(app, app.watchlist.target("flaky"))).status == "failed"
    await app.close()
    watchlist, data = tmp_path / "watchlist.yaml", tmp_path / "data"

    async with running_daemon(watchlist, data, console=False) as task:
        await until(lambda: schedule(data).get("flaky", {}).get("interval") == 10, task=task)
        assert schedule(data)["flaky"]["failure_streak"] == 2
        site.unroute("/s/flaky")
        await until(lambda: "capture_recovered" in event_kinds(data), timeout=20, task=task)
        await until(lambda: schedule(data)["flaky"]["interval"] == 5, task=task)

    assert event_kinds(data, "flaky") == ["capture_failed", "capture_recovered"]


async def test_second_daemon_on_the_same_data_folder_is_refused(site, tmp_path):
    site.channel("dealer")
    site.add_post("dealer", "x")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(watchlist_text(target(site, "dealer")))
    data = tmp_path / "data"

    async with running_daemon(watchlist, data, console=False) as task:
        await until(lambda: (data / "schedule.json").exists(), task=task)
        with pytest.raises(WatcherError) as refused:
            await run_daemon(watchlist, data, console=False, stop=asyncio.Event())
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "another watcher is already running" in message
    with DataFolderLock(data):  # released after a clean stop
        pass


def start_run(tmp_path: Path, data: Path, *extra: str) -> subprocess.Popen[str]:
    """``watcher run`` as a real process, the leader of its own process group (as a shell
    starts a command), so a test can signal the group as a terminal's Ctrl-C does."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watcher",
            "run",
            "--watchlist",
            str(tmp_path / "watchlist.yaml"),
            "--data",
            str(data),
            *extra,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_then_stop(
    process: subprocess.Popen[str],
    condition: Callable[[], object],
    stop: Callable[[], None],
) -> tuple[str, str]:
    """Wait until ``condition`` holds (or the process died), call ``stop``, return the
    process's stdout and stderr once it has exited."""
    try:
        deadline = time.monotonic() + 60
        while not condition():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"timed out waiting for {condition.__name__}"
            time.sleep(0.2)
        stop()
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def assert_stopped_cleanly(process: subprocess.Popen[str], out: str, err: str) -> None:
    assert process.returncode == 0, err
    assert "watcher stopped" in out, out
    assert "Traceback" not in err, err
    assert "Future exception was never retrieved" not in err, err
    assert "Connection closed" not in err, err


def test_sigterm_stops_the_process_cleanly(site, tmp_path):
    site.channel("dealer")
    site.add_post("dealer", "x")
    (tmp_path / "watchlist.yaml").write_text(watchlist_text(target(site, "dealer")))
    data = tmp_path / "data"
    process = start_run(tmp_path, data)

    def one_capture() -> bool:
        return captures(data, "dealer") >= 1

    out, err = wait_then_stop(process, one_capture, lambda: process.send_signal(signal.SIGTERM))
    assert_stopped_cleanly(process, out, err)
    assert "watching 1 target" in out and "dealer ok, baseline: 1 post (capture #1, " in out


def test_ctrl_c_stops_the_process_cleanly(site, tmp_path):
    # A terminal's Ctrl-C signals the whole foreground process group, children too: the
    # Playwright driver must not die of it under the daemon, least of all mid-capture.
    for name in ("dealer", "slow"):
        site.channel(name)
        site.add_post(name, f"{name} post")
    site.route("/s/slow", site.respond("/s/slow").body, delay=3.0)
    (tmp_path / "watchlist.yaml").write_text(
        watchlist_text(target(site, "dealer"), target(site, "slow"))
    )
    data = tmp_path / "data"
    process = start_run(tmp_path, data)

    def a_capture_of_slow_in_flight() -> bool:
        asked = site.requests.count("/s/slow")
        return captures(data, "dealer") >= 1 and asked > captures(data, "slow")

    out, err = wait_then_stop(
        process, a_capture_of_slow_in_flight, lambda: os.killpg(process.pid, signal.SIGINT)
    )
    assert_stopped_cleanly(process, out, err)
    assert "watching 2 targets" in out
    # The capture under way was let finish, not cut off by a dead browser.
    assert captures(data, "slow") >= 1
    statuses = read(data, "SELECT target, status, message FROM captures")
    assert all(status == "ok" for _, status, _ in statuses), statuses


@pytest.mark.parametrize("quiet", [False, True])
def test_run_prints_a_line_per_capture_and_quiet_keeps_only_the_alerts(site, tmp_path, quiet):
    site.channel("dealer")
    site.add_post("dealer", "x")
    site.channel("gone")
    site.route("/s/gone", "down", status=503)
    (tmp_path / "watchlist.yaml").write_text(
        watchlist_text(target(site, "dealer"), target(site, "gone"))
    )
    data = tmp_path / "data"
    process = start_run(tmp_path, data, *(["--quiet"] if quiet else []))
    added = False

    def a_new_post_then_an_unchanged_capture() -> bool:
        nonlocal added
        if not added and captures(data, "dealer") >= 1:
            site.add_post("dealer", "teak bangle, inbox for price")
            added = True
        dealer = captures(data, "dealer")
        return "new_post" in event_kinds(data) and dealer >= 3 and captures(data, "gone") >= 2

    out, err = wait_then_stop(
        process,
        a_new_post_then_an_unchanged_capture,
        lambda: os.killpg(process.pid, signal.SIGINT),
    )
    assert_stopped_cleanly(process, out, err)
    # The alerts print either way.
    assert "[NEW POST] dealer post dealer/2" in out and "teak bangle" in out
    # Once: a target that keeps failing alerts when it starts failing, not at every capture.
    assert out.count("[CAPTURE FAILED] gone") == 1, out
    lines = out.splitlines()
    progress = [line for line in lines if re.match(r"(dealer|gone) (ok|failed)\b", line)]
    if quiet:
        assert progress == [], out
        return
    seconds = r"\(capture #\d+, \d+\.\d s\)$"
    assert any(re.match(r"dealer ok, baseline: 1 post " + seconds, line) for line in lines), out
    assert any(re.match(r"dealer ok, 1 new post " + seconds, line) for line in lines), out
    assert any(re.match(r"dealer ok, no change " + seconds, line) for line in lines), out
    failed = [line for line in lines if line.startswith("gone failed: ")]
    assert (
        len(failed) >= 2
        and "503" in failed[0]
        and re.search(r"\(capture #\d+, \d+\.\d s\)$", failed[0])
    )


async def test_browser_is_relaunched_after_recycle_after_contexts(site, tmp_path):
    site.channel("dealer")
    site.add_post("dealer", "x")
    path = tmp_path / "watchlist.yaml"
    path.write_text(watchlist_text(target(site, "dealer")))
    watchlist = load_watchlist(path)
    browser = Browser(max_concurrent=2, recycle_after=2)
    app = App.open(watchlist, tmp_path / "data", browser=browser)
    try:
        results = [await run_capture(app, watchlist.target("dealer")) for _ in range(3)]
        assert [r.status for r in results] == [CaptureStatus.OK] * 3
        assert browser.launches == 2  # the third capture ran on a fresh Chromium
    finally:
        await app.close()
        await browser.close()


async def test_with_telegram_captures_run_the_bot_connects_and_alerts_go_out(
    site, tmp_path, monkeypatch
):
    site.channel("dealer")
    site.add_post("dealer", "carving")
    with FakeTelegram() as fake:
        monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", fake.token)
        alerts = f"alerts:\n  telegram:\n    chat_ids: [-100123]\n    api_url: {fake.base_url}\n"
        watchlist = tmp_path / "watchlist.yaml"
        watchlist.write_text(watchlist_text(target(site, "dealer"), extra=alerts))
        data = tmp_path / "data"

        async with running_daemon(watchlist, data, console=False) as task:
            await until(lambda: captures(data, "dealer") >= 1, task=task)
            site.add_post("dealer", "teak bangle")
            await until(lambda: fake.sent_messages(-100123), task=task)

        assert fake.calls_to("getMe")  # the bot's Application was initialised
        store = Store(data / "watcher.db")
        try:
            (event,) = store.events()
            assert event.kind == EventKind.NEW_POST
            assert [row.status for row in store.outbox_for_event(event.id)] == ["sent"]
        finally:
            store.close()


def telegram_watchlist(site, tmp_path: Path, fake: FakeTelegram, extra: str = "") -> Path:
    alerts = f"alerts:\n  telegram:\n    chat_ids: [-100123]\n    api_url: {fake.base_url}\n"
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(watchlist_text(target(site, "dealer"), extra=alerts + extra))
    return watchlist


def outbox(data: Path) -> list[tuple[str, int]]:
    return read(data, "SELECT status, attempts FROM outbox ORDER BY id")


async def test_telegram_down_at_start_capturing_goes_on_and_the_bot_joins_when_it_returns(
    site, tmp_path, monkeypatch, fake_telegram, capsys
):
    site.channel("dealer")
    site.add_post("dealer", "carving")
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", fake_telegram.token)
    member = 222
    watchlist = telegram_watchlist(site, tmp_path, fake_telegram, extra=f"members: [{member}]\n")
    data = tmp_path / "data"
    fake_telegram.go_down()  # connections to its port are refused

    async with running_daemon(watchlist, data, console=False) as task:
        await until(lambda: captures(data, "dealer") >= 1, task=task)
        site.add_post("dealer", "teak bangle")
        # Queued, and the sender has already tried (and failed) to deliver it.
        await until(lambda: outbox(data) and outbox(data)[0][1] >= 1, task=task)
        assert outbox(data) == [("pending", outbox(data)[0][1])]
        assert "Telegram is unreachable (NetworkError" in capsys.readouterr().out
        # As after a long outage: the sender's backoff would hold the alert another hour
        # (less than a day ahead, or it would count as a clock jump and be due anyway).
        later = to_iso(datetime.now(UTC) + timedelta(hours=1))
        write(data, f"UPDATE outbox SET next_attempt_at = '{later}'")

        fake_telegram.come_back()
        await until(lambda: fake_telegram.calls_to("getMe"), task=task)
        await until(lambda: fake_telegram.sent_messages(-100123), timeout=30, task=task)
        # The bot polls and answers commands, like one that connected at start.
        fake_telegram.push_message("/status", member, member)
        await until(lambda: fake_telegram.sent_messages(member), task=task)

    assert "Telegram is reachable again: the bot is connected" in capsys.readouterr().out
    (alert,) = fake_telegram.sent_messages(-100123)  # once, though it waited through retries
    assert "teak bangle" in (alert.fields.get("text") or alert.fields.get("caption") or "")
    assert [status for status, _ in outbox(data)] == ["sent"]
    assert fake_telegram.calls_to("setMyCommands")


async def test_stop_is_prompt_while_telegram_stays_down(site, tmp_path, monkeypatch, capsys):
    site.channel("dealer")
    site.add_post("dealer", "carving")
    with FakeTelegram() as fake:
        monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", fake.token)
        watchlist = telegram_watchlist(site, tmp_path, fake)
        fake.go_down()
        data = tmp_path / "data"
        stop = asyncio.Event()
        task = asyncio.create_task(run_daemon(watchlist, data, console=False, stop=stop))
        await until(lambda: captures(data, "dealer") >= 1, task=task)
        stop.set()
        started = time.monotonic()
        assert await asyncio.wait_for(task, 45) == 0
        assert time.monotonic() - started < 10  # not held up by the reconnecting task
    assert not fake.calls  # Telegram never answered
    assert "retrying the connection" in capsys.readouterr().out
    with DataFolderLock(data):
        pass


async def test_a_refused_token_stops_the_start_and_stays_out_of_the_traceback(
    site, tmp_path, monkeypatch
):
    site.channel("dealer")
    with FakeTelegram() as fake:
        wrong = "654321:WRONG-TOKEN-kept-secret"
        monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", wrong)
        watchlist = telegram_watchlist(site, tmp_path, fake)
        data = tmp_path / "data"
        with pytest.raises(WatcherError, match="Telegram refused the bot token") as refused:
            await run_daemon(watchlist, data, console=False, stop=asyncio.Event())
        assert fake.calls_to("getMe")
    shown = "".join(traceback.format_exception(refused.value))
    assert wrong not in shown and "WRONG-TOKEN" not in shown
    assert captures(data, "dealer") == 0
    with DataFolderLock(data):  # released
        pass
