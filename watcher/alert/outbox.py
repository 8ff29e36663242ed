"""The durable outbox sender: delivers queued alerts in order, once, within Telegram's limits.

Events are queued as ``outbox`` rows in the same transaction that stores them (see
:func:`watcher.steps.record.record_events`), so a crash never loses an alert. The sender takes
the due rows per chat, oldest first, and marks each delivered with the platform's message ids.
A burst (a dealer posting 40 items at once, or a backlog after an outage) is folded into
digest messages rather than dropped or flooded.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from watcher.alert.render import photo_shas, render_alert, render_digest
from watcher.alert.routing import ALWAYS
from watcher.alert.sinks import Sink, registered_sinks
from watcher.app import App
from watcher.errors import PermanentAlertError, StoreError, TransientAlertError
from watcher.store.bot_state import is_muted
from watcher.store.db import OutboxRow
from watcher.timeutil import to_iso, utc_now

log = logging.getLogger(__name__)

DIGEST_ABOVE = 5  # more alerts than this waiting for one chat are sent as digests
DIGEST_SIZE = 25  # alerts per digest message
MIN_GAP_S = 1.0  # Telegram: about one message a second per chat
PER_MINUTE = 20  # Telegram: at most 20 messages a minute to a group
BACKOFF_S = (2, 5, 15, 30, 60, 120, 300)
IDLE_WAKE_S = 1.0


def build_sinks(app: App, **given: object) -> dict[str, Sink]:
    """A sink for each section of the watchlist's ``alerts`` that can send; ``given`` passes
    a sink, by name, what the caller already holds (``telegram=TelegramConnection(...)``).
    A sink that cannot send (no token) is left out: its alerts stay in the outbox."""
    sinks, types = {}, registered_sinks()
    for name in app.watchlist.alerts.configured():
        sink = types[name].from_watchlist(app, given.get(name))
        if sink is not None:
            sinks[name] = sink
    return sinks


class ChatRateLimit:
    """At most one message per ``MIN_GAP_S`` and ``PER_MINUTE`` per minute, for one chat."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: deque[float] = deque()

    def delay(self) -> float:
        """Seconds to wait before the next message may go."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        wait = 0.0
        if self._sent:
            wait = max(wait, self._sent[-1] + MIN_GAP_S - now)
        if len(self._sent) >= PER_MINUTE:
            wait = max(wait, self._sent[0] + 60 - now)
        return wait

    def record(self, messages: int) -> None:
        """Count ``messages`` just sent (a media group counts each photo)."""
        now = self._clock()
        self._sent.extend([now] * max(messages, 1))


class OutboxSender:
    """Delivers the outbox, in order per chat, until stopped."""

    def __init__(
        self, app: App, sinks: dict[str, Sink], report: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.sinks = sinks
        self.report = report or _print_to_stderr
        self._limits: dict[tuple[str, str], ChatRateLimit] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New alerts were queued: deliver now rather than at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except StoreError as exc:
                self.report(f"alerts: cannot read the outbox: {exc}")
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=IDLE_WAKE_S, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def flush(self, timeout: float) -> None:
        """Deliver what is due now, for at most ``timeout`` seconds (used at shutdown)."""
        try:
            await asyncio.wait_for(self.deliver_due(), timeout)
        except TimeoutError:
            self.report("alerts: shutdown before every alert went out; they stay queued")

    async def close(self) -> None:
        """Release the sinks' connections."""
        for sink in self.sinks.values():
            await sink.close()

    async def deliver_due(self) -> int:
        """One pass over every chat with due alerts; returns how many alerts went out."""
        due = self.app.store.due_outbox(utc_now())
        jobs = [
            self._deliver_chat(self.sinks[sink], chat, self._unmuted(rows))
            for (sink, chat), rows in due.items()
            if sink in self.sinks
        ]
        return sum(await asyncio.gather(*jobs))

    def _unmuted(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        # A target muted from the chat keeps its alerts queued until the mute ends;
        # problems with watcher itself still go out.
        muted: dict[str, bool] = {}
        kept = []
        for row in rows:
            target = row.event.target
            if target not in muted:
                muted[target] = is_muted(self.app.store, target)
            if row.event.kind in ALWAYS or not muted[target]:
                kept.append(row)
        return kept

    async def _deliver_chat(self, sink: Sink, chat: str, rows: list[OutboxRow]) -> int:
        batches = _batches(rows)
        delivered = 0
        for batch in batches:
            await asyncio.sleep(self._limit(sink, chat).delay())
            try:
                ids = await self._send(sink, chat, batch)
            except TransientAlertError as exc:
                self._retry_later(batch[0], exc)
                return delivered  # keep the order: later alerts wait for this one
            except PermanentAlertError as exc:
                self.app.store.mark_failed([r.id for r in batch], str(exc))
                self.report(f"alerts: {exc}")
                continue
            self._limit(sink, chat).record(len(ids))
            self.app.store.mark_sent(
                [r.id for r in batch], ids, utc_now(), batch[0].id if len(batch) > 1 else None
            )
            delivered += len(batch)
        return delivered

    async def _send(self, sink: Sink, chat: str, batch: list[OutboxRow]) -> list[int]:
        if len(batch) > 1:
            return await sink.send_text(chat, render_digest([r.event for r in batch]))
        event = batch[0].event
        target = self.app.watchlist.find(event.target)
        shot = self.app.store.screenshot_of(event.capture_id) if event.capture_id else None
        # Photos the sink cannot take are left out up front (and the alert says so), rather
        # than letting one bad photo get the whole alert refused. Decoding blocks: a thread.
        skipped = await asyncio.to_thread(sink.unattachable, photo_shas(event))
        platform = target.platform if target else None
        message = render_alert(event, platform, shot, now=datetime.now(UTC), unattached=skipped)
        return await sink.send(chat, message)

    def _retry_later(self, row: OutboxRow, exc: TransientAlertError) -> None:
        delay = exc.retry_after or BACKOFF_S[min(row.attempts, len(BACKOFF_S) - 1)]
        at = to_iso(datetime.now(UTC) + timedelta(seconds=delay))
        self.app.store.mark_retry(row.id, str(exc), at)
        log.warning("alert %s to %s: %s; retrying in %.0fs", row.id, row.chat_id, exc, delay)

    def _limit(self, sink: Sink, chat: str) -> ChatRateLimit:
        return self._limits.setdefault((sink.name, chat), ChatRateLimit())


def _batches(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
    if len(rows) <= DIGEST_ABOVE:
        return [[r] for r in rows]
    return [rows[i : i + DIGEST_SIZE] for i in range(0, len(rows), DIGEST_SIZE)]


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
