"""Per account: the session file, the API credentials, pacing, pauses and stops.

An investigator's account is precious. Captures through one account are serialised (the
session's lock, as for browser sessions) and paced by a request budget; a flood wait is
honoured to the second when it is short and pauses the account's targets when it is long;
an account that is logged out, restricted or banned stops its targets. Each of those is
alerted once for the account: the other targets' failures are recorded quietly. Pauses and
stops outlive a restart (``data/telegram-holds.json``): a watcher started again must not
send a resting or banned account one more request, nor alert the team a second time.

The session file (``data/sessions/NAME.tgsession``, 0600, in the 0700 folder) holds
Telethon's session string, which logs in as the account: it is registered as a secret the
moment it is read, never logged, never put in evidence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher.capture.sessions import check_name
from watcher.capture.tgapi.records import AccountStopped, FloodWait, TelegramApiError
from watcher.errors import WatcherError
from watcher.privatefile import read_private, write_private
from watcher.secrets import register_secret
from watcher.timeutil import format_duration, to_iso, utc_now

log = logging.getLogger(__name__)

SESSION_SUFFIX = ".tgsession"
SESSION_FORMAT = "watcher-telegram-session/1"
API_ID_ENV = "WATCHER_TELEGRAM_API_ID"
API_HASH_ENV = "WATCHER_TELEGRAM_API_HASH"
API_FILE = "telegram-api.json"  # in data/keys/, mode 0600
# How the two secret files are named in messages, and what a copy of each would give away.
_API_WHAT = "Telegram API credentials file"
_API_WHY = "they let anyone use the team's Telegram application"
_SESSION_WHAT = "Telegram account session file"
_SESSION_WHY = "it logs in as the account"
# Accounts resting after a long flood wait, or stopped (logged out, banned), across restarts.
# Not in data/sessions/, where every NAME.json is a browser session.
HOLDS_FILE = "telegram-holds.json"  # in the data folder, mode 0600
_HOLDS_WHAT = "Telegram account holds file"
_HOLDS_WHY = "it says which of the team's accounts are resting or banned"
# Requests one account may make per minute, across all its targets. Telegram does not
# publish its limits; a person scrolling a few chats makes about this many.
REQUESTS_PER_MINUTE = float(os.environ.get("WATCHER_TELEGRAM_REQUESTS_PER_MINUTE", "20"))
# A flood wait up to this long is waited out inside the capture; a longer one pauses the
# account's targets until it has passed.
FLOOD_WAIT_CAP_S = int(os.environ.get("WATCHER_TELEGRAM_FLOOD_WAIT_CAP", "120"))


@dataclass(frozen=True)
class ApiCredentials:
    """The team's Telegram application (https://my.telegram.org): not an account's secret,
    but not to be published either."""

    api_id: int
    api_hash: str = field(repr=False)


def load_credentials(data_dir: Path, environ: dict[str, str] | None = None) -> ApiCredentials:
    """From ``WATCHER_TELEGRAM_API_ID`` / ``_API_HASH``, else ``data/keys/telegram-api.json``."""
    env = os.environ if environ is None else environ
    path = Path(data_dir) / "keys" / API_FILE
    fix = (
        f"Create an application at https://my.telegram.org (API development tools) and set "
        f"{API_ID_ENV} and {API_HASH_ENV} in the environment, or write "
        f'{{"api_id": 123456, "api_hash": "..."}} to {path} (chmod 600)'
    )
    if env.get(API_ID_ENV) or env.get(API_HASH_ENV):
        raw_id, api_hash, where = env.get(API_ID_ENV, ""), env.get(API_HASH_ENV, ""), "environment"
    elif path.exists():
        try:
            data = json.loads(read_private(path, _API_WHAT, _API_WHY))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WatcherError(f"{path} is not valid JSON ({exc}). {fix}") from exc
        if not isinstance(data, dict):
            raise WatcherError(f"{path} must hold a JSON object. {fix}")
        raw_id, api_hash, where = str(data.get("api_id", "")), str(data.get("api_hash", "")), path
    else:
        raise WatcherError(
            f"no Telegram API credentials: neither {API_ID_ENV}/{API_HASH_ENV} in the "
            f"environment nor {path}. {fix}"
        )
    if not raw_id.strip().isdigit() or not api_hash.strip():
        raise WatcherError(f"the Telegram API credentials in {where} are incomplete. {fix}")
    register_secret(api_hash.strip())
    return ApiCredentials(int(raw_id), api_hash.strip())


# -- the session file -----------------------------------------------------------------------
@dataclass
class TelegramSession:
    """One account's Telethon session and who it is."""

    name: str
    session_string: str = field(repr=False)
    user_id: int | None = None
    username: str | None = None
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)


