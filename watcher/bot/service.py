"""Wiring the bot into the PTB Application the daemon runs (same loop; no JobQueue, the
daemon's scheduler is the only one).

:func:`install` registers every handler; :func:`serve_bot` also registers the command list
with Telegram (``setMyCommands``) and polls for updates until the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    Updater,
    filters,
)

from watcher.bot.access import Role
from watcher.bot.commands import WatcherBot
from watcher.bot.context import BotContext
from watcher.bot.replies import COMMANDS

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 20  # long-poll: Telegram holds getUpdates open this long when idle
ALLOWED_UPDATES = ["message", "callback_query"]
_IMAGE = filters.PHOTO | filters.Document.IMAGE


def install(application: Application, ctx: BotContext) -> WatcherBot:
    """Register the bot's handlers on ``application``; returns the handler object."""
    bot = WatcherBot(ctx)
    # (command, who may use it, slow: runs without holding up other updates)
    commands = [
        ("start", Role.MEMBER, bot.help, False),
        ("help", Role.MEMBER, bot.help, False),
        ("status", Role.MEMBER, bot.status, False),
        ("targets", Role.MEMBER, bot.targets, False),
        ("search", Role.MEMBER, bot.search, False),
        ("links", Role.MEMBER, bot.links, False),
        ("dealer", Role.MEMBER, bot.dealer, False),
        ("check", Role.MEMBER, bot.check, True),
        ("evidence", Role.MEMBER, bot.evidence, True),
        ("similar", Role.MEMBER, bot.similar, True),
        ("pause", Role.ADMIN, bot.pause, False),
        ("resume", Role.ADMIN, bot.resume, False),
        ("watch", Role.ADMIN, bot.watch, False),
    ]
    for name, need, body, slow in commands:
        application.add_handler(CommandHandler(name, bot.guarded(name, need, body), block=not slow))
    # In a group only a photo captioned /similar is looked up: the team posts photos for
    # other reasons. In a private chat every photo (sent or forwarded) is a question.
    asked = filters.ChatType.PRIVATE | filters.CaptionRegex(r"^/similar(@\w+)?\b")
    photo = bot.guarded("photo", Role.MEMBER, bot.photo)
    application.add_handler(MessageHandler(_IMAGE & asked, photo, block=False))
    unknown = bot.guarded("unknown", Role.MEMBER, bot.unknown)
    application.add_handler(MessageHandler(filters.COMMAND, unknown))
    chatter = bot.guarded("text", Role.MEMBER, bot.chat_text)
    application.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, chatter)
    )
    application.add_handler(CallbackQueryHandler(bot.button, block=False))
    application.add_error_handler(_log_error)
    return bot


@contextlib.asynccontextmanager
async def serve_bot(application: Application, ctx: BotContext) -> AsyncIterator[WatcherBot]:
    """Install the handlers, publish the command list, and poll until the block ends.

    ``application`` must be initialised and started (the daemon's is, at start or once
    Telegram answers).
    """
    bot = install(application, ctx)
    await publish_commands(application)
    updater = application.updater
    assert updater is not None, "the Application was built without an Updater"
    # Telegram failing at start must not stop the watching: poll from a task that retries.
    starter = asyncio.create_task(_start_polling(updater))
    try:
        yield bot
    finally:
        starter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starter
        if updater.running:
            await updater.stop()


async def _start_polling(updater: Updater) -> None:
    delay = 2.0
    while True:
        try:
            await updater.start_polling(
                timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
            )
            return
        except TelegramError as exc:
            log.warning(
                "bot commands unavailable until Telegram answers (%s); retrying in %.0fs",
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300.0)


async def publish_commands(application: Application) -> None:
    """``setMyCommands``, so the chat offers the command list; a failure only costs that."""
    try:
        await application.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
    except TelegramError as exc:
        log.warning("could not register the bot's command list with Telegram: %s", exc)


async def _log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Errors outside our handlers' own guard (PTB's, or while polling)."""
    kind = "an update" if isinstance(update, Update) else "the bot"
    log.error("error while handling %s: %r", kind, context.error)
