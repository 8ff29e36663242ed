"""Inline buttons: what their callback data says, and checking it against our records.

Callback data comes back from the chat and anyone can forge it (any client can send any
data with a button press). So it is never trusted:

* alert buttons (``ev:42``, ``mu:42``, ``rv:42``, from
  :func:`watcher.alert.render.alert_buttons`) count only when event 42 was delivered as
  the very message pressed, in that chat (:func:`watcher.store.bot_state.sent_alert`);
* ``/watch`` confirmations carry a random token naming a proposal this bot holds, made for
  that chat, not yet used and not expired.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from watcher.alert.render import ALERT_ACTIONS

CALLBACK_LIMIT = 64  # bytes, Telegram's limit for callback data
PROPOSAL_TTL_S = 3600.0
_ALERT = re.compile(r"^(?P<action>[a-z]{2}):(?P<event_id>[1-9][0-9]{0,17})$")
_WATCH = re.compile(r"^(?P<action>wa|wc):(?P<token>[A-Za-z0-9_-]{16})$")
_TIE = re.compile(r"^(?P<action>tc|tr):(?P<tie>t[0-9a-f]{8})$")
MAX_TIE_BUTTONS = 8
ALERT_CODES = frozenset(code for code, _label in ALERT_ACTIONS)


@dataclass(frozen=True, slots=True)
class AlertPress:
    """A press of an alert button: the action code and the event it claims."""

    action: str  # ev, mu, rv
    event_id: int


@dataclass(frozen=True, slots=True)
class WatchPress:
    """A press of a /watch confirmation button."""

    confirm: bool
    token: str


@dataclass(frozen=True, slots=True)
class TiePress:
    """An admin's word on a tie between two accounts (under /dealer NAME). The tie id is
    looked up in the archive when pressed; forging one only lets an admin say what
    ``/dealer NAME reject TIE`` lets them say."""

    confirm: bool
    tie: str


def parse_callback(data: str | None) -> AlertPress | WatchPress | TiePress | None:
    """What the callback data claims, or None when it is not ours at all."""
    if not data or len(data.encode("utf-8")) > CALLBACK_LIMIT:
        return None
    if (match := _ALERT.match(data)) and match["action"] in ALERT_CODES:
        return AlertPress(match["action"], int(match["event_id"]))
    if match := _WATCH.match(data):
        return WatchPress(match["action"] == "wa", match["token"])
    if match := _TIE.match(data):
        return TiePress(match["action"] == "tc", match["tie"])
    return None


def without_button(markup: InlineKeyboardMarkup | None, data: str) -> InlineKeyboardMarkup | None:
    """``markup`` minus the button whose callback data is ``data`` (None when none remain)."""
    if markup is None:
        return None
    rows = [[b for b in row if b.callback_data != data] for row in markup.inline_keyboard]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


# -- /watch proposals ------------------------------------------------------------------------
@dataclass(slots=True)
class Proposal:
    """A target an admin proposed with /watch, waiting for an admin's confirmation."""

    name: str
    platform: str
    url: str
    chat_id: int
    proposed_by: int
    created: float = field(default_factory=time.monotonic)


class Proposals:
    """Pending /watch proposals by unguessable token; each can be used once."""

    def __init__(self, ttl: float = PROPOSAL_TTL_S) -> None:
        self.ttl = ttl
        self._pending: dict[str, Proposal] = {}

    def add(self, proposal: Proposal) -> str:
        """Keep ``proposal``; returns its token."""
        self._expire()
        token = secrets.token_urlsafe(12)  # 16 characters
        self._pending[token] = proposal
        return token

    def take(self, token: str, chat_id: int) -> Proposal | None:
        """The proposal for ``token`` made in ``chat_id``, removed; None if unknown or used."""
        self._expire()
        proposal = self._pending.get(token)
        if proposal is None or proposal.chat_id != chat_id:
            return None
        return self._pending.pop(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, p in self._pending.items() if now - p.created > self.ttl]:
            del self._pending[token]


def confirm_keyboard(token: str) -> InlineKeyboardMarkup:
    """The buttons under a /watch proposal."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("✅ Add to the watchlist", callback_data=f"wa:{token}"),
                InlineKeyboardButton("✖ Cancel", callback_data=f"wc:{token}"),
            ]
        ]
    )


def tie_keyboard(ties: list) -> InlineKeyboardMarkup | None:
    """Buttons to reject the ties that join a dealer and confirm those that do not."""
    rows = []
    for tie in ties[:MAX_TIE_BUTTONS]:
        pair = f"{tie.a.removeprefix('author:')} ↔ {tie.b.removeprefix('author:')}"
        if tie.joins:
            rows.append(
                [
                    InlineKeyboardButton(
                        f"✖ Not one dealer: {pair}"[:60], callback_data=f"tr:{tie.id}"
                    )
                ]
            )
        else:
            rows.append(
                [InlineKeyboardButton(f"✔ One dealer: {pair}"[:60], callback_data=f"tc:{tie.id}")]
            )
    return InlineKeyboardMarkup(rows) if rows else None