class TelegramSessions:
    """``data/sessions/NAME.tgsession`` files (beside the browser sessions' ``NAME.json``)."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "sessions"

    def path_for(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}{SESSION_SUFFIX}"

    def exists(self, name: str) -> bool:
        return self.path_for(name).exists()

    def names(self) -> list[str]:
        """Every Telegram account session, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name.removesuffix(SESSION_SUFFIX) for p in self.folder.glob("*.tgsession"))

    def load(self, name: str) -> TelegramSession:
        path = self.path_for(name)
        if not path.exists():
            raise WatcherError(
                f"there is no Telegram account session named {name!r} in {self.folder}. "
                f"Log the account in with `watcher session telegram {name}`"
            )
        try:
            data = json.loads(read_private(path, _SESSION_WHAT, _SESSION_WHY))
            session = TelegramSession(
                data["name"],
                data["session"],
                data.get("user_id"),
                data.get("username"),
                data.get("created_at") or utc_now(),
                data.get("updated_at") or utc_now(),
            )
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise WatcherError(
                f"{path} is damaged ({exc}); log the account in again with "
                f"`watcher session telegram {name}`"
            ) from exc
        register_secret(session.session_string)
        return session

    def save(self, session: TelegramSession) -> Path:
        path = self.path_for(session.name)
        register_secret(session.session_string)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        data = {
            "format": SESSION_FORMAT,
            "name": session.name,
            "user_id": session.user_id,
            "username": session.username,
            "created_at": session.created_at,
            "updated_at": session.updated_at,
            "session": session.session_string,
        }
        write_private(path, json.dumps(data, indent=1).encode("utf-8"), _SESSION_WHAT)
        return path

    def stamp(self, name: str) -> float:
        """When the session file last changed: a stopped account is tried again once it has
        been logged in anew."""
        try:
            return self.path_for(name).stat().st_mtime
        except OSError:
            return 0.0


# -- pacing ---------------------------------------------------------------------------------
Sleep = Callable[[float], Awaitable[None]]


