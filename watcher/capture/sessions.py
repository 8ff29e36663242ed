"""Sessions: the logged-in state of a sock-puppet account, kept apart from the evidence.

A session is a Playwright storage state (cookies and local storage) plus the browser profile
it was used with: user agent, locale, time zone and window size. Platforms ban accounts whose
browser changes from one visit to the next, so a session keeps one profile for its whole life.

Sessions live in ``data/sessions/NAME.json``: the folder is mode 0700 and every file 0600,
written atomically. Cookies are passwords in all but name: their values are registered with
:mod:`watcher.secrets` as soon as they are read, so no log line can carry them, and nothing here
prints them. They are never written into evidence (the capture metadata keeps only the name).

A platform also bans an account seen in two places at once, so captures hold
:meth:`SessionLocks.hold` while they use a session: one capture per session at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import sys
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.errors import WatcherError
from watcher.privatefile import read_private, write_private
from watcher.secrets import register_secret
from watcher.timeutil import to_iso, utc_now

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

FILE_FORMAT = "watcher-session/1"
# How a session file is named in messages, and what a copy of it would give away.
_WHAT = "session file"
_WHY = "its cookies log in as the account"
DEFAULT_LOCALE = "en-US"
DEFAULT_TIMEZONE = "Asia/Phnom_Penh"
# The same window as anonymous captures, so screenshots of both look alike.
DEFAULT_VIEWPORT = {"width": 1280, "height": 900}
# Used when the installed Chromium's version is unknown (e.g. `session import` on a machine
# without Chromium). A real, recent stable major; the exact build is hidden by Chrome itself.
FALLBACK_CHROME_VERSION = "156.0.0.0"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_RULE = "letters, digits, _ . - (starting with a letter or digit, at most 64 characters)"
_SAME_SITE = {
    "no_restriction": "None",
    "none": "None",
    "lax": "Lax",
    "strict": "Strict",
    # Chrome treats a cookie without SameSite as Lax; Playwright needs an explicit value.
    "unspecified": "Lax",
    "": "Lax",
}
_JSON_HELP = (
    "a JSON list of cookies as exported by Cookie-Editor or EditThisCookie (each with "
    'domain, name, value), or a Playwright storage state ({"cookies": [...]})'
)
_NETSCAPE_HELP = (
    "a Netscape cookies.txt: one cookie per line, 7 fields separated by TABs (not spaces): "
    "domain, include-subdomains TRUE/FALSE, path, secure TRUE/FALSE, expiry (Unix seconds, "
    "0 for a session cookie), name, value"
)
_LOGIN_HELP = (
    "Create one with `watcher session import NAME FILE` (cookies exported from your browser) "
    "or `watcher session login NAME --url URL` (log in by hand in a browser window)."
)


@dataclass
class Session:
    """One account's logged-in browser state and the profile it is always used with."""

    name: str
    # Playwright's format: {"cookies": [...], "origins": [...]}. Secret: kept out of repr.
    storage_state: dict[str, Any] = field(repr=False)
    user_agent: str
    locale: str = DEFAULT_LOCALE
    timezone_id: str = DEFAULT_TIMEZONE
    viewport: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_VIEWPORT))
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    @property
    def cookies(self) -> list[dict[str, Any]]:
        """The session's cookies (Playwright cookie dicts)."""
        return list(self.storage_state.get("cookies") or [])

    def to_json(self) -> dict[str, Any]:
        """The session file's content."""
        return {
            "format": FILE_FORMAT,
            "name": self.name,
            "user_agent": self.user_agent,
            "locale": self.locale,
            "timezone_id": self.timezone_id,
            "viewport": self.viewport,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "storage_state": self.storage_state,
        }


@dataclass(frozen=True)
class SessionInfo:
    """What ``watcher session list`` shows of a session: never a cookie value."""

    name: str
    cookies: int
    domains: tuple[str, ...]
    updated_at: str | None
    expires_soonest: str | None  # UTC ISO time of the first persistent cookie to expire
    problem: str | None = None  # why the file cannot be used, when it cannot


