"""A polite visitor: per-host limits on how many pages are read at once and how close
together, and a host that answered 429 (or 503 with ``Retry-After``) left alone until it said or,
when it did not say, for a backoff that doubles with each refusal in a row.

Every page load of a capture or check asks its host's gate first (:meth:`HostGates.visit`).
The limits come from the watchlist's ``hosts:`` (by host name), else from the platform's
defaults below: a platform that bans accounts for speed gets a slow default.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from watcher.errors import CaptureError
from watcher.timeutil import to_iso


@dataclass(frozen=True, slots=True)
class HostLimit:
    """Pages of one host read at once, and the least time between two starting."""

    concurrent: int = 2
    spacing: float = 0.5


# Telegram's public previews are made to be read by many (5,000 channels every 15 min is
# 5.6 a second: 0.1 s apart still leaves room); Facebook and VK flag accounts that move at
# machine speed.
PLATFORM_LIMITS: dict[str, HostLimit] = {
    "telegram": HostLimit(concurrent=4, spacing=0.1),
    "facebook": HostLimit(concurrent=1, spacing=5.0),
    "vk": HostLimit(concurrent=1, spacing=3.0),
}
DEFAULT_LIMIT = HostLimit()
# Backoff after a 429/503 that gave no Retry-After: 1 min, doubling, at most 1 h. A
# Retry-After longer than MAX_WAIT_S is cut to it (a typo must not silence a site for weeks).
FIRST_BACKOFF_S = 60.0
MAX_BACKOFF_S = 3600.0
MAX_WAIT_S = 6 * 3600.0


class HostWaiting(CaptureError):
    """The host asked us to wait past the time this capture may wait."""

    def __init__(self, host: str, until: datetime) -> None:
        super().__init__(
            "rate_limited",
            f"{host} asked watcher to slow down (HTTP 429/503); it is left alone until "
            f"{to_iso(until)} and the target is captured after that",
        )
        self.host, self.until = host, until


@dataclass
class _Gate:
    limit: HostLimit
    slots: asyncio.Semaphore
    spacing_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_start: float = 0.0  # monotonic
    not_before: float = 0.0  # monotonic: the host's Retry-After or backoff ends
    refusals: int = 0  # 429/503 in a row
    users: int = 0  # visits holding or waiting for a slot


class HostGates:
    """The per-host gates of one process (shared by every capture and check)."""

    def __init__(self, configured: Mapping[str, HostLimit] | None = None) -> None:
        self.configured = dict(configured or {})
        self._gates: dict[str, _Gate] = {}

    def configure(self, configured: Mapping[str, HostLimit]) -> None:
        """New limits from a reloaded watchlist; a host's wait (Retry-After) is kept."""
        if dict(configured) == self.configured:
            return
        self.configured = dict(configured)
        for host, gate in list(self._gates.items()):
            if not gate.users and gate.not_before <= time.monotonic():
                del self._gates[host]  # idle: made again with the new limit when next used

    def limit_for(self, host: str, platform: str) -> HostLimit:
        """The watchlist's limit for ``host``, else ``platform``'s default."""
        return self.configured.get(host) or PLATFORM_LIMITS.get(platform, DEFAULT_LIMIT)

    def waiting_until(self, host: str) -> datetime | None:
        """When ``host``'s Retry-After (or backoff) ends, if it has not yet."""
        gate = self._gates.get(_key(host))
        if gate is None:
            return None
        left = gate.not_before - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=left) if left > 0 else None

    @asynccontextmanager
    async def visit(self, host: str, platform: str, max_wait: float) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots, started no sooner than its spacing allows.

        A host waiting out a Retry-After for longer than ``max_wait`` seconds raises
        :class:`HostWaiting` at once: no request reaches it before its time.
        """
        key = _key(host)
        gate = self._gate(key, platform)
        await self._wait_out(key, gate, max_wait)
        gate.users += 1
        try:
            async with gate.slots:
                async with gate.spacing_lock:
                    delay = gate.next_start - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    gate.next_start = time.monotonic() + gate.limit.spacing
                # A 429 that arrived while this one waited for its slot counts for it too.
                await self._wait_out(key, gate, max_wait)
                yield
        finally:
            gate.users -= 1

    def rate_limited(self, host: str, platform: str, retry_after: float | None) -> datetime:
        """``host`` answered 429/503: keep away until it said, or for the backoff; returns
        until when."""
        gate = self._gate(_key(host), platform)
        gate.refusals += 1
        if retry_after is None:
            wait = min(FIRST_BACKOFF_S * 2 ** (gate.refusals - 1), MAX_BACKOFF_S)
        else:
            wait = min(max(retry_after, 0.0), MAX_WAIT_S)
        gate.not_before = max(gate.not_before, time.monotonic() + wait)
        return datetime.now(UTC) + timedelta(seconds=gate.not_before - time.monotonic())

    def answered(self, host: str) -> None:
        """``host`` answered normally: its backoff starts again from the first step."""
        gate = self._gates.get(_key(host))
        if gate is not None:
            gate.refusals = 0

    def _gate(self, key: str, platform: str) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            limit = self.limit_for(key, platform)
            gate = self._gates[key] = _Gate(limit, asyncio.Semaphore(limit.concurrent))
        return gate

    async def _wait_out(self, key: str, gate: _Gate, max_wait: float) -> None:
        left = gate.not_before - time.monotonic()
        if left <= 0:
            return
        if left > max_wait:
            raise HostWaiting(key, datetime.now(UTC) + timedelta(seconds=left))
        await asyncio.sleep(left)


def _key(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()
