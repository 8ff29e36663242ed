"""Browsers on other machines: captures spread over the slots of remote endpoints.

The watchlist's ``browsers:`` (or ``WATCHER_BROWSERS``) lists Playwright servers
(``playwright run-server`` / ``launchServer``, reached with ``connect``) and Chromium DevTools
endpoints (``--remote-debugging-port``, browserless; ``connect_over_cdp``), each with its
slots. A :class:`BrowserPool` hands each capture a fresh context on the endpoint with the
most free slots; everything a capture does in that context (the network guard's route, the
session's profile, the recorder) is the same as on the local browser, because each endpoint
is a :class:`RemoteBrowser`, the local :class:`Browser` with ``connect`` for ``launch``.

An endpoint that cannot be reached, or that dies under a capture, is marked down with a
backoff and tried again later; the capture itself is taken again on another endpoint
(:func:`with_endpoint_retries`) and the lost attempt is kept in its metadata. An endpoint's
address may carry a token (browserless ``?token=``, a secret ``wsPath``): only its name or
``host:port`` is ever shown, and the full URL is registered for redaction from every log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from playwright.async_api import BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from pydantic import ValidationError

from watcher.capture.browser import (
    BROWSER_CALL_TIMEOUT_S,
    Browser,
    BrowserInfo,
    filter_driver_environment,
)
from watcher.capture.netguard import NetworkGuard
from watcher.errors import BrowserError, CaptureError, WatcherError
from watcher.secrets import redact, register_secret
from watcher.timeutil import utc_now
from watcher.watchlist import BrowserEndpoint, Watchlist, address_of

if TYPE_CHECKING:
    from watcher.capture.sessions import Session

log = logging.getLogger(__name__)

ENV_VAR = "WATCHER_BROWSERS"
STATE_FILE = "browsers.json"
CONNECT_TIMEOUT_S = 20.0
# A live endpoint answers a DevTools call at once; one that does not within this is gone.
PROBE_TIMEOUT_S = 5.0
# Down: tried again after 5 s, doubling per failure, at most every 5 minutes.
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0
# With every endpoint down, a capture waits this long for one to be tried again, then fails.
WAIT_FOR_DOWN_S = 30.0
# One capture is attempted on at most this many endpoints (the first and two retries).
MAX_ATTEMPTS = 3
CAPTURE, CHECK = "capture", "check"
T = TypeVar("T")


# -- configuration ---------------------------------------------------------------------------
def configured_endpoints(
    watchlist: Watchlist, environ: Mapping[str, str] | None = None
) -> list[BrowserEndpoint]:
    """The remote browsers to use: ``WATCHER_BROWSERS`` when set, else ``browsers:``.

    Every endpoint's URL is registered as a secret, so a token in it never reaches a log.
    """
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    endpoints = parse_endpoints(value) if value else list(watchlist.browsers)
    for endpoint in endpoints:
        _register_url_secrets(endpoint.url)
    return endpoints


def parse_endpoints(value: str) -> list[BrowserEndpoint]:
    """``WATCHER_BROWSERS``: endpoints separated by commas or new lines, each its URL then
    optional ``slots=N``, ``kind=playwright|cdp``, ``name=NAME``; e.g.
    ``ws://10.0.0.5:3000/ slots=4, http://10.0.0.6:9222 kind=cdp slots=2``."""
    endpoints = []
    for n, item in enumerate(value.replace("\n", ",").split(","), start=1):
        words = item.split()
        if not words:
            continue
        fields: dict[str, Any] = {"url": words[0]}
        for word in words[1:]:
            key, sep, val = word.partition("=")
            if not sep or key not in ("slots", "kind", "name"):
                raise WatcherError(
                    f"{ENV_VAR}, browser {n}: `{word}` is not understood. Fix: after the "
                    "address write only slots=N, kind=playwright or kind=cdp, name=NAME, e.g. "
                    f"{ENV_VAR}='ws://10.0.0.5:3000/ slots=4, http://10.0.0.6:9222 slots=2'"
                )
            fields[key] = val
        try:
            endpoints.append(BrowserEndpoint.model_validate(fields))
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise WatcherError(f"{ENV_VAR}, browser {n} ({_shown(words[0])}): {problems}") from None
    return endpoints


