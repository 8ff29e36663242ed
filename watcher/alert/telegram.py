"""The Telegram sink: sends rendered alerts with python-telegram-bot.

The bot token is a secret: it is read from ``WATCHER_TELEGRAM_TOKEN`` or a file only its owner
can read, and never logged. PTB's exceptions are translated here, once, into
:class:`TransientAlertError` (retry later) or :class:`PermanentAlertError` (the team must act).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import field_validator
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    LinkPreviewOptions,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from watcher.alert.photos import photo_problem
from watcher.alert.render import TEXT_LIMIT, AlertMessage, plain_text
from watcher.alert.sinks import register_sink
from watcher.errors import PermanentAlertError, TransientAlertError, WatcherError
from watcher.privatefile import read_private
from watcher.secrets import register_secret
from watcher.store.blobs import BlobStore
from watcher.watchlist import AlertSection, Url, WholeNumber, invalid

if TYPE_CHECKING:
    from watcher.app import App

log = logging.getLogger(__name__)

TOKEN_ENV = "WATCHER_TELEGRAM_TOKEN"
_PERMANENT_HINTS = ("chat not found", "bot was kicked", "not enough rights", "bot is not a member")


class TelegramAlerts(AlertSection):
    """``alerts.telegram``: the chats alerts go to, and a self-hosted Bot API or token file."""

    chat_ids: list[WholeNumber]
    api_url: Url | None = None
    token_file: str | None = None

    @field_validator("chat_ids")
    @classmethod
    def _need_a_chat(cls, chat_ids: list[WholeNumber]) -> list[int]:
        if not chat_ids:
            raise invalid(
                "no chat is given",
                "add at least one chat id, e.g. chat_ids: [-1001234567890]",
            )
        return chat_ids

    def addresses(self) -> list[str]:
        """The chats alerts go to, as the outbox names them."""
        return [str(chat) for chat in self.chat_ids]


def load_token(config: TelegramAlerts | None) -> str | None:
    """The bot token from the environment, else from ``token_file``; None when neither is set."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        register_secret(from_env)
        return from_env
    if config is None or not config.token_file:
        return None
    return read_secret_file(Path(config.token_file).expanduser())


def read_secret_file(path: Path) -> str:
    """A secret from a file that only its owner may read (mode 0600 or stricter)."""
    # A link is followed: the token may be a credential the service manager hands over.
    raw = read_private(
        path, "token file", "the token controls the bot", "start again", follow_links=True
    )
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise WatcherError(
            f"token file {path} is not text; put the bot token from @BotFather in it"
        ) from exc
    if not token:
        raise WatcherError(f"token file {path} is empty; put the bot token from @BotFather in it")
    register_secret(token)
    return token


def make_bot(token: str, api_url: str | None = None) -> Bot:
    """A PTB Bot, talking to ``api_url`` (a self-hosted Bot API server) when given."""
    register_secret(token)
    request = HTTPXRequest(connect_timeout=10, read_timeout=30, write_timeout=60)
    if api_url:
        base = api_url.rstrip("/")
        return Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request=request)
    return Bot(token, request=request)


@dataclass(frozen=True, slots=True)
class TelegramConnection:
    """What the Telegram sink needs beyond ``alerts.telegram``: the bot token (a secret, never
    in the watchlist) and, to override the section's, a Bot API address."""

    token: str | None
    api_url: str | None = None


