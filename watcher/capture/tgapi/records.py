"""What the Telegram API path carries between modules, and its errors. No Telethon here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from watcher.errors import CaptureError

# The label every rendering carries, in its HTML and so in its screenshot.
RENDERING_LABEL = "rendering of messages received through the Telegram API"


@dataclass(frozen=True, slots=True)
class Account:
    """The account a capture read through: its session's name and Telegram's user id. Never
    the session itself, which logs in as the account."""

    name: str
    user_id: int
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"session": self.name, "user_id": self.user_id, "username": self.username}


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A resolved chat: enough to read it again without resolving its link."""

    chat_id: int  # Telegram's bare id (the number in https://t.me/c/<id>/...)
    kind: str  # "channel" (channels and supergroups) or "chat" (basic groups)
    access_hash: int
    title: str = ""
    username: str | None = None

    def permalink(self, message_id: int) -> str:
        """The message's address: the public one when the chat has a name."""
        if self.username:
            return f"https://t.me/{self.username}/{message_id}"
        return f"https://t.me/c/{self.chat_id}/{message_id}"

    @property
    def address(self) -> str:
        return (
            f"https://t.me/{self.username}" if self.username else f"https://t.me/c/{self.chat_id}"
        )


@dataclass(frozen=True, slots=True)
class ApiPhoto:
    """A photo of a message, as the API describes it before it is downloaded."""

    photo_id: int
    size: int | None  # bytes of the largest size, when the API says


@dataclass(frozen=True, slots=True)
class ApiMessage:
    """One message as received, read into plain values; ``raw`` and ``raw_json`` are
    Telegram's own serialised form (``bytes(message)``) and Telethon's JSON of it."""

    id: int
    date: str | None  # UTC ISO-8601
    text: str
    raw: bytes = field(repr=False)
    raw_json: str = field(repr=False)
    edit_date: str | None = None
    edit_hidden: bool = False
    author: str | None = None
    forwarded_from: str | None = None
    reply_to: int | None = None
    grouped_id: int | None = None
    views: int | None = None
    photo: ApiPhoto | None = None
    links: tuple[str, ...] = ()
    link_preview: str | None = None
    service: bool = False  # a join, a pin, a title change: not a post


@dataclass(frozen=True, slots=True)
class FloodWaitRecord:
    """A wait Telegram asked of the account, and what watcher did about it."""

    seconds: int
    at: str
    honoured: bool  # waited it out (True) or paused the account's targets (False)

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "at": self.at, "honoured": self.honoured}


# -- errors: Telethon's, translated once in client.py ---------------------------------------
class TelegramApiError(CaptureError):
    """A capture through a Telegram account failed."""


class FloodWait(TelegramApiError):
    """Telegram asked the account to wait ``seconds`` before its next request."""

    def __init__(self, seconds: int, account: str) -> None:
        self.seconds = seconds
        super().__init__(
            "flood_wait",
            f"Telegram asked account {account} to wait {seconds}s before its next request",
        )


class AccountStopped(TelegramApiError):
    """The account can no longer read: logged out, restricted or banned. Its targets stop
    until someone acts; the message names the account and what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)


class JoinPending(TelegramApiError):
    """The invite asks an admin to approve the join; it is not asked again."""


class ChatUnavailable(TelegramApiError):
    """The chat is private to us, the invite expired or was revoked, or we were removed."""


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """A file of an API capture beyond the common ones (raw messages, the account)."""

    kind: str
    data: bytes = field(repr=False)
    media_type: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class AccountCapture:
    """What an API capture adds to the common capture record."""

    account: Account
    chat: ChatRef
    files: tuple[EvidenceFile, ...]
    oldest_read: int | None  # the oldest message id read: older stored posts are not judged
    window: int
    flood_waits: tuple[FloodWaitRecord, ...] = ()
    requests: int = 0

    def covers(self, post_id: str) -> bool:
        """Whether this capture read far enough back to say the post is gone."""
        if self.oldest_read is None or not post_id.isdigit():
            return False
        return int(post_id) >= self.oldest_read

    def to_json(self) -> dict[str, Any]:
        return {
            "source": "telegram_api",
            "rendering": RENDERING_LABEL,
            "account": self.account.to_json(),
            "chat": {
                "id": self.chat.chat_id,
                "kind": self.chat.kind,
                "title": self.chat.title,
                "address": self.chat.address,
            },
            "oldest_message_read": self.oldest_read,
            "window": self.window,
            "requests": self.requests,
            "flood_waits": [w.to_json() for w in self.flood_waits],
        }
