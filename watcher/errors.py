"""Our exception types.

Library exceptions (Playwright, Telegram, SQLite, YAML) are translated into these once, at
the module that talks to the library, with ``raise ... from exc``. Every message says what
is wrong and how to fix it, because the people reading it are investigators.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base class: a problem the user can act on. The CLI prints it without a traceback."""


class WatchlistError(WatcherError):
    """The watchlist file cannot be used. ``problems`` lists every problem found."""

    def __init__(self, path: str, problems: list[WatchlistProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {len(problems)} problem(s)"]
        lines += [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


class WatchlistProblem:
    """One problem in a watchlist: where it is, what is wrong, how to fix it."""

    def __init__(self, line: int | None, where: str, message: str, fix: str) -> None:
        self.line = line
        self.where = where
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line else "file"
        where = f" ({self.where})" if self.where else ""
        return f"{at}{where}: {self.message}. Fix: {self.fix}"

    def __repr__(self) -> str:
        return f"WatchlistProblem({self.line!r}, {self.where!r}, {self.message!r})"


class BrowserError(WatcherError):
    """The browser could not be found or started."""


class CaptureError(WatcherError):
    """A capture of one target failed; ``reason`` is a short machine-readable code."""

    # Recorded but not alerted: the same cause was already alerted through another target
    # (a Telegram account's pause or stop is alerted once for all its targets).
    quiet = False

    def __init__(self, reason: str, message: str, screenshot: bytes | None = None) -> None:
        self.reason = reason
        self.screenshot = screenshot  # what the browser showed when it failed, if anything
        super().__init__(message)


class StoreError(WatcherError):
    """The database or blob store could not be read or written.

    ``bug`` is True when the store refused what watcher asked of it (a constraint, a
    malformed statement): no site and no user can cause that, so it is reported as a bug.
    """

    def __init__(self, message: str, bug: bool = False) -> None:
        self.bug = bug
        super().__init__(message)


class TelegramUnreachable(WatcherError):
    """Telegram did not answer (no network, a timeout, a server error): worth trying again."""


class AlertError(WatcherError):
    """An alert could not be delivered."""


class PermanentAlertError(AlertError):
    """Delivery will never succeed without a change by the team (chat gone, bot removed)."""


class TransientAlertError(AlertError):
    """Delivery failed for now and should be retried, after ``retry_after`` seconds if set."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
