"""The Telegram API boundary: the only module that imports Telethon.

:class:`AccountClient` wraps a Telethon ``TelegramClient`` (or, in tests, a fake that plays
scripted histories with Telethon's own objects). It resolves a target's link into a
:class:`ChatRef`, reads messages into :class:`ApiMessage` records (keeping Telegram's own
serialised bytes and Telethon's JSON as evidence) and downloads photos. Every Telethon
error becomes one of ours here (:func:`translated`), with ``raise ... from exc``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from telethon import TelegramClient, errors, helpers
from telethon import __version__ as TELETHON_VERSION
from telethon.sessions import StringSession
from telethon.tl import functions, types

from watcher.capture.tgapi.records import (
    Account,
    AccountStopped,
    ApiMessage,
    ApiPhoto,
    ChatRef,
    ChatUnavailable,
    FloodWait,
    JoinPending,
    TelegramApiError,
)
from watcher.errors import WatcherError
from watcher.timeutil import to_iso

__all__ = ["TELETHON_VERSION", "AccountClient", "ChatLink", "parse_chat_link", "telethon_client"]

_INVITE = re.compile(r"^/(?:\+|joinchat/)([A-Za-z0-9_-]{8,})/?$")
_PRIVATE = re.compile(r"^/c/(\d{1,20})(?:/\d+)?/?$")
_PUBLIC = re.compile(r"^/(?:s/)?([A-Za-z][A-Za-z0-9_]{3,31})(?:/\d+)?/?$")
_TELEGRAM_HOSTS = frozenset({"t.me", "www.t.me", "telegram.me", "www.telegram.me"})

# Errors that mean the session no longer logs in: someone ended it, or it expired.
_LOGGED_OUT = (
    errors.AuthKeyUnregisteredError,
    errors.SessionRevokedError,
    errors.SessionExpiredError,
    errors.AuthKeyDuplicatedError,
    errors.UserDeactivatedError,
)
_BANNED = (errors.UserDeactivatedBanError, errors.PhoneNumberBannedError)
_RESTRICTED = (errors.UserRestrictedError,)
_CHAT_GONE = (
    errors.ChannelPrivateError,
    errors.ChannelBannedError,
    errors.UserBannedInChannelError,
    errors.InviteHashExpiredError,
    errors.InviteHashInvalidError,
    errors.ChannelInvalidError,
    errors.ChatIdInvalidError,
    errors.UsernameNotOccupiedError,
    errors.UsernameInvalidError,
)


class ChatLink:
    """What a target's URL names: an invite, a private chat's id, or a public name."""

    def __init__(
        self, url: str, invite: str | None = None, chat_id: int | None = None, name: str = ""
    ) -> None:
        self.url, self.invite, self.chat_id, self.name = url, invite, chat_id, name


def parse_chat_link(url: str) -> ChatLink:
    """``https://t.me/+HASH``, ``/joinchat/HASH``, ``/c/<id>`` or ``/<name>``; else an error
    that says which forms work."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if (parts.hostname or "").lower() in _TELEGRAM_HOSTS:
        if match := _INVITE.match(path):
            return ChatLink(url, invite=match.group(1))
        if match := _PRIVATE.match(path):
            return ChatLink(url, chat_id=int(match.group(1)))
        if match := _PUBLIC.match(path):
            return ChatLink(url, name=match.group(1))
    raise WatcherError(
        f"{url} is not a Telegram chat address watcher can read through an account: use an "
        "invite link (https://t.me/+CODE or https://t.me/joinchat/CODE), a private chat's "
        "https://t.me/c/<id>, or a public group's https://t.me/<name>"
    )


def telethon_client(session_string: str, api_id: int, api_hash: str) -> Any:
    """A real Telethon client for one account's session (not connected yet).

    Telethon's own flood-wait sleeping is off (``flood_sleep_threshold=0``): every wait comes
    to watcher, which honours it to the second, reports it and pauses the account when it
    is long.
    """
    try:
        session = StringSession(session_string)
    except ValueError as exc:
        raise TelegramApiError(
            "session_damaged",
            "the Telegram account session file is damaged (not a session Telethon can read); "
            "log the account in again with `watcher session telegram NAME`",
        ) from exc
    return TelegramClient(
        session,
        api_id,
        api_hash,
        flood_sleep_threshold=0,
        # One try each, no reconnecting behind our back: a failure ends the capture, and the
        # target's next run is the retry (nothing loops against Telegram).
        request_retries=1,
        connection_retries=1,
        retry_delay=5,
        auto_reconnect=False,
        timeout=30,
        receive_updates=False,
    )


