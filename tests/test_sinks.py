"""Alert sinks are one class each: registered by name, configured by their own section.

A sink made up here (``memory``) is registered and configured without a line changed in
the watchlist or the outbox: its section is read by its own model, the outbox builds it and
delivers to it. The built-in ``jsonl`` sink is taken through the same path to a file.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import channel_target
from watcher.alert.outbox import OutboxSender, build_sinks
from watcher.alert.render import AlertMessage
from watcher.alert.sinks import SINKS, register_sink, registered_sinks
from watcher.daemon import describe_start
from watcher.errors import WatchlistError
from watcher.pipeline import run_capture
from watcher.watchlist import AlertSection, parse_watchlist

ONE_TARGET = "targets:\n  - name: a\n    platform: telegram\n    url: https://t.me/s/abc\n"


class MemoryAlerts(AlertSection):
    """``alerts.memory``: the room its alerts are kept for."""

    room: str

    def addresses(self) -> list[str]:
        return [self.room]


class MemorySink:
    """Keeps what it is sent, by room."""

    name = "memory"
    config_model = MemoryAlerts

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    @classmethod
    def from_watchlist(cls, app, given=None) -> MemorySink:
        return given or cls()

    async def send(self, chat_id: str, message: AlertMessage) -> list[int]:
        self.sent.append((chat_id, message.html))
        return [len(self.sent)]

    async def send_text(self, chat_id: str, html: str) -> list[int]:
        return await self.send(chat_id, AlertMessage(html, html))

    def unattachable(self, shas: tuple[str, ...]) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        pass


@pytest.fixture
def memory_sink():
    register_sink(MemorySink)
    yield MemorySink
    del SINKS[MemorySink.name]


def problems_in(text: str) -> list:
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text)
    return caught.value.problems


async def new_post_queued(site, make_app, alerts: str):
    """An app whose watchlist has ``alerts``, with one new post's alert in the outbox."""
    site.channel("dealer")
    site.add_post("dealer", "old post")
    app = make_app(channel_target("dealer", f"{site.base_url}/s/dealer"), header=alerts)
    target = app.watchlist.target("dealer")
    await run_capture(app, target)  # the baseline
    site.add_post("dealer", "ivory bangle, inbox", images=[site.add_photo("p", seed=5)])
    await run_capture(app, target)
    return app


def test_the_built_in_sinks_are_registered_by_one_import() -> None:
    assert {"telegram", "jsonl"} <= set(registered_sinks())


async def test_a_sink_registered_elsewhere_is_configured_and_delivered_to(
    site, make_app, memory_sink
) -> None:
    app = await new_post_queued(site, make_app, "alerts:\n  memory:\n    room: desk-7\n")
    section = app.watchlist.alerts.configured()["memory"]
    assert isinstance(section, MemoryAlerts) and section.room == "desk-7"

    memory = MemorySink()
    sinks = build_sinks(app, memory=memory)
    assert sinks == {"memory": memory}
    assert await OutboxSender(app, sinks, report=lambda m: None).deliver_due() == 1
    ((room, html),) = memory.sent
    assert room == "desk-7" and "<b>ivory</b> bangle, inbox" in html


def test_a_registered_sink_section_is_checked_by_its_own_model(memory_sink) -> None:
    (problem,) = problems_in(ONE_TARGET + "alerts:\n  memory:\n    kinds: [new_post]\n")
    assert problem.line == 6 and problem.where == "alerts.memory.room"
    assert "`room` is missing" in problem.message

    (kind,) = problems_in(ONE_TARGET + "alerts:\n  memory:\n    room: r\n    kinds: [nwe_post]\n")
    assert kind.line == 8 and "did you mean `new_post`?" in kind.fix


def test_an_unknown_sink_is_named_with_the_known_ones(memory_sink) -> None:
    (problem,) = problems_in(ONE_TARGET + "alerts:\n  memroy:\n    room: r\n")
    assert problem.line == 6
    assert "unknown alert sink `memroy`" in problem.message
    assert "did you mean `memory`?" in problem.fix
    assert "jsonl" in problem.fix and "telegram" in problem.fix


def test_a_sink_unregistered_is_unknown_again(memory_sink) -> None:
    del SINKS["memory"]
    try:
        (problem,) = problems_in(ONE_TARGET + "alerts:\n  memory:\n    room: r\n")
        assert "unknown alert sink `memory`" in problem.message
    finally:
        register_sink(MemorySink)


async def test_the_jsonl_sink_appends_one_line_per_alert(site, make_app, tmp_path) -> None:
    app = await new_post_queued(site, make_app, "alerts:\n  jsonl:\n    path: out/alerts.jsonl\n")
    (tmp_path / "out").mkdir()
    sender = OutboxSender(app, build_sinks(app), report=lambda m: None)

    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0  # nothing twice
    (line,) = (tmp_path / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    alert = json.loads(line)
    assert "ivory bangle" in alert["text"] and "<" not in alert["text"]
    assert "<b>ivory</b>" in alert["html"]
    (photo,) = alert["photos"]
    assert app.blobs.read(photo)  # the photo is named by its hash in the blob store
    assert alert["sent_at"].endswith("Z")


async def test_a_jsonl_file_that_cannot_be_written_fails_the_alert_with_the_fix(
    site, make_app, tmp_path
) -> None:
    app = await new_post_queued(site, make_app, "alerts:\n  jsonl:\n    path: nowhere/a.jsonl\n")
    reports: list[str] = []
    sender = OutboxSender(app, build_sinks(app), report=reports.append)

    assert await sender.deliver_due() == 0
    (report,) = reports
    assert "nowhere" in report and "make sure its folder exists" in report
    status = app.store.db.execute("SELECT status FROM outbox WHERE sink = 'jsonl'").fetchall()
    assert status == [("failed",)]


def test_watcher_run_names_every_configured_sink_at_start(tmp_path) -> None:
    base = ONE_TARGET + "alerts:\n  jsonl:\n    path: a.jsonl\n"
    with_telegram = parse_watchlist(base + "  telegram:\n    chat_ids: [-100123]\n")
    line = describe_start(parse_watchlist(base), tmp_path, None)
    assert line.endswith("alerts to: jsonl")
    assert describe_start(with_telegram, tmp_path, None).endswith(
        "alerts to: jsonl (telegram: no token)"
    )
    assert describe_start(with_telegram, tmp_path, "token").endswith(
        "alerts to: jsonl and telegram chats [-100123]"
    )
    alone = describe_start(parse_watchlist(ONE_TARGET), tmp_path, None)
    assert alone.endswith("alerts to: console only (no telegram in the watchlist)")
