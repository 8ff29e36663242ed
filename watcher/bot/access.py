"""Who may ask the bot what, and where.

The watchlist names ``admins`` and ``members`` (Telegram user ids) and the team chats
(``alerts.telegram.chat_ids``). A request counts only when both hold: the user is an admin
or a member, and the chat is a team chat or the user's private chat with the bot. Anyone
else gets one short refusal that says nothing about targets or evidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

from watcher.watchlist import Watchlist

REFUSAL = "Sorry, this bot only answers its team."
ADMIN_ONLY = "Only an admin can do that."
REFUSAL_EVERY_S = 60.0  # a stranger who keeps writing is answered once a minute (always logged
# or, past a bound, counted: see watcher.store.bot_state.log_refusal)


class Role(IntEnum):
    """What a user may do; higher includes lower."""

    NONE = 0
    MEMBER = 1  # read and search
    ADMIN = 2  # also pause, mute, add targets, change settings


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an access check: allowed, or the refusal to send and why (for the log)."""

    allowed: bool
    role: Role
    reply: str = ""
    reason: str = ""


def role_of(watchlist: Watchlist, user_id: int | None) -> Role:
    """The user's role in the running watchlist (re-read on every request: edits apply live)."""
    if user_id is None:
        return Role.NONE
    if user_id in watchlist.admins:
        return Role.ADMIN
    if user_id in watchlist.members:
        return Role.MEMBER
    return Role.NONE


def team_chats(watchlist: Watchlist) -> set[int]:
    """The team's chat ids."""
    telegram = watchlist.alerts.telegram
    return set(telegram.chat_ids) if telegram else set()


def check(
    watchlist: Watchlist, user_id: int | None, chat_id: int, chat_type: str, need: Role
) -> Decision:
    """May ``user_id`` ask for something needing ``need`` in this chat?"""
    role = role_of(watchlist, user_id)
    if role == Role.NONE:
        return Decision(False, role, REFUSAL, "unknown user")
    private_own = chat_type == "private" and chat_id == user_id
    if chat_id not in team_chats(watchlist) and not private_own:
        return Decision(False, role, REFUSAL, "not a team chat")
    if role < need:
        return Decision(False, role, ADMIN_ONLY, "admin command")
    return Decision(True, role)


class RefusalThrottle:
    """Answer a refused user at most once per ``every`` seconds per chat, so a stranger (or a
    script) cannot make the bot flood a chat; every refusal is still logged or counted."""

    def __init__(self, every: float = REFUSAL_EVERY_S) -> None:
        self.every = every
        self._last: dict[tuple[int | None, int], float] = {}

    def should_answer(self, user_id: int | None, chat_id: int) -> bool:
        """True when this refusal should be sent (and remember that it was)."""
        now = time.monotonic()
        key = (user_id, chat_id)
        if now - self._last.get(key, -self.every) < self.every:
            return False
        self._last[key] = now
        if len(self._last) > 10_000:  # forget the oldest: bounded memory under a flood
            for old in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                del self._last[old]
        return True
