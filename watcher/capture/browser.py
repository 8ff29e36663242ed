"""The browser: one Chromium per process, a fresh context per capture, a global limit.

Playwright cannot download its own browser on the team's machines, so the system Chromium is
found automatically (``WATCHER_CHROMIUM`` first) and Playwright's managed browser is only the
fallback. Playwright's exceptions are translated here and in :mod:`watcher.capture.page`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Browser as PlaywrightBrowser
from playwright.async_api import BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from watcher.capture.guardproxy import GuardProxy
from watcher.capture.netguard import NetworkGuard
from watcher.errors import BrowserError
from watcher.secrets import redact

if TYPE_CHECKING:
    from watcher.capture.sessions import Session

# Without these Chromium tries to reach Google's services and stalls on a closed network.
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    # WebRTC's UDP goes around an HTTP proxy, and so around the guard proxy: none of it.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 900}
# A hung Chromium (stopped, swapping, deadlocked) never answers: calls that have no timeout
# of their own (new_context, close) are bounded by this, then the browser is given up.
BROWSER_CALL_TIMEOUT_S = 20.0
LOCALE = "en-US"
# Environment variables that hold secrets (the bot token, keys, passwords): the Playwright
# driver and Chromium never get them. A page that exploits the renderer, or a crash dump,
# must not find the team's bot token in the process environment.
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|PRIVATE_?KEY|CREDENTIAL|COOKIE|SESSION|AUTH",
    re.IGNORECASE,
)
# Ours that the browser or driver need; every other WATCHER_* stays with watcher.
_WATCHER_PASSED = frozenset({"WATCHER_CHROMIUM"})


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: ours) without secrets: for the Playwright driver and Chromium.

    Dropped: names that say they hold a secret, watcher's own settings, and any variable
    whose value contains a secret registered for redaction (:mod:`watcher.secrets`).
    """
    source = os.environ if environ is None else environ
    kept = {}
    for name, value in source.items():
        if _SECRET_NAME.search(name) or (
            name.upper().startswith("WATCHER_") and name.upper() not in _WATCHER_PASSED
        ):
            continue
        if redact(value) != value:
            continue
        kept[name] = value
    return kept


def filter_driver_environment() -> None:
    """Make Playwright start its driver (node) with :func:`child_environment`.

    Playwright copies ``os.environ`` for the driver in ``transport.get_driver_env`` and has
    no option to pass another; replacing that one function is narrower than emptying
    ``os.environ`` around the start while other tasks run. The test reading the driver's
    ``/proc/<pid>/environ`` fails if an upgrade moves it.
    """
    from playwright._impl import transport

    original = transport.get_driver_env
    if getattr(original, "watcher_filtered", False):
        return

    def filtered() -> dict[str, str]:
        return child_environment(original())

    filtered.watcher_filtered = True  # type: ignore[attr-defined]
    transport.get_driver_env = filtered