def check_name(name: str) -> str:
    """``name`` if it is a valid session name; a WatcherError otherwise.

    Session names become file names, so anything that could walk out of the folder
    (``/``, ``..``, a leading dot) is refused before a path is ever built from it.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise WatcherError(f"the session name {name!r} cannot be used: use {_NAME_RULE}")
    return name


def check_timezone(timezone_id: str) -> str:
    """``timezone_id`` if it is an IANA time zone (Chromium refuses anything else)."""
    try:
        zoneinfo.ZoneInfo(timezone_id)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise WatcherError(
            f"{timezone_id!r} is not a time zone; use an IANA name such as Asia/Phnom_Penh"
        ) from None
    return timezone_id


def user_agent_for(chrome_version: str | None = None, system: str = sys.platform) -> str:
    """A desktop Chrome user agent for ``chrome_version`` on the machine's OS.

    Chrome's own reduced format (minor versions zeroed). The OS is the one the captures run
    on, so the user agent agrees with ``navigator.platform``; a mismatch is a bot signal.
    """
    major = (chrome_version or FALLBACK_CHROME_VERSION).split(".")[0]
    if not major.isdigit():
        major = FALLBACK_CHROME_VERSION.split(".")[0]
    if system.startswith("win"):
        os_token = "Windows NT 10.0; Win64; x64"
    elif system == "darwin":
        os_token = "Macintosh; Intel Mac OS X 10_15_7"
    else:
        os_token = "X11; Linux x86_64"
    return (
        f"Mozilla/5.0 ({os_token}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


class SessionStore:
    """The ``sessions/`` folder of a data folder: one ``NAME.json`` per session."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "sessions"

    # -- reading ---------------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        """The file of session ``name`` (validated first)."""
        return self.folder / f"{check_name(name)}.json"

    def names(self) -> list[str]:
        """Names of every stored session, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json") if _NAME.match(p.stem))

    def exists(self, name: str) -> bool:
        """Whether session ``name`` is stored."""
        return self.path_for(name).exists()

    def load(self, name: str) -> Session:
        """Session ``name``; its cookie values are registered as secrets before it is returned."""
        path = self.path_for(name)
        if not path.exists():
            known = ", ".join(self.names()) or "none yet"
            raise WatcherError(
                f"there is no session named {name!r} in {self.folder} (known: {known}). "
                + _LOGIN_HELP
            )
        session = _session_from_json(read_private(path, _WHAT, _WHY), path)
        _register_secrets(session.storage_state)
        return session

    def list(self) -> list[SessionInfo]:
        """A summary of every stored session; a damaged one is listed with its problem."""
        infos = []
        for name in self.names():
            try:
                infos.append(_info(self.load(name)))
            except WatcherError as exc:
                infos.append(SessionInfo(name, 0, (), None, None, problem=str(exc)))
        return infos

    # -- writing ---------------------------------------------------------------------------
    def save(self, session: Session) -> Path:
        """Write ``session`` atomically, mode 0600, in the 0700 folder; returns its path."""
        path = self.path_for(session.name)
        _register_secrets(session.storage_state)
        self._ensure_folder()
        data = json.dumps(session.to_json(), ensure_ascii=False, indent=1).encode("utf-8")
        write_private(path, data, _WHAT)
        return path

    def update_state(self, name: str, state: dict[str, Any]) -> Session:
        """Replace session ``name``'s storage state (after a capture refreshed its cookies)."""
        _check_state(state, f"the new state of session {name!r}")
        session = self.load(name)
        session.storage_state = {
            "cookies": list(state.get("cookies") or []),
            "origins": list(state.get("origins") or []),
        }
        session.updated_at = utc_now()
        self.save(session)
        return session

    def import_cookies(
        self,
        name: str,
        path: Path | str,
        *,
        user_agent: str | None = None,
        locale: str = DEFAULT_LOCALE,
        timezone_id: str = DEFAULT_TIMEZONE,
    ) -> Session:
        """Create (or refresh) session ``name`` from a cookies file.

        Re-importing keeps the session's user agent unless a new one is given: the account
        should keep looking like the same browser.
        """
        check_name(name)
        check_timezone(timezone_id)
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8-sig")  # some exporters write a BOM
        except (OSError, UnicodeDecodeError) as exc:
            raise WatcherError(f"cannot read cookies file {source}: {exc}") from exc
        state = parse_cookie_file(text, str(source))
        previous = self.load(name) if self.exists(name) else None
        session = Session(
            name=name,
            storage_state=state,
            user_agent=user_agent or (previous.user_agent if previous else user_agent_for()),
            locale=locale,
            timezone_id=timezone_id,
            viewport=previous.viewport if previous else dict(DEFAULT_VIEWPORT),
            created_at=previous.created_at if previous else utc_now(),
        )
        self.save(session)
        return session

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkdir's mode is filtered by the umask and ignored for an existing folder.
        os.chmod(self.folder, 0o700)


async def refreshed_state(context: BrowserContext) -> dict[str, Any]:
    """The context's storage state now: the platform may have renewed cookies while we read."""
    state = await context.storage_state()
    _register_secrets(state)
    return dict(state)