class RequestBudget:
    """A token bucket per account: at most ``per_minute`` requests a minute, a burst of a few.
    Waiting is sleeping, never spinning."""

    def __init__(
        self,
        per_minute: float = REQUESTS_PER_MINUTE,
        burst: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._tokens = float(burst)
        self._sleep, self._clock = sleep, clock
        self._at = clock()
        self.spent = 0
        self.waited_s = 0.0

    async def spend(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            wait = (1 - self._tokens) / self.rate
            self.waited_s += wait
            await self._sleep(wait)
            self._tokens, self._at = 1.0, self._clock()
        self._tokens -= 1
        self.spent += 1


@dataclass
class _AccountState:
    budget: RequestBudget
    paused_until: float = 0.0  # wall clock (time.time()) until which the account rests
    stopped: AccountStopped | None = None
    stopped_stamp: float = 0.0  # the session file's mtime when it was stopped
    alerted: bool = False  # the pause or stop was alerted by one target already


ClientFactory = Callable[[TelegramSession, ApiCredentials], Any]


class TelegramAccounts:
    """The accounts of one running watcher: budgets, pauses, stops, and the client factory
    (Telethon's real client; tests pass a fake that plays scripted histories)."""

    def __init__(
        self,
        data_dir: Path,
        factory: ClientFactory | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        per_minute: float = REQUESTS_PER_MINUTE,
        flood_wait_cap_s: int = FLOOD_WAIT_CAP_S,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.sessions = TelegramSessions(self.data_dir)
        self._factory = factory
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.per_minute = per_minute
        self.flood_wait_cap_s = flood_wait_cap_s
        self._states: dict[str, _AccountState] = {}
        self._holds = self.data_dir / HOLDS_FILE
        self._load_holds()

    def state(self, name: str) -> _AccountState:
        if name not in self._states:
            self._states[name] = _AccountState(RequestBudget(self.per_minute, sleep=self.sleep))
        return self._states[name]

    def _load_holds(self) -> None:
        """The pauses and stops a watcher before this one left (see the module's doc)."""
        if not self._holds.exists():
            return
        try:
            holds = json.loads(read_private(self._holds, _HOLDS_WHAT, _HOLDS_WHY))
            for name, hold in holds.items():
                state = self.state(check_name(name))
                state.paused_until = float(hold.get("paused_until") or 0.0)
                stopped = hold.get("stopped")
                if stopped:
                    state.stopped = AccountStopped(str(stopped["reason"]), str(stopped["message"]))
                    state.stopped_stamp = float(hold.get("stopped_stamp") or 0.0)
                state.alerted = True  # the team was told by the watcher that set it
        except (WatcherError, ValueError, AttributeError, KeyError, TypeError) as exc:
            # Losing the holds risks one request per held account, not a capture: say so and
            # go on (JSONDecodeError and UnicodeDecodeError are ValueErrors).
            log.warning("%s %s not read (%s): starting without it", _HOLDS_WHAT, self._holds, exc)

    def _save_holds(self) -> None:
        holds = {
            name: {
                "paused_until": state.paused_until,
                "paused_until_utc": to_iso_ts(state.paused_until) if state.paused_until else None,
                "stopped": (
                    {"reason": state.stopped.reason, "message": str(state.stopped)}
                    if state.stopped is not None
                    else None
                ),
                "stopped_stamp": state.stopped_stamp,
            }
            for name, state in sorted(self._states.items())
            if state.stopped is not None or state.paused_until > self.wall_clock()
        }
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_private(self._holds, json.dumps(holds, indent=1).encode("utf-8"), _HOLDS_WHAT)
        except (OSError, WatcherError) as exc:
            # The hold still stands in this watcher; only a restart would forget it.
            log.warning("%s %s not written (%s)", _HOLDS_WHAT, self._holds, exc)

    def client(self, session: TelegramSession) -> Any:
        """A Telethon client for the session (or the test's fake)."""
        if self._factory is not None:
            return self._factory(session, load_credentials(self.data_dir))
        from watcher.capture.tgapi.client import telethon_client  # the boundary, on first use

        creds = load_credentials(self.data_dir)
        return telethon_client(session.session_string, creds.api_id, creds.api_hash)

    def check_usable(self, name: str) -> None:
        """Raise when the account is paused or stopped; quietly when another target of the
        account has alerted it already."""
        state = self.state(name)
        if state.stopped is not None:
            if self.sessions.stamp(name) > state.stopped_stamp:
                state.stopped, state.alerted = None, False  # logged in again: try it
                self._save_holds()
            else:
                raise _again(state.stopped, state)
        now = self.wall_clock()
        if state.paused_until > now:
            until = to_iso_ts(state.paused_until)
            error = TelegramApiError(
                "account_paused",
                f"Telegram account {name} is resting until {until} after Telegram asked it to "
                "wait; its targets are captured again after that, nothing to do",
            )
            raise _again(error, state)

    def stop(self, name: str, error: AccountStopped) -> AccountStopped:
        """Stop the account's targets; the first target to see it alerts it."""
        state = self.state(name)
        state.stopped, state.stopped_stamp = error, self.sessions.stamp(name)
        state.alerted = True
        self._save_holds()
        return error

    def pause(self, name: str, wait: FloodWait) -> TelegramApiError:
        """Rest the account for ``wait.seconds`` (a wait above the cap); alerted once."""
        state = self.state(name)
        state.paused_until = self.wall_clock() + wait.seconds
        state.alerted = True
        self._save_holds()
        return TelegramApiError(
            "account_paused",
            f"{wait} (more than the {self.flood_wait_cap_s}s watcher waits inside a capture): "
            f"its targets are paused for {format_duration(wait.seconds)}, until "
            f"{to_iso_ts(state.paused_until)}, and captured again after that. If this happens "
            "often, capture its targets less often (`every:`) or spread them over accounts",
        )


def _again(error: TelegramApiError, state: _AccountState) -> TelegramApiError:
    """The same failure for another target: recorded, not alerted a second time."""
    again = TelegramApiError(error.reason, str(error))
    again.quiet = state.alerted
    return again


def to_iso_ts(seconds: float) -> str:
    return to_iso(datetime.fromtimestamp(seconds, UTC))