def find_chromium() -> str | None:
    """Path of the Chromium to use, or None to let Playwright use its managed browser.

    ``WATCHER_CHROMIUM`` wins; a value that is not an executable file is an error rather than
    a silent fallback, because the operator asked for that browser.
    """
    configured = os.environ.get("WATCHER_CHROMIUM")
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise BrowserError(
                f"WATCHER_CHROMIUM is set to {configured!r}, which is not an executable file. "
                "Point it at a Chromium binary (e.g. /usr/bin/chromium) or unset it."
            )
        return configured
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_args(images: bool = True, host_rules: Mapping[str, str] | None = None) -> list[str]:
    """Chromium flags; ``--no-sandbox`` only when running as root, where the sandbox fails.

    Without ``images`` Chromium neither fetches nor paints any image (``<img>`` or CSS): the
    light checks' browser, for which a page's photos are most of its cost. ``host_rules``
    (name -> address) are resolved so by Chromium and by the network guard alike.
    """
    args = list(CHROMIUM_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    if not images:
        args.append("--blink-settings=imagesEnabled=false")
    if host_rules:
        rules = ", ".join(f"MAP {name} {address}" for name, address in host_rules.items())
        args.append(f"--host-resolver-rules={rules}")
    return args


@dataclass(frozen=True, slots=True)
class BrowserInfo:
    """Which browser took a capture: evidence must say which machine saw the page."""

    endpoint: str  # "local", or the name of a remote endpoint (watchlist `browsers:`)
    kind: str  # local | playwright | cdp
    host: str  # this machine's name, or the remote endpoint's host:port (never its token)
    version: str
    user_agent: str

    def to_json(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "host": self.host,
            "version": self.version,
            "user_agent": self.user_agent,
        }


class Browser:
    """A shared Chromium with a limit on concurrent captures.

    Use ``async with browser.context() as ctx`` for each capture: the context is fresh (no
    cookies or cache from other targets) and closed afterwards.
    """

    # Contexts reach the network through a guard proxy on this machine's loopback. A browser
    # on another machine cannot reach it (its 127.0.0.1 is its own): there, the route guard
    # checks each request's first URL and the host's own firewall the rest (docs/deploy.md).
    local_proxy = True

    def __init__(
        self,
        max_concurrent: int = 2,
        executable: str | None = None,
        recycle_after: int = 200,
        images: bool = True,
        reuse_contexts: bool = False,
        allow_private_network: bool = False,
        host_rules: Mapping[str, str] | None = None,
        guard_hosts: Mapping[str, str] | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        # The policy of contexts opened without a guard of their own (probe, session check):
        # a capture passes its target's guard.
        self.allow_private_network = allow_private_network
        # Names Chromium resolves by rule (``--host-resolver-rules``), and the addresses the
        # network guard judges them by: the same unless ``guard_hosts`` says otherwise. Tests
        # send a name to the loopback site while the guard judges it as the 10.x address it
        # stands for, so a guard that failed would show as a request on the fixture site.
        self.host_rules = dict(host_rules or {})
        self.guard_hosts = dict(self.host_rules if guard_hosts is None else guard_hosts)
        self.reuse_contexts = reuse_contexts
        # Contexts kept for reuse (``reuse_contexts``), each with its guard proxy.
        self._idle: list[tuple[BrowserContext, GuardProxy | None]] = []
        self._limit = asyncio.Semaphore(max_concurrent)
        self.images = images
        self.executable = executable
        self._playwright: Playwright | None = None
        self._browser: PlaywrightBrowser | None = None
        self._start_lock = asyncio.Lock()
        self.user_agent = ""
        # A Chromium running for weeks grows in memory; relaunch it every `recycle_after`
        # contexts, at a moment when no capture is using it.
        self.recycle_after = recycle_after
        self.launches = 0
        self._contexts_since_launch = 0
        self._open_contexts = 0

    @property
    def version(self) -> str:
        """Browser version string, e.g. ``156.0.8078.79``."""
        return self._browser.version if self._browser else ""

    def info_for(self, context: BrowserContext) -> BrowserInfo:
        """The browser behind ``context`` (one of ours): this machine's Chromium."""
        return BrowserInfo("local", "local", socket.gethostname(), self.version, self.user_agent)

    async def start(self) -> None:
        """Launch Chromium (idempotent; relaunches a browser that crashed)."""
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return
            if self._playwright is None:
                filter_driver_environment()
                self._playwright = await async_playwright().start()
            executable = self.executable or find_chromium()
            try:
                # A terminal's Ctrl-C reaches Playwright's driver too (it shares watcher's
                # process group); by default it then closes Chromium and exits under the
                # running captures ("Connection closed while reading from the driver").
                # Without that, only watcher acts on it and closes things in order, as on
                # SIGTERM. Chromium itself is started in a process group of its own.
                self._browser = await self._playwright.chromium.launch(
                    executable_path=executable,
                    args=launch_args(self.images, self.host_rules),
                    headless=True,
                    env=child_environment(),
                    handle_sigint=False,
                )
            except PlaywrightError as exc:
                raise BrowserError(_launch_failure_message(executable, exc)) from exc
            self.launches += 1
            self._contexts_since_launch = 0
            await self._drop_idle()  # contexts of the browser before belong to no browser now
            self.user_agent = await self._default_user_agent()

    async def close(self) -> None:
        """Close Chromium and Playwright."""
        await self._drop_idle()
        if self._browser is not None:
            with contextlib.suppress(PlaywrightError):  # already gone: nothing to release
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def __aenter__(self) -> Browser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def guard(self, allow_private: bool | None = None) -> NetworkGuard:
        """A network guard for one capture, resolving names as this Chromium does."""
        allowed = self.allow_private_network if allow_private is None else allow_private
        return NetworkGuard(allow_private=allowed, hosts=self.guard_hosts)

    @asynccontextmanager
    async def context(
        self, session: Session | None = None, guard: NetworkGuard | None = None
    ) -> AsyncIterator[BrowserContext]:
        """A browser context for one capture, within the concurrency limit.

        With a ``session`` the context is logged in as its account and wears the session's
        profile (user agent, locale, time zone, window); without, it is anonymous. Contexts
        are fresh, except that a browser made with ``reuse_contexts`` hands anonymous
        captures a context an earlier one used: one blank page, no cookies. Every request
        of the context goes through ``guard`` (default: :meth:`guard`), which aborts those
        that lead into a private network: by a route (the first URL of each request) and,
        for every connection the context opens, redirects included, by the context's own
        :class:`GuardProxy`.
        """
        guard = guard or self.guard()
        async with self._limit:
            await self.start()
            assert self._browser is not None
            # Counted before the first await so a recycle cannot close the browser under us.
            self._open_contexts += 1
            self._contexts_since_launch += 1
            reusable = self.reuse_contexts and session is None
            try:
                idle = self._idle.pop() if reusable and self._idle else None
                reused = idle is not None
                if idle is not None:
                    ctx, proxy = idle
                    if proxy is not None:
                        proxy.rebind(guard)
                else:
                    proxy = None
                    if self.local_proxy:
                        proxy = await GuardProxy(guard, self.host_rules).start()
                    try:
                        ctx = await self._new_context(session, proxy)
                    except BaseException:
                        if proxy is not None:
                            await proxy.close()
                        raise
                kept = False
                try:
                    await self._guard_context(ctx, guard, reused)
                    yield ctx
                    kept = reusable and await self._keep_for_reuse(ctx, proxy)
                finally:
                    if not kept:  # also after a failed capture: its context is not reused
                        await self._close_context(ctx)
                        if proxy is not None:
                            await proxy.close()
            finally:
                self._open_contexts -= 1
            await self._recycle_if_due()

    async def _new_context(
        self, session: Session | None, proxy: GuardProxy | None
    ) -> BrowserContext:
        assert self._browser is not None
        routing = {"proxy": proxy.playwright_proxy()} if proxy is not None else {}
        try:
            return await asyncio.wait_for(
                self._browser.new_context(
                    **context_profile(session),
                    service_workers="block",
                    accept_downloads=False,
                    **routing,
                ),
                BROWSER_CALL_TIMEOUT_S,
            )
        except PlaywrightError as exc:
            raise BrowserError(f"Chromium could not open a new tab: {exc.message}") from exc
        except TimeoutError as exc:
            await self._abandon()
            raise BrowserError("Chromium did not answer; it was restarted") from exc

    async def _guard_context(self, ctx: BrowserContext, guard: NetworkGuard, reused: bool) -> None:
        try:
            async with asyncio.timeout(BROWSER_CALL_TIMEOUT_S):
                if reused:  # it still routes through the guard of the capture before
                    await ctx.unroute_all(behavior="ignoreErrors")
                await guard.install(ctx)
        except PlaywrightError as exc:
            raise BrowserError(f"Chromium could not guard a new tab: {exc.message}") from exc
        except TimeoutError as exc:
            await self._abandon()
            raise BrowserError("Chromium did not answer; it was restarted") from exc

    async def _keep_for_reuse(self, ctx: BrowserContext, proxy: GuardProxy | None) -> bool:
        """Leave the context with one blank page and no cookies, then keep it; False if that
        failed.

        A new context and page cost the browser process a new renderer (~0.2 CPU-s, most of a
        light check); the next capture navigates this page instead. What stays between uses
        (HTTP cache, local storage) goes when the browser is relaunched, every
        ``recycle_after`` contexts.
        """
        try:
            async with asyncio.timeout(BROWSER_CALL_TIMEOUT_S):
                first, *others = ctx.pages or [await ctx.new_page()]
                for page in others:
                    await page.close()
                await first.goto("about:blank")  # stops the last page's scripts and requests
                await ctx.clear_cookies()
        except (PlaywrightError, TimeoutError):
            return False
        self._idle.append((ctx, proxy))
        return True

    async def _drop_idle(self) -> None:
        """Forget the contexts kept for reuse (their browser is gone) and stop their proxies."""
        idle, self._idle = self._idle, []
        for _ctx, proxy in idle:
            if proxy is not None:
                await proxy.close()

    async def _close_context(self, ctx: BrowserContext) -> None:
        # The browser may have died mid-capture; start() relaunches it next time.
        # A hung one would hold this close for ever: give it up instead.
        try:
            await asyncio.wait_for(ctx.close(), BROWSER_CALL_TIMEOUT_S)
        except PlaywrightError:
            pass
        except TimeoutError:
            await self._abandon()

    async def _abandon(self) -> None:
        """Give up a Chromium that stopped answering: stop the Playwright driver (which ends
        the connection) so the next start() launches a fresh browser."""
        self._browser = None
        await self._drop_idle()
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):  # the driver may be as stuck as the browser
                await asyncio.wait_for(playwright.stop(), BROWSER_CALL_TIMEOUT_S)

    async def _recycle_if_due(self) -> None:
        """Close Chromium once it has served ``recycle_after`` contexts and none is open."""
        async with self._start_lock:  # start() waits, then launches a fresh one
            if self._open_contexts or self._contexts_since_launch < self.recycle_after:
                return
            browser, self._browser = self._browser, None
            await self._drop_idle()  # closed with the browser
            if browser is not None:
                with contextlib.suppress(PlaywrightError):  # already gone: nothing to release
                    await browser.close()

    async def _default_user_agent(self) -> str:
        assert self._browser is not None
        ctx = await self._browser.new_context()
        try:
            page = await ctx.new_page()
            return await page.evaluate("navigator.userAgent")
        finally:
            await ctx.close()


def context_profile(session: Session | None) -> dict[str, Any]:
    """``new_context`` options for an anonymous capture, or for one as ``session``'s account."""
    if session is None:
        return {"viewport": VIEWPORT, "locale": LOCALE, "timezone_id": "UTC"}
    # The same profile every time: platforms flag an account whose browser keeps changing.
    return {
        "viewport": dict(session.viewport),
        "locale": session.locale,
        "timezone_id": session.timezone_id,
        "user_agent": session.user_agent,
        "storage_state": {
            "cookies": session.storage_state.get("cookies") or [],
            "origins": session.storage_state.get("origins") or [],
        },
    }


def _launch_failure_message(executable: str | None, exc: PlaywrightError) -> str:
    first_line = (exc.message or str(exc)).strip().splitlines()[0]
    if executable:
        return (
            f"Chromium at {executable} would not start ({first_line}). "
            "Check it runs: `chromium --headless --no-sandbox --dump-dom about:blank`."
        )
    return (
        f"No Chromium found and Playwright's own browser would not start ({first_line}). "
        "Install Chromium (`apt-get install -y chromium`) or set WATCHER_CHROMIUM to its path."
    )