@contextlib.contextmanager
def translated(account: str, doing: str) -> Any:
    """Telethon's errors as ours, each saying what happened to which account and what to do."""
    try:
        yield
    except errors.FloodWaitError as exc:
        raise FloodWait(int(exc.seconds), account) from exc
    except _LOGGED_OUT as exc:
        raise AccountStopped(
            "account_logged_out",
            f"Telegram account {account} is logged out ({type(exc).__name__}: the session "
            "was ended from another device or expired). Its targets are stopped; log in "
            f"again with `watcher session telegram {account}`",
        ) from exc
    except _BANNED as exc:
        raise AccountStopped(
            "account_banned",
            f"Telegram has banned or deleted account {account} ({type(exc).__name__}). Its "
            "targets are stopped; log in a different account with `watcher session telegram "
            "NAME` and point the targets' `session:` at it",
        ) from exc
    except _RESTRICTED as exc:
        raise AccountStopped(
            "account_restricted",
            f"Telegram has restricted account {account} ({type(exc).__name__}). Its targets "
            "are stopped; open the account in the Telegram app to see why, or use another",
        ) from exc
    except errors.InviteRequestSentError as exc:
        raise JoinPending(
            "join_pending",
            f"account {account} asked to join and an admin of the chat must approve it; "
            "watcher will not ask again. Captures start once the request is approved",
        ) from exc
    except _CHAT_GONE as exc:
        raise ChatUnavailable(
            "chat_unavailable",
            f"account {account} cannot read this chat while {doing} ({type(exc).__name__}: "
            "the chat is private to it, the invite expired or was revoked, or the account "
            "was removed). Ask for a new invite link and update the target's url",
        ) from exc
    except errors.RPCError as exc:
        raise TelegramApiError(
            "telegram_error", f"Telegram refused a request while {doing}: {exc}"
        ) from exc
    except (
        errors.InvalidBufferError,
        errors.SecurityError,
        errors.TypeNotFoundError,
        errors.InvalidChecksumError,
    ) as exc:
        raise TelegramApiError(
            "telegram_error", f"Telegram's answer could not be read while {doing}: {exc}"
        ) from exc
    except (ConnectionError, OSError, TimeoutError, EOFError) as exc:  # EOF: a cut connection
        raise TelegramApiError(
            "network", f"could not reach Telegram while {doing}: {exc or type(exc).__name__}"
        ) from exc