def _problem(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    where = ".".join(str(p) for p in error.get("loc", ()))
    fix = f". Fix: {ctx['fix']}" if "fix" in ctx else ""
    return f"{where}: {redact(str(error.get('msg', '')))}{fix}"


def _shown(url: str) -> str:
    return address_of(url) if "://" in url else "?"


def _register_url_secrets(url: str) -> None:
    """The parts of an endpoint URL that may be a credential: all of it, its path (a
    Playwright server's secret ``wsPath``), its query values (browserless ``?token=``) and
    any password."""
    parts = urlsplit(url)
    register_secret(url)
    register_secret(parts.path.strip("/"))
    register_secret(parts.password)
    for _key, value in parse_qsl(parts.query):
        register_secret(value)


def playwright_version() -> str:
    try:
        return version("playwright")
    except PackageNotFoundError:  # run from a source tree without metadata
        return "unknown"


# -- one remote browser ------------------------------------------------------------------------
class RemoteBrowser(Browser):
    """A browser on another machine, reached over the network rather than launched.

    Contexts, the network guard's route, sessions and reuse work as on :class:`Browser`.
    What differs: :meth:`start` connects; closing only disconnects (the browser belongs to
    its host); it is never recycled from here (its host restarts it); ``host_rules`` and
    launch flags cannot be set on a browser someone else started; no guard proxy (it listens
    on this machine's loopback, which the browser host cannot reach): the route guard checks
    each request's first URL, and the host's own firewall must deny private networks
    (docs/deploy.md, the unit's ``IPAddressDeny``).
    """

    local_proxy = False

    def __init__(
        self,
        endpoint: BrowserEndpoint,
        driver: Callable[[], Awaitable[Playwright]],
        max_concurrent: int,
        images: bool = True,
        reuse_contexts: bool = False,
    ) -> None:
        super().__init__(
            max_concurrent=max_concurrent, images=images, reuse_contexts=reuse_contexts
        )
        self.endpoint = endpoint
        self._driver = driver

    def info_for(self, context: BrowserContext) -> BrowserInfo:
        return BrowserInfo(
            self.endpoint.label(),
            self.endpoint.protocol(),
            address_of(self.endpoint.url),
            self.version,
            self.user_agent,
        )

    async def start(self) -> None:
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return
            playwright = await self._driver()
            chromium = playwright.chromium
            timeout_ms = CONNECT_TIMEOUT_S * 1000
            try:
                if self.endpoint.protocol() == "cdp":
                    browser = await chromium.connect_over_cdp(self.endpoint.url, timeout=timeout_ms)
                else:
                    browser = await chromium.connect(self.endpoint.url, timeout=timeout_ms)
            except PlaywrightError as exc:
                raise BrowserError(connect_failure_message(self.endpoint, exc)) from exc
            self._browser = browser
            self.launches += 1
            self._contexts_since_launch = 0
            self._idle.clear()
            try:
                async with asyncio.timeout(BROWSER_CALL_TIMEOUT_S):
                    self.user_agent = await self._default_user_agent()
            except (PlaywrightError, TimeoutError) as exc:
                self._browser = None
                raise BrowserError(
                    f"browser {self.endpoint.label()} connected but could not open a page "
                    f"({_first_line(exc)}); check the browser host's log"
                ) from exc

    async def close(self) -> None:
        self._idle.clear()
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(PlaywrightError, TimeoutError):  # gone already: fine
                await asyncio.wait_for(browser.close(), BROWSER_CALL_TIMEOUT_S)

    async def _abandon(self) -> None:
        # A remote browser that stopped answering: drop the connection; the next capture
        # connects again (the shared driver serves the other endpoints and stays).
        self._browser = None
        self._idle.clear()

    async def _recycle_if_due(self) -> None:
        return  # the host restarts its own browser; disconnecting frees nothing there

    async def alive(self) -> bool:
        """Whether the endpoint still answers (a DevTools call on the connection)."""
        browser = self._browser
        if browser is None or not browser.is_connected():
            return False
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                session = await browser.new_browser_cdp_session()
                await session.detach()
        except (PlaywrightError, TimeoutError):
            return False
        return True


def connect_failure_message(endpoint: BrowserEndpoint, exc: PlaywrightError) -> str:
    """Why an endpoint could not be reached, in words, without its token."""
    text = redact(exc.message or str(exc))
    name = f"browser {endpoint.label()} ({endpoint.protocol()} at {address_of(endpoint.url)})"
    if "version mismatch" in text.lower() or "428" in text:
        return (
            f"{name} runs another Playwright version than watcher ({playwright_version()}): "
            f"install playwright {playwright_version()} on the browser host and restart "
            "its server (docs/deploy.md, Browser hosts)"
        )
    if "ECONNREFUSED" in text or ("connect" in text.lower() and "refused" in text.lower()):
        return (
            f"{name} refused the connection: is its server running, and the SSH tunnel or "
            "private network to it up? (docs/deploy.md, Browser hosts)"
        )
    return f"{name} could not be reached ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    lines = redact(message).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- the pool ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LostAttempt:
    """A capture's attempt on an endpoint that died under it (kept in its metadata)."""

    endpoint: str
    host: str
    error: str
    at: str

    def to_json(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "host": self.host, "error": self.error, "at": self.at}


class EndpointLost(BrowserError):
    """The endpoint a capture ran on died under it: take the capture again elsewhere."""

    def __init__(self, attempt: LostAttempt) -> None:
        self.attempt = attempt
        super().__init__(
            f"browser {attempt.endpoint} ({attempt.host}) was lost mid-capture: {attempt.error}"
        )


@dataclass(eq=False)
class EndpointState:
    """One endpoint, its browsers (one per lane: captures, light checks) and its health."""

    config: BrowserEndpoint
    browsers: dict[str, RemoteBrowser] = field(default_factory=dict)
    in_use: dict[str, int] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    down_until: float = 0.0  # time.monotonic(); 0: up
    last_error: str | None = None
    last_error_at: str | None = None
    lost: int = 0  # captures it died under

    @property
    def label(self) -> str:
        return self.config.label()

    def to_json(self, checks_per_slot: int) -> dict[str, Any]:
        left = self.down_until - time.monotonic()
        return {
            "name": self.label,
            "kind": self.config.protocol(),
            "host": address_of(self.config.url),
            "slots": self.config.slots,
            "in_use": self.in_use.get(CAPTURE, 0),
            "check_slots": self.config.slots * checks_per_slot,
            "checks_in_use": self.in_use.get(CHECK, 0),
            "state": "down"
            if self.failures
            else "up"
            if any(b.launches for b in self.browsers.values())
            else "not connected yet",
            "retry_in_s": round(left) if self.failures and left > 0 else 0,
            "captures": self.served.get(CAPTURE, 0),
            "checks": self.served.get(CHECK, 0),
            "lost": self.lost,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "version": next((b.version for b in self.browsers.values() if b.version), ""),
        }


class _Shared:
    """What the capture and the check lanes of one pool share: the endpoints' health, one
    Playwright driver, and who is told when anything changes."""

    def __init__(self, endpoints: list[BrowserEndpoint], checks_per_slot: int = 2) -> None:
        self.states = [EndpointState(e) for e in _unique_names(endpoints)]
        self.checks_per_slot = checks_per_slot
        self.listeners: list[Callable[[], None]] = []
        self._playwright: Playwright | None = None
        self._lock = asyncio.Lock()
        self.open_lanes = 0

    async def driver(self) -> Playwright:
        async with self._lock:
            if self._playwright is None:
                filter_driver_environment()
                self._playwright = await async_playwright().start()
            return self._playwright

    async def stop(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):  # the driver may be gone already
                await asyncio.wait_for(playwright.stop(), BROWSER_CALL_TIMEOUT_S)

    def changed(self) -> None:
        for listener in self.listeners:
            listener()

    def snapshot(self) -> list[dict[str, Any]]:
        return [s.to_json(self.checks_per_slot) for s in self.states]


def _unique_names(endpoints: list[BrowserEndpoint]) -> list[BrowserEndpoint]:
    """Two endpoints with one label (same host:port twice) get ``-2``, ``-3``: the status
    and each capture's metadata must tell them apart."""
    seen: dict[str, int] = {}
    out = []
    for e in endpoints:
        label = e.label()
        seen[label] = seen.get(label, 0) + 1
        out.append(
            e if seen[label] == 1 else e.model_copy(update={"name": f"{label}-{seen[label]}"})
        )
    return out


class BrowserPool:
    """Remote browsers used as one: the interface of :class:`Browser` for captures.

    ``async with pool.context(session, guard) as ctx`` opens a context on the endpoint with
    the most free slots (the least used first among equals), waiting while every slot is
    busy. :meth:`info_for` says which endpoint and browser version a context is on.
    """

    def __init__(
        self,
        endpoints: list[BrowserEndpoint],
        *,
        lane: str = CAPTURE,
        shared: _Shared | None = None,
        allow_private_network: bool = False,
    ) -> None:
        if not endpoints and shared is None:
            raise ValueError("a browser pool needs at least one endpoint")
        self.shared = shared or _Shared(endpoints)
        self.lane = lane
        self.allow_private_network = allow_private_network
        per_slot = self.shared.checks_per_slot if lane == CHECK else 1
        for state in self.shared.states:
            state.browsers[lane] = RemoteBrowser(
                state.config,
                self.shared.driver,
                max_concurrent=state.config.slots * per_slot,
                images=True,  # a browser someone else launched cannot be told not to load them
                reuse_contexts=lane == CHECK,
            )
            state.in_use.setdefault(lane, 0)
            state.served.setdefault(lane, 0)
        self._cond = asyncio.Condition()
        self._owner: dict[BrowserContext, EndpointState] = {}
        self.shared.open_lanes += 1
        self.executable = None
        self.recycle_after = 0

    # What the app and the steps read of a browser.
    @property
    def max_concurrent(self) -> int:
        return sum(s.browsers[self.lane].max_concurrent for s in self.shared.states)

    @property
    def states(self) -> list[EndpointState]:
        return self.shared.states

    @property
    def user_agent(self) -> str:
        """The user agent of the first endpoint connected to ("" before any)."""
        return next((b.user_agent for b in self._browsers() if b.user_agent), "")

    @property
    def version(self) -> str:
        """The browser version of the first endpoint connected to ("" before any)."""
        return next((b.version for b in self._browsers() if b.version), "")

    def _browsers(self) -> list[RemoteBrowser]:
        return [state.browsers[self.lane] for state in self.shared.states]

    def for_checks(self) -> BrowserPool:
        """The light checks' lane over the same endpoints (twice the slots, contexts reused)."""
        return BrowserPool(
            [], lane=CHECK, shared=self.shared, allow_private_network=self.allow_private_network
        )

    def guard(self, allow_private: bool | None = None) -> NetworkGuard:
        allowed = self.allow_private_network if allow_private is None else allow_private
        return NetworkGuard(allow_private=allowed)

    def info_for(self, context: BrowserContext) -> BrowserInfo:
        state = self._owner[context]
        return state.browsers[self.lane].info_for(context)

    async def start(self) -> None:
        """Connect to every endpoint now (``watcher run`` starts without waiting on them)."""
        for state in self.shared.states:
            try:
                await state.browsers[self.lane].start()
            except BrowserError as exc:
                self._down(state, exc)

    async def close(self) -> None:
        for state in self.shared.states:
            await state.browsers[self.lane].close()
        self.shared.open_lanes -= 1
        if self.shared.open_lanes <= 0:
            await self.shared.stop()

    async def __aenter__(self) -> BrowserPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def context(
        self, session: Session | None = None, guard: NetworkGuard | None = None
    ) -> AsyncIterator[BrowserContext]:
        """A context on a free endpoint; EndpointLost when that endpoint dies under it."""
        guard = guard or self.guard()
        while True:
            state = await self._acquire()
            browser = state.browsers[self.lane]
            stack = contextlib.AsyncExitStack()
            try:
                ctx = await stack.enter_async_context(browser.context(session, guard))
            except BrowserError as exc:  # unreachable, or it would not open a tab: next one
                await self._release(state)
                self._down(state, exc)
                continue
            break
        self._up(state)
        self._owner[ctx] = state
        try:
            async with stack:  # closes the context on the endpoint (if it is still there)
                try:
                    yield ctx
                except Exception as exc:  # boundary: did the capture fail, or its browser?
                    if await browser.alive():
                        raise
                    state.lost += 1
                    self._down(state, exc, "died under a capture: ")
                    lost = LostAttempt(
                        state.label, address_of(state.config.url), _first_line(exc), utc_now()
                    )
                    raise EndpointLost(lost) from exc
        finally:
            self._owner.pop(ctx, None)
            await self._release(state)

    # -- slots and health ------------------------------------------------------------------------
    async def _acquire(self) -> EndpointState:
        async with self._cond:
            while True:
                now = time.monotonic()
                usable = [s for s in self.shared.states if s.down_until <= now]
                free = [s for s in usable if s.in_use[self.lane] < self._slots(s)]
                if free:
                    chosen = min(free, key=self._preference)
                    chosen.in_use[self.lane] += 1
                    chosen.served[self.lane] += 1
                    self.shared.changed()
                    return chosen
                if usable:  # every slot busy: wait for one
                    await self._cond.wait()
                    continue
                wait = min(s.down_until for s in self.shared.states) - now
                if wait > WAIT_FOR_DOWN_S:
                    raise BrowserError(self._none_available())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), wait)

    def _slots(self, state: EndpointState) -> int:
        return state.browsers[self.lane].max_concurrent

    def _preference(self, state: EndpointState) -> tuple[int, float, int]:
        # Healthy before one being tried again; then the emptiest; then the least used, so
        # captures one after another take turns.
        return (
            state.failures > 0,
            state.in_use[self.lane] / self._slots(state),
            state.served[self.lane],
        )

    async def _release(self, state: EndpointState) -> None:
        async with self._cond:
            state.in_use[self.lane] -= 1
            self._cond.notify_all()
        self.shared.changed()

    def _down(self, state: EndpointState, exc: BaseException, what: str = "") -> None:
        state.failures += 1
        backoff = min(BACKOFF_FIRST_S * 2 ** (state.failures - 1), BACKOFF_MAX_S)
        state.down_until = time.monotonic() + backoff
        state.last_error = what + _first_line(exc)
        state.last_error_at = utc_now()
        log.warning(
            "browser %s is down (%s); trying it again in %.0f s",
            state.label,
            state.last_error,
            backoff,
        )
        self.shared.changed()

    def _up(self, state: EndpointState) -> None:
        if state.failures:
            log.info("browser %s is back after %d failure(s)", state.label, state.failures)
            state.failures, state.down_until = 0, 0.0
            self.shared.changed()

    def _none_available(self) -> str:
        now = time.monotonic()
        each = "; ".join(
            f"{s.label}: {s.last_error or 'down'} (tried again in {s.down_until - now:.0f} s)"
            for s in self.shared.states
        )
        return (
            f"no browser host can take a capture now ({each}). Check that the browser "
            "servers run and their tunnels or network are up (`watcher status` lists them)"
        )

    # -- the state ``watcher status`` reads ----------------------------------------------------
    def publish(self, data_dir: Path) -> None:
        """Keep ``DATA/browsers.json`` up to date with every change of slots and health."""
        path = data_dir / STATE_FILE

        def write() -> None:
            try:
                write_state(path, self.shared.snapshot())
            except OSError as exc:  # only status display depends on it: warn, keep capturing
                log.warning("cannot write %s: %s", path, exc)

        self.shared.listeners.append(write)
        write()


