"""``watcher session``: the sock-puppet accounts captures log in with.

    watcher session import NAME FILE      cookies exported from a browser (JSON or cookies.txt)
    watcher session login NAME --url URL  log in by hand in a browser window, then press Enter
    watcher session list                  every session: cookie count, domains, expiry
    watcher session check NAME --url URL  does the session still open the platform logged in?
    watcher session telegram NAME         log a Telegram account in (phone, code, 2FA password)
    watcher session check NAME            is the Telegram account session still authorised?

Sessions are stored in ``data/sessions/`` (see :mod:`watcher.capture.sessions`), never in
evidence, and nothing here prints a cookie value.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, async_playwright
from playwright.async_api import Error as PlaywrightError

from watcher.app import resolve_data_dir
from watcher.capture.adapters import adapter_for, known_platforms
from watcher.capture.browser import (
    Browser,
    child_environment,
    context_profile,
    filter_driver_environment,
    find_chromium,
    launch_args,
)
from watcher.capture.sessions import (
    DEFAULT_LOCALE,
    DEFAULT_TIMEZONE,
    DEFAULT_VIEWPORT,
    Session,
    SessionLocks,
    SessionStore,
    check_name,
    refreshed_state,
    user_agent_for,
)
from watcher.capture.tgapi.accounts import TelegramAccounts, TelegramSession, load_credentials
from watcher.capture.tgapi.client import AccountClient, log_in, telethon_client
from watcher.capture.tgapi.records import AccountStopped
from watcher.commands import add_private_network_option
from watcher.errors import BrowserError, CaptureError, WatcherError
from watcher.timeutil import utc_now

# Where platforms send a visitor who is not logged in (Facebook: /login.php, /checkpoint/).
LOGIN_PATH = re.compile(r"(?:^|/)(?:login|checkpoint|signin)(?:/|\.|$)", re.IGNORECASE)
# Block reasons (watcher.capture.blocks) that mean the account itself is shut out.
ACCOUNT_BLOCKS = frozenset({"login_wall", "checkpoint", "temporarily_blocked", "captcha"})
CHECK_TIMEOUT_S = 45.0
_VERSION = re.compile(r"(\d+\.\d+\.\d+\.\d+)")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher session ...`` to the command line."""
    session = sub.add_parser(
        "session",
        parents=[common],
        help="sock-puppet account sessions (import, login, check)",
        description="The sock-puppet logins captures use: import, log in by hand, list, check.",
        epilog="Examples:\n"
        "  watcher session import fb-puppet-1 cookies.json\n"
        "  watcher session list\n"
        "\n"
        "Each action has its own help: watcher session ACTION --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")

    imp = actions.add_parser(
        "import",
        parents=[common],
        help="create a session from exported cookies",
        description="Create (or update) a session from cookies exported from a browser.",
        epilog="Example:\n  watcher session import fb-puppet-1 cookies.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("name", metavar="NAME", help="session name (letters, digits, _ . -)")
    imp.add_argument("file", metavar="FILE", help="cookies: JSON export or Netscape cookies.txt")
    imp.add_argument("--user-agent", help="the browser's user agent (default: a desktop Chrome)")
    imp.add_argument("--locale", default=DEFAULT_LOCALE, help=f"default {DEFAULT_LOCALE}")
    imp.add_argument("--timezone", default=DEFAULT_TIMEZONE, help=f"default {DEFAULT_TIMEZONE}")

    login = actions.add_parser(
        "login",
        parents=[common],
        help="log in by hand in a browser window and keep the session",
        description="Log in by hand in a browser window, press Enter, and keep the session.",
        epilog="Example:\n  watcher session login fb-puppet-1 --url https://www.facebook.com/login",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument("name", metavar="NAME")
    login.add_argument("--url", required=True, help="the platform's login page")

    actions.add_parser(
        "list",
        parents=[common],
        help="every session, without cookie values",
        description="Every stored session: cookie count, domains, first expiry (no values).",
        epilog="Example:\n  watcher session list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    check = actions.add_parser(
        "check",
        parents=[common],
        help="does the session still open the platform logged in?",
        description="Check that a session still opens the platform logged in.",
        epilog="Example:\n"
        "  watcher session check fb-puppet-1 --url https://www.facebook.com/groups/123 "
        "--platform facebook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("name", metavar="NAME")
    check.add_argument(
        "--url", help="a page only a logged-in account sees (not for Telegram account sessions)"
    )
    check.add_argument("--platform", help="use this platform's block detection")
    add_private_network_option(check, default=False)

    telegram = actions.add_parser(
        "telegram",
        parents=[common],
        help="log a Telegram account in, for groups and private channels",
        description="Log a Telegram account in through Telegram's API (phone number, the code "
        "Telegram sends, and the two-step password if the account has one). Targets with "
        "`platform: telegram` and `session: NAME` are then read through it.",
        epilog="Example:\n  watcher session telegram tg-reader-1\n\n"
        "Needs the team's API credentials: WATCHER_TELEGRAM_API_ID and "
        "WATCHER_TELEGRAM_API_HASH,\nor data/keys/telegram-api.json (chmod 600).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    telegram.add_argument("name", metavar="NAME")


def cmd_session(args: argparse.Namespace) -> int:
    """``watcher session ACTION``."""
    data_dir = resolve_data_dir(Path(args.watchlist), args.data)
    store = SessionStore(data_dir)
    if args.session_command == "telegram":
        return telegram_login(TelegramAccounts(data_dir), args.name)
    if args.session_command == "check" and not args.url:
        accounts = TelegramAccounts(data_dir)
        if accounts.sessions.exists(args.name):
            return asyncio.run(check_telegram(accounts, args.name))
        raise WatcherError(
            f"{args.name!r} is not a Telegram account session; a browser session is checked "
            f"against a page: watcher session check {args.name} --url <a page of the platform>"
        )
    actions = {"import": _import, "login": _login, "list": _list, "check": _check}
    return actions[args.session_command](store, args)


# -- Telegram account sessions ------------------------------------------------------------------
def telegram_login(accounts: TelegramAccounts, name: str) -> int:
    """Ask for phone, code and password at the terminal; keep the session (0600)."""
    check_name(name)
    if not sys.stdin.isatty():
        raise WatcherError(
            "`watcher session telegram` asks for the account's phone number, the code Telegram "
            "sends and its password, and this command has no terminal to ask at. Run it in a "
            "terminal (ssh -t into the server), or on another machine and copy "
            f"{accounts.sessions.path_for(name)} over (keep it mode 0600)"
        )
    credentials = load_credentials(accounts.data_dir)
    client = telethon_client("", credentials.api_id, credentials.api_hash)

    def ask(prompt: str, secret: bool) -> str:
        answer = getpass.getpass(prompt) if secret else input(prompt)
        if not answer.strip():
            raise WatcherError("nothing entered; nothing saved")
        return answer

    async def run() -> tuple[str, Any]:
        try:
            return await log_in(client, name, ask)
        finally:
            with contextlib.suppress(Exception):  # closing after a refusal: nothing to keep
                await client.disconnect()

    saved, account = asyncio.run(run())
    path = accounts.sessions.save(TelegramSession(name, saved, account.user_id, account.username))
    print(f"Telegram account session {name}: user id {account.user_id}, stored in {path} (0600)")
    print(f"check it: watcher session check {name}")
    return 0


async def check_telegram(accounts: TelegramAccounts, name: str) -> int:
    """Whether the account's session is still authorised (one request, under its lock)."""
    session = accounts.sessions.load(name)
    locks = SessionLocks(accounts.sessions.folder)  # `watcher run` may be reading with it

    async def unpaced() -> None:
        return None

    try:
        async with (
            locks.hold(name),
            AccountClient(accounts.client(session), name, unpaced) as client,
        ):
            account = await client.me()
    except AccountStopped as exc:
        print(f"Telegram account session {name}: NOT authorised. {exc}")
        return 1
    print(f"Telegram account session {name}: authorised (Telegram user id {account.user_id})")
    return 0


# -- import / list ------------------------------------------------------------------------------
def _import(store: SessionStore, args: argparse.Namespace) -> int:
    check_name(args.name)
    # A new session gets the installed Chromium's user agent; an existing one keeps its own.
    user_agent = args.user_agent
    if not user_agent and not store.exists(args.name):
        user_agent = user_agent_for(installed_chromium_version())
    session = store.import_cookies(
        args.name,
        Path(args.file),
        user_agent=user_agent,
        locale=args.locale,
        timezone_id=args.timezone,
    )
    info = next(i for i in store.list() if i.name == session.name)
    print(
        f"session {session.name}: {info.cookies} cookie(s) for {', '.join(info.domains)}; "
        f"first expiry {info.expires_soonest or 'none (session cookies)'}"
    )
    print(f"stored in {store.path_for(session.name)} (mode 0600)")
    print(f"check it: watcher session check {session.name} --url <a page of the platform>")
    return 0


def _list(store: SessionStore, args: argparse.Namespace) -> int:
    infos = store.list()
    telegram = TelegramAccounts(store.folder.parent).sessions
    for name in telegram.names():
        try:
            account = telegram.load(name)
            print(
                f"{name:20} Telegram account, user id {account.user_id}, saved {account.updated_at}"
            )
        except WatcherError as exc:
            print(f"{name:20} Telegram account, unusable: {exc}")
    if not infos:
        print(f"no sessions in {store.folder}; create one with `watcher session import NAME FILE`")
        return 0
    print(f"{'SESSION':20} {'COOKIES':>7}  {'UPDATED':25} {'FIRST EXPIRY':25} DOMAINS")
    for info in infos:
        if info.problem:
            print(f"{info.name:20} {'-':>7}  unusable: {info.problem}")
            continue
        print(
            f"{info.name:20} {info.cookies:>7}  {info.updated_at or '-':25} "
            f"{info.expires_soonest or '-':25} {', '.join(info.domains)}"
        )
    return 0


def installed_chromium_version() -> str | None:
    """The version of the Chromium captures will use (``chromium --version``), if known."""
    with contextlib.suppress(WatcherError, OSError, subprocess.SubprocessError):
        executable = find_chromium()
        if executable:
            out = subprocess.run(
                [executable, "--version"], capture_output=True, text=True, timeout=15
            ).stdout
            match = _VERSION.search(out)
            return match.group(1) if match else None
    return None


# -- check --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """Whether a session opened a page logged in, and if not, why we think so."""

    logged_in: bool
    final_url: str
    reason: str = ""


def _check(store: SessionStore, args: argparse.Namespace) -> int:
    if args.platform and args.platform not in known_platforms():
        raise WatcherError(
            f"unknown platform {args.platform!r}; known: {', '.join(known_platforms())}"
        )
    session = store.load(args.name)
    result = asyncio.run(
        check_session(store, session, args.url, args.platform, args.allow_private_network)
    )
    if result.logged_in:
        print(f"session {session.name}: logged in at {result.final_url}")
        return 0
    print(
        f"session {session.name}: logged out ({result.reason}). Log in again with "
        f"`watcher session login {session.name} --url <login page>` or import fresh cookies."
    )
    return 1


async def check_session(
    store: SessionStore,
    session: Session,
    url: str,
    platform: str | None = None,
    allow_private_network: bool = False,
) -> CheckResult:
    """Open ``url`` headless as ``session``; keep the renewed cookies when still logged in."""
    locks = SessionLocks(store.folder)  # a running `watcher run` may be using the account
    async with (
        locks.hold(session.name),
        Browser(max_concurrent=1, allow_private_network=allow_private_network) as browser,
        browser.context(session) as context,
    ):
        result = await _open_and_judge(context, session, url, platform)
        if result.logged_in:
            store.update_state(session.name, await refreshed_state(context))
    return result


async def _open_and_judge(
    context: BrowserContext, session: Session, url: str, platform: str | None
) -> CheckResult:
    page = await context.new_page()
    try:
        response = await page.goto(url, wait_until="load", timeout=CHECK_TIMEOUT_S * 1000)
        with contextlib.suppress(PlaywrightError):  # pages that never go quiet are fine too
            await page.wait_for_load_state("networkidle", timeout=5000)
        html = await page.content()
        password_fields = await page.locator("input[type=password]:visible").count()
    except PlaywrightError as exc:
        raise WatcherError(f"could not open {url}: {exc.message.splitlines()[0]}") from exc
    status = response.status if response is not None else 200
    if platform and hasattr(adapter_for(platform), "detect_block"):
        reason = platform_block(platform, html, page.url, url, session)
    else:
        reason = login_wall(page.url, status, password_fields)
    return CheckResult(reason is None, page.url, reason or "")


def login_wall(final_url: str, status: int, password_fields: int) -> str | None:
    """Why a page looks like a login wall, or None when it looks logged in."""
    if LOGIN_PATH.search(urlsplit(final_url).path):
        return f"sent to a login page: {final_url}"
    if password_fields:
        return "the page asks for a password"
    if status in (401, 403):
        return f"the site refused the page (HTTP {status})"
    return None


def platform_block(
    platform: str, html: str, final_url: str, requested_url: str, session: Session
) -> str | None:
    """The platform adapter's own verdict (``detect_block``) when it says the account is out.

    Blocks that are not about the account (content removed, geo-blocked) leave it logged in.
    """
    adapter: Any = adapter_for(platform)
    posts = adapter.extract(html, final_url)
    try:
        block = adapter.detect_block(html, final_url, requested_url, posts, session.name)
    except CaptureError as exc:  # an adapter may raise its verdict instead of returning it
        return str(exc)
    if not block or getattr(block, "reason", None) not in ACCOUNT_BLOCKS:
        return None
    return getattr(block, "message", None) or str(block)


# -- login --------------------------------------------------------------------------------------
def _login(store: SessionStore, args: argparse.Namespace) -> int:
    check_name(args.name)
    require_display()
    session = asyncio.run(login_by_hand(store, args.name, args.url))
    domains = sorted({str(c.get("domain", "")).lstrip(".") for c in session.cookies})
    print(
        f"session {session.name} saved: {len(session.cookies)} cookie(s) for {', '.join(domains)}"
    )
    print(f"check it: watcher session check {session.name} --url {args.url}")
    return 0


def require_display() -> None:
    """A WatcherError when a browser window cannot be shown (a Linux server without X)."""
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise WatcherError(
        "`watcher session login` opens a browser window, and this machine has no screen "
        "(DISPLAY and WAYLAND_DISPLAY are unset). Run it on a machine with a screen and copy "
        "data/sessions/NAME.json over (keep it mode 0600), or export the account's cookies "
        "from your browser and use `watcher session import NAME FILE`."
    )


async def login_by_hand(store: SessionStore, name: str, url: str) -> Session:
    """Open a visible browser at ``url``; after Enter, save what the person logged in to."""
    previous = store.load(name) if store.exists(name) else None
    filter_driver_environment()
    async with async_playwright() as playwright:
        executable = find_chromium()
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable,
                args=launch_args(),
                headless=False,
                env=child_environment(),
            )
        except PlaywrightError as exc:
            raise BrowserError(f"Chromium would not open a window: {exc.message}") from exc
        try:
            # A fresh context, but with the profile the captures will use, so the platform
            # sees the same browser at login as at every later visit.
            profile = _login_profile(name, previous, user_agent_for(browser.version))
            context = await browser.new_context(**context_profile(profile))
            page = await context.new_page()
            with contextlib.suppress(PlaywrightError):  # the person can navigate by hand
                await page.goto(url, timeout=CHECK_TIMEOUT_S * 1000)
            print("Log in in the browser window, then press Enter here.", flush=True)
            if not await asyncio.to_thread(sys.stdin.readline):
                raise WatcherError("no Enter received (input closed); nothing saved")
            try:
                profile.storage_state = await refreshed_state(context)
            except PlaywrightError as exc:
                raise WatcherError(
                    "the browser window was closed before Enter was pressed; nothing saved. "
                    "Run the command again and keep the window open until you press Enter."
                ) from exc
        finally:
            with contextlib.suppress(PlaywrightError):
                await browser.close()
    if not profile.cookies:
        raise WatcherError("the browser holds no cookies (not logged in?); nothing saved")
    profile.updated_at = utc_now()
    store.save(profile)
    return profile


def _login_profile(name: str, previous: Session | None, user_agent: str) -> Session:
    empty = {"cookies": [], "origins": []}
    if previous is None:
        return Session(name, empty, user_agent, viewport=dict(DEFAULT_VIEWPORT))
    return Session(
        name,
        empty,
        previous.user_agent,  # the account keeps the browser it has always shown
        previous.locale,
        previous.timezone_id,
        previous.viewport,
        previous.created_at,
    )


COMMANDS = {"session": cmd_session}