@register_sink
class TelegramSink:
    """Delivers alerts to Telegram chats; each alert is one API call, so a retry never
    repeats half an alert."""

    name = "telegram"
    config_model = TelegramAlerts

    def __init__(self, bot: Bot, blobs: BlobStore) -> None:
        self.bot = bot
        self.blobs = blobs

    @classmethod
    def from_watchlist(
        cls, app: App, given: TelegramConnection | None = None
    ) -> TelegramSink | None:
        """The sink for ``alerts.telegram``, with the token ``given`` (the daemon's) or from
        the environment or token file; None without a token (alerts stay in the outbox)."""
        config = app.watchlist.alerts.telegram
        if config is None:
            return None
        connection = given or TelegramConnection(load_token(config))
        if not connection.token:
            return None
        return cls(make_bot(connection.token, connection.api_url or config.api_url), app.blobs)

    def unattachable(self, shas: tuple[str, ...]) -> dict[str, str]:
        """The photos among ``shas`` Telegram would refuse, each with why (blocking: decodes)."""
        problems = {sha: photo_problem(self.blobs.read(sha)) for sha in shas}
        return {sha: why for sha, why in problems.items() if why}

    async def send(self, chat_id: str, message: AlertMessage) -> list[int]:
        """Send one alert; returns the Telegram message ids.

        If Telegram refuses its content (a tag, a length, a photo), it is sent once more as
        plain text without attachments: an alert is never lost to what a dealer posted.
        """
        with translated_errors(chat_id):
            try:
                return await self._send_formatted(chat_id, message)
            except BadRequest as exc:
                if _chat_problem(exc):
                    raise
                return [await self._plain(chat_id, message.html, exc)]

    async def send_text(self, chat_id: str, html: str) -> list[int]:
        """Send a plain HTML message (digests); refused content goes again as plain text."""
        await self._ready(chat_id)
        with translated_errors(chat_id):
            try:
                return [await self._text(chat_id, html)]
            except BadRequest as exc:
                if _chat_problem(exc):
                    raise
                return [await self._plain(chat_id, html, exc)]

    async def _plain(self, chat_id: str, html: str, refused: BadRequest) -> int:
        # No parse mode (nothing left to parse), no photos, no buttons: the least Telegram can
        # refuse. A BadRequest here too is translated by the caller: the alert is failed.
        log.warning("Telegram refused an alert (%s); sending it as plain text", refused.message)
        note = f"[sent as plain text without attachments: Telegram refused it ({refused.message})]"
        text = plain_text(html, TEXT_LIMIT - len(note.encode("utf-16-le")) // 2 - 1)
        sent = await self.bot.send_message(
            chat_id, f"{text}\n{note}", link_preview_options=LinkPreviewOptions(is_disabled=True)
        )
        return sent.message_id

    async def _send_formatted(self, chat_id: str, message: AlertMessage) -> list[int]:
        photos = [self.blobs.read(sha) for sha in message.photo_shas]
        markup = alert_keyboard(message)
        if len(photos) > 1:
            # Telegram allows no buttons under a media group; the caption names /evidence.
            media = [
                InputMediaPhoto(
                    p, caption=message.caption if i == 0 else None, parse_mode=ParseMode.HTML
                )
                for i, p in enumerate(photos)
            ]
            sent = await self.bot.send_media_group(chat_id, media)
            return [m.message_id for m in sent]
        if photos:
            one = await self.bot.send_photo(
                chat_id,
                photos[0],
                caption=message.caption,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
            return [one.message_id]
        if message.screenshot_sha:
            shot = InputFile(self.blobs.read(message.screenshot_sha), filename="page.png")
            doc = await self.bot.send_document(
                chat_id,
                shot,
                caption=message.caption,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
            return [doc.message_id]
        return [await self._text(chat_id, message.html, markup)]

    async def close(self) -> None:
        """Release the bot's HTTP connections."""
        with contextlib.suppress(TelegramError):
            await self.bot.shutdown()

    async def _ready(self, chat_id: str) -> None:
        with translated_errors(chat_id):
            await self.bot.initialize()

    async def _text(
        self, chat_id: str, html: str, markup: InlineKeyboardMarkup | None = None
    ) -> int:
        sent = await self.bot.send_message(
            chat_id,
            html,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_markup=markup,
        )
        return sent.message_id


def alert_keyboard(message: AlertMessage) -> InlineKeyboardMarkup | None:
    """The alert's buttons, two to a row (phones show long labels cut in a row of three)."""
    if not message.buttons:
        return None
    buttons = [InlineKeyboardButton(label, callback_data=data) for label, data in message.buttons]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


@contextmanager
def translated_errors(chat_id: str) -> Iterator[None]:
    """Turn PTB errors raised inside the block into our alert errors."""
    try:
        yield
    except TelegramError as exc:
        # PTB's InvalidToken message quotes the token: drop that exception from the chain so
        # the secret cannot reach a log through a traceback.
        cause = None if isinstance(exc, InvalidToken) else exc
        raise _translate(exc, chat_id) from cause


def _translate(exc: TelegramError, chat_id: str) -> Exception:
    if isinstance(exc, RetryAfter):
        seconds = exc.retry_after
        seconds = seconds.total_seconds() if hasattr(seconds, "total_seconds") else float(seconds)
        return TransientAlertError(f"Telegram asks to wait {seconds:g}s", retry_after=seconds)
    if isinstance(exc, InvalidToken):
        return PermanentAlertError("Telegram rejected the bot token; check WATCHER_TELEGRAM_TOKEN")
    if isinstance(exc, Forbidden):
        return PermanentAlertError(
            f"the bot may not write to chat {chat_id} ({exc.message}); add it back to the group"
        )
    if isinstance(exc, BadRequest):
        if _chat_problem(exc):
            return PermanentAlertError(
                f"chat {chat_id}: {exc.message}; check chat_ids in the watchlist and that the "
                "bot is a member of the group"
            )
        return PermanentAlertError(f"Telegram refused the alert for chat {chat_id}: {exc.message}")
    return TransientAlertError(
        f"Telegram unreachable or failing ({type(exc).__name__}: {exc.message})"
    )


def _chat_problem(exc: BadRequest) -> bool:
    """A refusal about the chat (wrong id, bot removed), not about the alert's content."""
    hint = exc.message.lower()
    return any(h in hint for h in _PERMANENT_HINTS)