async def with_endpoint_retries(
    work: Callable[[], Awaitable[T]],
) -> tuple[T, tuple[LostAttempt, ...]]:
    """Run ``work`` (one attempt at a capture); when its endpoint dies under it, run it
    again (on another endpoint: the lost one is down), up to :data:`MAX_ATTEMPTS` in all.

    Returns the result and the lost attempts, which the capture's metadata records.
    """
    lost: list[LostAttempt] = []
    while True:
        try:
            return await work(), tuple(lost)
        except EndpointLost as exc:
            lost.append(exc.attempt)
            log.warning("%s; taking the capture again on another browser", exc)
            if len(lost) >= MAX_ATTEMPTS:
                raise CaptureError("browser", _lost_message(lost)) from exc
        except BrowserError as exc:
            if not lost:
                raise
            raise CaptureError("browser", f"{exc}; before that, {_lost_message(lost)}") from exc


def _lost_message(lost: list[LostAttempt]) -> str:
    each = "; ".join(f"{a.endpoint} ({a.error})" for a in lost)
    return f"the browser was lost mid-capture {len(lost)} time(s): {each}"


def write_state(path: Path, endpoints: list[dict[str, Any]]) -> None:
    """Write the pool's state atomically so ``watcher status`` never reads half a file."""
    state = {"pid": os.getpid(), "updated_at": utc_now(), "endpoints": endpoints}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_state(data_dir: Path) -> dict[str, Any]:
    """The last state a ``watcher run`` wrote (empty when none); ``running``: whether the
    process that wrote it is still there."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    pid = state.get("pid")
    running = False
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
            running = True
        except ProcessLookupError:
            running = False
        except PermissionError:  # another user's process: it exists
            running = True
    return {**state, "running": running}