class SessionLocks:
    """One capture per session at a time.

    Within a process an ``asyncio.Lock`` per name serialises captures; given the sessions
    folder, an ``flock`` on ``NAME.lock`` also keeps ``watcher check`` and ``watcher run``
    (two processes) from using one account at the same moment.
    """

    def __init__(self, folder: Path | None = None, poll_s: float = 0.2) -> None:
        self._folder = folder
        self._poll_s = poll_s
        self._locks: dict[str, asyncio.Lock] = {}

    def busy(self, name: str) -> bool:
        """Whether a capture in this process holds session ``name``."""
        lock = self._locks.get(name)
        return bool(lock and lock.locked())

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Wait until no other capture uses session ``name``, then hold it."""
        check_name(name)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if self._folder is None:
                yield
                return
            fd = await self._flock(name)
            try:
                yield
            finally:
                os.close(fd)  # closing releases the flock

    async def _flock(self, name: str) -> int:
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                # Another process is capturing with this account: poll rather than block
                # the event loop (a blocking flock would stall every other target).
                await asyncio.sleep(self._poll_s)
            except BaseException:
                os.close(fd)
                raise


# -- cookie files -------------------------------------------------------------------------------
def parse_cookie_file(text: str, source: str) -> dict[str, Any]:
    """A Playwright storage state from a JSON cookie export or a Netscape cookies.txt."""
    stripped = text.strip()
    if not stripped:
        raise WatcherError(f"{source} is empty. Expected {_JSON_HELP}, or {_NETSCAPE_HELP}.")
    if stripped[0] in "[{":
        state = parse_json_cookies(stripped, source)
    else:
        state = {"cookies": parse_netscape_cookies(text, source), "origins": []}
    if not state["cookies"]:
        raise WatcherError(
            f"{source} holds no cookies. Export them while logged in to the platform."
        )
    return state


def parse_json_cookies(text: str, source: str) -> dict[str, Any]:
    """Cookies from a browser extension's JSON export, or a Playwright storage state."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WatcherError(
            f"{source} line {exc.lineno}: not valid JSON ({exc.msg}). Expected {_JSON_HELP}."
        ) from exc
    origins: list[Any] = []
    if isinstance(data, dict):
        if not isinstance(data.get("cookies"), list):
            raise WatcherError(
                f'{source}: a JSON object without a "cookies" list. Expected {_JSON_HELP}.'
            )
        origins = data.get("origins") or []
        if not isinstance(origins, list):
            raise WatcherError(f'{source}: "origins" must be a list. Expected {_JSON_HELP}.')
        data = data["cookies"]
    if not isinstance(data, list):
        raise WatcherError(f"{source}: expected {_JSON_HELP}.")
    cookies = [_json_cookie(entry, f"{source} cookie #{i}") for i, entry in enumerate(data, 1)]
    return {"cookies": cookies, "origins": origins}