class AccountClient:
    """One account's connection, used by one capture at a time (``accounts`` serialises)."""

    def __init__(self, client: Any, account: str, before_request: Callable[[], Any]) -> None:
        self._client = client
        self.account = account
        # Awaited before each request: the account's pacing (``accounts.RequestBudget``).
        self._before = before_request

    async def __aenter__(self) -> AccountClient:
        with translated(self.account, "connecting"):
            await self._client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection: nothing to keep
            await self._client.disconnect()

    async def me(self) -> Account:
        """The logged-in account; AccountStopped when the session no longer logs in."""
        await self._before()
        with translated(self.account, "checking the login"):
            authorised = await self._client.is_user_authorized()
            if not authorised:
                raise errors.AuthKeyUnregisteredError(request=None)
            me = await self._client.get_me()
        return Account(self.account, int(me.id), getattr(me, "username", None))

    async def resolve(self, link: ChatLink) -> ChatRef:
        """The chat a link names; an invite is used to join (once: the caller stores the id)."""
        await self._before()
        with translated(self.account, f"opening {link.url}"):
            if link.invite:
                return await self._join(link.invite)
            if link.chat_id is not None:
                # A /c/ link without a stored access hash: the account must already be in it.
                entity = await self._client.get_entity(types.PeerChannel(link.chat_id))
            else:
                entity = await self._client.get_entity(link.name)
        return _chat_ref(entity, link.url)

    async def _join(self, invite: str) -> ChatRef:
        checked = await self._client(functions.messages.CheckChatInviteRequest(invite))
        if isinstance(checked, types.ChatInviteAlready | types.ChatInvitePeek):
            return _chat_ref(checked.chat, invite)
        await self._before()
        updates = await self._client(functions.messages.ImportChatInviteRequest(invite))
        chats = getattr(updates, "chats", None) or []
        if not chats:
            raise TelegramApiError("telegram_error", "joining by the invite returned no chat")
        return _chat_ref(chats[0], invite)

    async def messages(
        self, chat: ChatRef, window: int, last_seen: int | None, cap: int
    ) -> tuple[list[ApiMessage], list[Any], bool]:
        """Newest first: every message newer than ``last_seen`` and at least ``window`` of the
        most recent ones, at most ``cap``. Returns the records, Telethon's messages (the
        photos are downloaded from those) and whether the chat's history ended before."""
        records: list[ApiMessage] = []
        originals: list[Any] = []
        await self._before()
        with translated(self.account, "reading messages"):
            async for message in self._iter(chat, cap + 1):
                full = len(records) >= window and (last_seen is None or message.id <= last_seen)
                if full or len(records) >= cap:
                    return records, originals, False
                records.append(to_api_message(message))
                originals.append(message)
        return records, originals, True

    async def _iter(self, chat: ChatRef, cap: int) -> AsyncIterator[Any]:
        # Telethon fetches a batch of up to 100 per request; each batch after the first is
        # paced by the account's budget through ``wait_time``'s place: we pace here.
        count = 0
        async for message in self._client.iter_messages(_input_peer(chat), limit=cap):
            count += 1
            if count % 100 == 1 and count > 1:
                await self._before()
            yield message

    async def download_photo(self, message: Any, max_bytes: int) -> bytes:
        """The message's photo, largest size; refused above ``max_bytes``."""
        await self._before()
        with translated(self.account, f"downloading the photo of message {message.id}"):
            data = await self._client.download_media(message, file=bytes)
        if not isinstance(data, bytes | bytearray):
            raise TelegramApiError("telegram_error", f"message {message.id} has no photo")
        if len(data) > max_bytes:
            raise TelegramApiError(
                "too_large", f"the photo of message {message.id} is over {max_bytes} bytes"
            )
        return bytes(data)


def _input_peer(chat: ChatRef) -> Any:
    if chat.kind == "chat":
        return types.InputPeerChat(chat.chat_id)
    return types.InputPeerChannel(chat.chat_id, chat.access_hash)


def _chat_ref(entity: Any, where: str) -> ChatRef:
    if isinstance(entity, types.Channel):
        return ChatRef(entity.id, "channel", entity.access_hash or 0, entity.title, entity.username)
    if isinstance(entity, types.Chat):
        return ChatRef(entity.id, "chat", 0, entity.title)
    raise ChatUnavailable(
        "chat_unavailable",
        f"{where} is not a group or channel (Telegram returned {type(entity).__name__}); "
        "watcher reads groups and channels only",
    )


# -- messages into records ------------------------------------------------------------------
def to_api_message(message: Any) -> ApiMessage:
    """A Telethon message (raw ``types.Message`` or Telethon's own subclass) as a record."""
    raw = bytes(message)
    raw_json = message.to_json()
    if isinstance(message, types.MessageService):
        return ApiMessage(
            message.id, _iso(message.date), type(message.action).__name__, raw, raw_json,
            service=True,
        )  # fmt: skip
    if not isinstance(message, types.Message):
        return ApiMessage(message.id, None, "", raw, raw_json, service=True)  # MessageEmpty
    text = message.message or ""
    media = message.media
    photo = None
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        photo = ApiPhoto(media.photo.id, _largest(media.photo))
    preview = None
    if isinstance(media, types.MessageMediaWebPage) and isinstance(media.webpage, types.WebPage):
        preview = media.webpage.url
    reply = message.reply_to
    return ApiMessage(
        id=message.id,
        date=_iso(message.date),
        text=text,
        raw=raw,
        raw_json=raw_json,
        edit_date=_iso(message.edit_date),
        edit_hidden=bool(message.edit_hide),
        author=_author(message),
        forwarded_from=_forwarded(message.fwd_from),
        reply_to=getattr(reply, "reply_to_msg_id", None),
        grouped_id=message.grouped_id,
        views=message.views,
        photo=photo,
        links=_links(text, message.entities or []),
        link_preview=preview,
    )


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment is not None else None