def _json_cookie(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise WatcherError(f"{where}: not an object. Expected {_JSON_HELP}.")
    for key in ("domain", "name", "value"):
        if not isinstance(entry.get(key), str) or (key != "value" and not entry[key]):
            raise WatcherError(
                f"{where}: missing or empty {key!r} (a text). Expected {_JSON_HELP}."
            )
    expires = _json_expiry(entry, where)
    host_only = entry.get("hostOnly")
    return _cookie(
        domain=entry["domain"],
        subdomains=None if host_only is None else not host_only,
        path=entry.get("path") or "/",
        secure=_flag(entry.get("secure", False), where, "secure"),
        expires=expires,
        name=entry["name"],
        value=entry["value"],
        http_only=_flag(entry.get("httpOnly", False), where, "httpOnly"),
        same_site=_same_site(entry.get("sameSite"), where),
    )


def _json_expiry(entry: dict[str, Any], where: str) -> float:
    if entry.get("session") is True:
        return -1
    raw = entry.get("expirationDate", entry.get("expires"))
    if raw is None:
        return -1
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise WatcherError(
            f"{where}: expirationDate/expires must be Unix seconds (a number), not {raw!r}"
        )
    return float(raw) if raw > 0 else -1


def _flag(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise WatcherError(f"{where}: {key!r} must be true or false, not {value!r}")
    return value


def _same_site(value: Any, where: str) -> str:
    text = "" if value is None else str(value).strip().lower()
    if text not in _SAME_SITE:
        raise WatcherError(
            f"{where}: sameSite {value!r} is not one of no_restriction, lax, strict, "
            "unspecified (or None, Lax, Strict)"
        )
    return _SAME_SITE[text]


def parse_netscape_cookies(text: str, source: str) -> list[dict[str, Any]]:
    """Cookies from a Netscape ``cookies.txt`` (curl, wget, "Get cookies.txt" extensions)."""
    cookies = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        http_only = line.startswith("#HttpOnly_")
        if http_only:
            line = line[len("#HttpOnly_") :]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        cookies.append(_netscape_cookie(line, http_only, f"{source} line {number}"))
    return cookies


def _netscape_cookie(line: str, http_only: bool, where: str) -> dict[str, Any]:
    fields = line.split("\t")
    if len(fields) == 6:  # an empty value whose trailing tab an editor stripped
        fields.append("")
    if len(fields) != 7:
        raise WatcherError(f"{where}: found {len(fields)} field(s). Expected {_NETSCAPE_HELP}.")
    domain, subdomains, path, secure, expiry, name, value = fields
    if not domain or not name:
        raise WatcherError(f"{where}: the domain and the name must not be empty")
    try:
        expires = float(expiry)
    except ValueError:
        raise WatcherError(
            f"{where}: the expiry {expiry!r} is not Unix seconds. Expected {_NETSCAPE_HELP}."
        ) from None
    return _cookie(
        domain=domain,
        subdomains=_netscape_bool(subdomains, where, "include-subdomains"),
        path=path or "/",
        secure=_netscape_bool(secure, where, "secure"),
        expires=expires if expires > 0 else -1,
        name=name,
        value=value,
        http_only=http_only,
        same_site="Lax",  # cookies.txt has no SameSite; Lax is Chrome's default
    )


def _netscape_bool(text: str, where: str, field_name: str) -> bool:
    if text.upper() not in ("TRUE", "FALSE"):
        raise WatcherError(f"{where}: the {field_name} field must be TRUE or FALSE, not {text!r}")
    return text.upper() == "TRUE"


def _cookie(
    *,
    domain: str,
    subdomains: bool | None,
    path: str,
    secure: bool,
    expires: float,
    name: str,
    value: str,
    http_only: bool,
    same_site: str,
) -> dict[str, Any]:
    """One Playwright cookie. A leading dot on the domain means "and its subdomains"."""
    bare = domain.lstrip(".")
    if subdomains is None:  # the export did not say: trust the dot it wrote
        subdomains = domain.startswith(".")
    if same_site == "None" and not secure:
        # Chromium rejects SameSite=None without Secure, which would fail the whole context.
        same_site = "Lax"
    return {
        "name": name,
        "value": value,
        "domain": f".{bare}" if subdomains else bare,
        "path": path,
        "expires": expires,
        "httpOnly": http_only,
        "secure": secure,
        "sameSite": same_site,
    }


# -- session files ------------------------------------------------------------------------------
def _session_from_json(raw: bytes, path: Path) -> Session:
    damaged = (
        f"session file {path} is damaged ({{}}). Recreate it with `watcher session import` "
        "or `watcher session login`."
    )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WatcherError(damaged.format(f"not JSON: {exc}")) from exc
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise WatcherError(damaged.format(f"not a {FILE_FORMAT} file"))
    texts = ("name", "user_agent", "locale", "timezone_id", "created_at", "updated_at")
    for key in texts:
        if not isinstance(data.get(key), str):
            raise WatcherError(damaged.format(f"{key!r} missing"))
    if data["name"] != path.stem:
        raise WatcherError(damaged.format(f"it names session {data['name']!r}"))
    _check_state(data.get("storage_state"), str(path))
    viewport = data.get("viewport")
    if not isinstance(viewport, dict):
        raise WatcherError(damaged.format("'viewport' missing"))
    return Session(
        name=data["name"],
        storage_state=data["storage_state"],
        user_agent=data["user_agent"],
        locale=data["locale"],
        timezone_id=data["timezone_id"],
        viewport=viewport,
        created_at=data["created_at"],
        updated_at=data["updated_at"],
    )


def _check_state(state: Any, where: str) -> None:
    if not isinstance(state, dict) or not isinstance(state.get("cookies", []), list):
        raise WatcherError(f'{where}: not a Playwright storage state ({{"cookies": [...]}})')


def _register_secrets(state: dict[str, Any]) -> None:
    """Make every cookie value (and stored local-storage value) unloggable."""
    for cookie in state.get("cookies") or []:
        if isinstance(cookie, dict):
            register_secret(str(cookie.get("value") or ""))
    for origin in state.get("origins") or []:
        for item in (origin or {}).get("localStorage") or []:
            if isinstance(item, dict):
                register_secret(str(item.get("value") or ""))


def _info(session: Session) -> SessionInfo:
    cookies = session.cookies
    domains = tuple(sorted({str(c.get("domain", "")).lstrip(".") for c in cookies}))
    expiries = [c["expires"] for c in cookies if isinstance(c.get("expires"), int | float)]
    persistent = [e for e in expiries if e > 0]
    return SessionInfo(
        session.name, len(cookies), domains, session.updated_at, _expiry_text(persistent)
    )


def _expiry_text(expiries: list[float]) -> str | None:
    if not expiries:
        return None
    try:
        return to_iso(datetime.fromtimestamp(min(expiries), UTC))
    except (OverflowError, OSError, ValueError):  # a nonsense expiry far beyond year 9999
        return None