def _largest(photo: Any) -> int | None:
    sizes = []
    for size in photo.sizes or []:
        if isinstance(size, types.PhotoSize):
            sizes.append(size.size)
        elif isinstance(size, types.PhotoSizeProgressive) and size.sizes:
            sizes.append(max(size.sizes))
    return max(sizes, default=None)


def _author(message: Any) -> str | None:
    if message.post_author:
        return message.post_author
    sender = getattr(message, "sender", None)  # Telethon's subclass fills it from the reply
    if sender is not None:
        if getattr(sender, "username", None):
            return f"@{sender.username}"
        name = " ".join(
            p
            for p in (getattr(sender, "first_name", None), getattr(sender, "last_name", None))
            if p
        )
        return name or getattr(sender, "title", None) or f"user {sender.id}"
    return _peer_name(message.from_id)


def _peer_name(peer: Any) -> str | None:
    if isinstance(peer, types.PeerUser):
        return f"user {peer.user_id}"
    if isinstance(peer, types.PeerChannel):
        return f"https://t.me/c/{peer.channel_id}"
    if isinstance(peer, types.PeerChat):
        return f"chat {peer.chat_id}"
    return None


def _forwarded(header: Any) -> str | None:
    if header is None:
        return None
    if isinstance(header.from_id, types.PeerChannel) and header.channel_post:
        return f"https://t.me/c/{header.from_id.channel_id}/{header.channel_post}"
    return header.from_name or _peer_name(header.from_id) or header.post_author or "hidden sender"


def _links(text: str, entities: list[Any]) -> tuple[str, ...]:
    """Addresses in the text (URL entities, offsets in UTF-16 as Telegram counts) and behind
    linked words (text URLs), in order, once each."""
    wide = helpers.add_surrogate(text)
    found = []
    for entity in entities:
        if isinstance(entity, types.MessageEntityTextUrl):
            found.append(entity.url)
        elif isinstance(entity, types.MessageEntityUrl):
            found.append(helpers.del_surrogate(wide[entity.offset : entity.offset + entity.length]))
    return tuple(dict.fromkeys(u for u in found if u))


# -- logging an account in (``watcher session telegram NAME``) -------------------------------
async def log_in(client: Any, account: str, ask: Callable[[str, bool], str]) -> tuple[str, Account]:
    """Phone, code and (when the account has one) 2FA password, asked through ``ask(prompt,
    secret)``; returns the session string to keep and who logged in."""
    with translated(account, "logging in"):
        await client.connect()
        phone = ask("Phone number of the account, international form (e.g. +85512345678): ", False)
        try:
            await client.send_code_request(phone.strip())
            code = ask("The code Telegram just sent to the account (in the app or by SMS): ", False)
            try:
                await client.sign_in(phone=phone.strip(), code=code.strip())
            except errors.SessionPasswordNeededError:
                password = ask("The account's two-step verification password: ", True)
                await client.sign_in(password=password)
        except (errors.PhoneNumberInvalidError, errors.PhoneCodeInvalidError) as exc:
            what = "phone number" if isinstance(exc, errors.PhoneNumberInvalidError) else "code"
            raise WatcherError(
                f"Telegram refused the {what} ({type(exc).__name__}); run "
                f"`watcher session telegram {account}` again"
            ) from exc
        except (errors.PhoneCodeExpiredError, errors.PasswordHashInvalidError) as exc:
            raise WatcherError(
                f"the code expired or the password was wrong ({type(exc).__name__}); run "
                f"`watcher session telegram {account}` again"
            ) from exc
        me = await client.get_me()
        saved = client.session.save()
    return saved, Account(account, int(me.id), getattr(me, "username", None))
